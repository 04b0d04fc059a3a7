/*
 * The provisiond N-API addon (plain C, node_api.h): what the daemon cannot do from JavaScript.
 *   udpSocket(address, port, ifindex, rcvbuf)          udp.c: the DHCP socket, options set before bind
 *   sendfileStart(sock, file, offset, length, idleMs, cb), sendfileCancel(handle)
 *                                                      sendfile.c: zero-copy getfile on a thread
 *   dhcpOpen(fd, meta, onBatch, onError), dhcpSend(handle, buf, meta, count), dhcpClose(handle)
 *                                                      dhcpio.c: the DHCP socket's datagrams in batches
 * Loaded by src/native/index.ts, which documents the JavaScript side.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "addon.h"

const char *errno_name(int err) {
  const char *n = strerrorname_np(err);
  return n ? n : "EUNKNOWN";
}

napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value m, code, e, no, sc;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_error(env, code, m, &e) != napi_ok) return NULL;
  if (napi_create_int32(env, -err, &no) == napi_ok) napi_set_named_property(env, e, "errno", no);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc) == napi_ok) napi_set_named_property(env, e, "syscall", sc);
  napi_throw(env, e);
  return NULL;
}

bool args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

bool arg_int64(napi_env env, napi_value v, const char *what, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_int64(env, v, out) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", what);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "udpSocket", NULL, udp_socket, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sendfileStart", NULL, sendfile_start, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sendfileCancel", NULL, sendfile_cancel, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dhcpOpen", NULL, dhcp_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dhcpSend", NULL, dhcp_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dhcpClose", NULL, dhcp_close, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  NAPI_OK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
