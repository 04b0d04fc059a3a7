/*
 * The provisiond addon's shared declarations: each file (udp.c, sendfile.c, ...) exports its
 * functions here and addon.c registers them on the module object.
 */
#ifndef PROVISIOND_ADDON_H
#define PROVISIOND_ADDON_H
#include <stdbool.h>
#include <stdint.h>
#include <node_api.h>

/* Bails out of a napi callback when a napi call fails (the exception is pending or thrown here). */
#define NAPI_OK(env, call)                                                  \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      bool pending_ = false;                                                \
      napi_is_exception_pending((env), &pending_);                          \
      if (!pending_) napi_throw_error((env), NULL, "napi call failed: " #call); \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

/* Throws an Error "<syscall>: <strerror>" with `code` (EADDRINUSE...), `errno` and `syscall` set. */
napi_value throw_errno(napi_env env, int err, const char *syscall);
/* The errno's name (EPIPE...), never NULL. */
const char *errno_name(int err);
/* The `n` arguments of a call into `argv`, else a pending TypeError showing `usage` and false. */
bool args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage);
/* `v` as an integer, else a pending TypeError naming `what` and false. */
bool arg_int64(napi_env env, napi_value v, const char *what, int64_t *out);

napi_value udp_socket(napi_env env, napi_callback_info info);
napi_value sendfile_start(napi_env env, napi_callback_info info);
napi_value sendfile_cancel(napi_env env, napi_callback_info info);
napi_value dhcp_open(napi_env env, napi_callback_info info);
napi_value dhcp_send(napi_env env, napi_callback_info info);
napi_value dhcp_close(napi_env env, napi_callback_info info);

#endif
