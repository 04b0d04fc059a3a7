/*
 * Zero-copy getfile: sendfile(2) from an open file to an HTTP response's own socket, on a thread of
 * its own, so the kernel moves page-cache pages to the socket and the event loop is never blocked.
 * A thread per transfer rather than libuv's pool: the pool has 4 threads shared with fs and dns, and a
 * slow client holds its sender for minutes. The caller (src/servers/http/sendfile.ts) caps how many
 * run at once.
 *
 * sendfileStart(sock, file, offset, length, idleMs, cb) -> handle
 *   Both descriptors are dup()ed: Node may close its socket (client gone, server closing) while the
 *   thread still sends; the thread's copy stays valid and sendfileCancel() shuts the connection down
 *   under it. The socket is non-blocking (libuv's): on EAGAIN the thread poll()s it for writability
 *   for up to idleMs, the daemon's idle timeout. cb(err, sent) runs once on the JS thread: err is null
 *   when `length` bytes were sent, else "ETIMEDOUT" (idle), "ESHORT" (the file shrank) or an errno name.
 * sendfileCancel(handle)
 *   Ends a transfer in flight (shutdown(2) of the socket): its cb follows with an error. No-op after cb.
 *
 * Lifetime: the transfer is freed when both its completion (cb) and the handle's finalizer have run;
 * both happen on the JS thread, as does every close() and shutdown() of the dups, so a descriptor
 * number is never used after it was closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include "addon.h"

typedef struct {
  int sock, file;
  int64_t off, len, sent;
  int idle_ms;
  const char *err; /* set by the thread: NULL, "ETIMEDOUT", "ESHORT" or an errno name */
  int closed;      /* JS thread only: the dups are closed */
  int refs;        /* JS thread only: completion + handle finalizer */
  napi_threadsafe_function tsfn;
} xfer_t;

static void unref(xfer_t *x) {
  if (--x->refs == 0) free(x);
}

static void *run(void *arg) {
  xfer_t *x = arg;
  int64_t end = x->off + x->len;
  off_t off = (off_t)x->off;
  /* Corked, as nginx's tcp_nopush: the kernel sends only full segments until the end of the body
   * (on loopback, 64 KiB ones), about 1.4x the rate of one client uncorked. Not TCP (a unix socket):
   * the call fails and nothing changes. */
  int on = 1, off_ = 0;
  int corked = setsockopt(x->sock, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0;
  while ((int64_t)off < end) {
    int64_t want = end - (int64_t)off;
    ssize_t n = sendfile(x->sock, x->file, &off, (size_t)(want > (1 << 30) ? (1 << 30) : want));
    if (n > 0) continue;
    if (n == 0) { x->err = "ESHORT"; break; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) { x->err = errno_name(errno); break; }
    struct pollfd p = { x->sock, POLLOUT, 0 };
    int r = poll(&p, 1, x->idle_ms > 0 ? x->idle_ms : -1);
    if (r == 0) { x->err = "ETIMEDOUT"; break; }
    if (r < 0 && errno != EINTR) { x->err = errno_name(errno); break; }
    /* POLLERR/POLLHUP: the next sendfile() reports the error. */
  }
  if (corked) setsockopt(x->sock, IPPROTO_TCP, TCP_CORK, &off_, sizeof off_); /* the tail leaves now */
  x->sent = (int64_t)off - x->off;
  napi_call_threadsafe_function(x->tsfn, NULL, napi_tsfn_blocking);
  napi_release_threadsafe_function(x->tsfn, napi_tsfn_release);
  return NULL;
}

/* On the JS thread, once the thread is done. */
static void done(napi_env env, napi_value cb, void *context, void *data) {
  xfer_t *x = context;
  close(x->sock);
  close(x->file);
  x->closed = 1;
  if (env && cb) {
    napi_value argv[2], undef;
    if (x->err) napi_create_string_utf8(env, x->err, NAPI_AUTO_LENGTH, &argv[0]);
    else napi_get_null(env, &argv[0]);
    napi_create_int64(env, x->sent, &argv[1]);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 2, argv, NULL);
  }
  unref(x);
}

static void finalize(napi_env env, void *data, void *hint) {
  unref(data);
}

napi_value sendfile_start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t sock, file, off, len, idle;
  napi_valuetype t = napi_undefined;
  if (argc == 6) napi_typeof(env, argv[5], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "sendfileStart(sock, file, offset, length, idleMs, cb)");
    return NULL;
  }
  if (!arg_int64(env, argv[0], "sock", &sock) || !arg_int64(env, argv[1], "file", &file) || !arg_int64(env, argv[2], "offset", &off) ||
      !arg_int64(env, argv[3], "length", &len) || !arg_int64(env, argv[4], "idleMs", &idle))
    return NULL;
  if (off < 0 || len < 0) {
    napi_throw_range_error(env, NULL, "sendfileStart: offset and length must not be negative");
    return NULL;
  }

  xfer_t *x = calloc(1, sizeof *x);
  if (!x) return throw_errno(env, ENOMEM, "sendfile");
  x->off = off;
  x->len = len;
  x->idle_ms = idle > 0x7fffffff ? 0x7fffffff : (int)idle;
  x->sock = fcntl((int)sock, F_DUPFD_CLOEXEC, 0);
  if (x->sock < 0) { int e = errno; free(x); return throw_errno(env, e, "dup socket"); }
  x->file = fcntl((int)file, F_DUPFD_CLOEXEC, 0);
  if (x->file < 0) { int e = errno; close(x->sock); free(x); return throw_errno(env, e, "dup file"); }

  napi_value name, handle;
  if (napi_create_string_utf8(env, "provisiond sendfile", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, argv[5], NULL, name, 0, 1, NULL, NULL, x, done, &x->tsfn) != napi_ok) {
    close(x->sock);
    close(x->file);
    free(x);
    napi_throw_error(env, NULL, "sendfile: cannot create the completion callback");
    return NULL;
  }
  x->refs = 1; /* the completion */
  if (napi_create_external(env, x, finalize, NULL, &handle) != napi_ok) {
    /* No handle: the transfer still runs and completes; it cannot be cancelled. */
    napi_get_undefined(env, &handle);
  } else x->refs++;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  /* Signals stay with Node's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t th;
  int rc = pthread_create(&th, &attr, run, x);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    /* Report through cb like any failed transfer, so the caller has one path. */
    x->err = errno_name(rc);
    napi_call_threadsafe_function(x->tsfn, NULL, napi_tsfn_nonblocking);
    napi_release_threadsafe_function(x->tsfn, napi_tsfn_release);
  }
  return handle;
}

napi_value sendfile_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  xfer_t *x = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&x) != napi_ok || !x) {
    napi_throw_type_error(env, NULL, "sendfileCancel(handle)");
    return NULL;
  }
  if (!x->closed) shutdown(x->sock, SHUT_RDWR);
  return NULL;
}
