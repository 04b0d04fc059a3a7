/*
 * The DHCP socket's datagrams in batches. Node's dgram makes one recvmsg and one JavaScript call per
 * datagram received (with a 64 KiB buffer allocated for it, then shrunk), and one sendmsg with its
 * request object, lookup and callback per datagram sent: under a boot storm that is most of what the
 * event loop does besides answering. Here the descriptor made by udp.c is polled on Node's own
 * event loop (libuv), read with recvmmsg (up to BATCH datagrams a call) and handed to JavaScript as
 * one buffer per call; replies are written with sendmmsg, many per call.
 *
 * dhcpOpen(fd, meta, onBatch, onError) -> handle
 *   Starts polling `fd` (non-blocking, bound). `meta` is a Uint32Array of at least 3 * BATCH
 *   entries, shared with JavaScript: for each datagram of a batch, its length, its source address
 *   (host order) and its source port. onBatch(buf, count): `buf` holds the `count` datagrams one
 *   after the other, meta says where each ends. onError(code): a receive failed (the socket stays).
 * dhcpSend(handle, buf, meta, count) -> null | { failed, code, index }
 *   Sends `count` datagrams laid out in `buf` one after the other; meta[3i..3i+2] = length,
 *   destination address (host order), destination port. A datagram the kernel refuses (no route,
 *   a full send buffer) is skipped and counted (`code` and `index`: the last one's errno name and
 *   place in the batch); the others still leave.
 * dhcpClose(handle)
 *   Stops polling and closes the descriptor; no callback follows.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include "addon.h"

#define BATCH 32
/* Jumbo frames: a datagram larger than a slot is cut (MSG_TRUNC) and then dropped as malformed. */
#define SLOT 9216
/* Calls of recvmmsg per wake-up at most, so a flood cannot keep the event loop from everything else. */
#define ROUNDS 4

typedef struct {
  uv_poll_t poll;
  int fd;
  bool closed;
  napi_env env;
  napi_ref on_batch, on_error, meta_ref;
  napi_async_context async;
  uint32_t *meta;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  unsigned char slab[BATCH * SLOT];
} dhcpio;

static void call(dhcpio *x, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = x->env;
  napi_value fn, recv, result;
  /* napi_make_callback wants an object as `this`: the global one. */
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || napi_get_global(env, &recv) != napi_ok) return;
  /* As a Node callback: microtasks and nextTicks run when it returns, an exception is uncaught. */
  if (napi_make_callback(env, x->async, recv, fn, argc, argv, &result) != napi_ok) {
    bool pending = false;
    napi_value err;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending && napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
}

static void report(dhcpio *x, int err) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(x->env, &scope) != napi_ok) return;
  napi_value code;
  if (napi_create_string_utf8(x->env, errno_name(err), NAPI_AUTO_LENGTH, &code) == napi_ok) call(x, x->on_error, 1, &code);
  napi_close_handle_scope(x->env, scope);
}

static void readable(uv_poll_t *poll, int status, int events) {
  dhcpio *x = poll->data;
  if (status < 0) {
    report(x, -status);
    return;
  }
  for (int round = 0; round < ROUNDS && !x->closed; round++) {
    /* The headers are set up once (dhcp_open); the kernel shortens the address lengths it fills. */
    for (int i = 0; i < BATCH; i++) x->msgs[i].msg_hdr.msg_namelen = sizeof x->from[i];
    int n = recvmmsg(x->fd, x->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) report(x, errno);
      return;
    }
    if (n == 0) return;
    /* The datagrams one after the other (slot 0 is already in place). */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
      size_t len = x->msgs[i].msg_len;
      if (i > 0 && len > 0) memmove(x->slab + total, x->slab + (size_t)i * SLOT, len);
      total += len;
      x->meta[3 * i] = (uint32_t)len;
      x->meta[3 * i + 1] = ntohl(x->from[i].sin_addr.s_addr);
      x->meta[3 * i + 2] = ntohs(x->from[i].sin_port);
    }
    napi_handle_scope scope;
    if (napi_open_handle_scope(x->env, &scope) != napi_ok) return;
    napi_value argv[2];
    void *data;
    if (napi_create_buffer_copy(x->env, total, x->slab, &data, &argv[0]) == napi_ok && napi_create_int32(x->env, n, &argv[1]) == napi_ok) call(x, x->on_batch, 2, argv);
    napi_close_handle_scope(x->env, scope);
    if (n < BATCH) return;
  }
}

/* Lets go of what dhcpOpen took from JavaScript (references left NULL are skipped). */
static void release(napi_env env, dhcpio *x) {
  napi_ref refs[] = { x->meta_ref, x->on_batch, x->on_error };
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
    if (refs[i]) napi_delete_reference(env, refs[i]);
  if (x->async) napi_async_destroy(env, x->async);
}

static void closed(uv_handle_t *h) {
  free(h->data);
}

static void finalize(napi_env env, void *data, void *hint) {
  /* The handle object is gone: its state goes with the poll handle, once closed. */
}

static dhcpio *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "not a DHCP socket handle");
    return NULL;
  }
  return p;
}

static bool u32array(napi_env env, napi_value v, size_t min, uint32_t **out) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint32_array || length < min) {
    napi_throw_type_error(env, NULL, "meta must be a Uint32Array large enough for the batch");
    return false;
  }
  *out = data;
  return true;
}

napi_value dhcp_open(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv, "dhcpOpen(fd, meta, onBatch, onError)")) return NULL;
  int64_t fd;
  if (!arg_int64(env, argv[0], "fd", &fd)) return NULL;
  uint32_t *meta;
  if (!u32array(env, argv[1], 3 * BATCH, &meta)) return NULL;
  dhcpio *x = calloc(1, sizeof *x);
  if (!x) return throw_errno(env, ENOMEM, "dhcpOpen");
  x->fd = (int)fd;
  x->env = env;
  x->meta = meta;
  x->poll.data = x;
  /* Slot i of the slab and address i for datagram i (calloc zeroed the rest of each header). */
  for (int i = 0; i < BATCH; i++) {
    x->iov[i].iov_base = x->slab + (size_t)i * SLOT;
    x->iov[i].iov_len = SLOT;
    x->msgs[i].msg_hdr.msg_iov = &x->iov[i];
    x->msgs[i].msg_hdr.msg_iovlen = 1;
    x->msgs[i].msg_hdr.msg_name = &x->from[i];
  }
  uv_loop_t *loop;
  napi_value name, handle;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || napi_create_reference(env, argv[1], 1, &x->meta_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &x->on_batch) != napi_ok || napi_create_reference(env, argv[3], 1, &x->on_error) != napi_ok ||
      napi_create_string_utf8(env, "provisiond:dhcp", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &x->async) != napi_ok) {
    release(env, x);
    free(x);
    NAPI_OK(env, napi_generic_failure);
  }
  int r = uv_poll_init(loop, &x->poll, x->fd);
  if (r == 0) r = uv_poll_start(&x->poll, UV_READABLE, readable);
  if (r < 0) {
    release(env, x);
    free(x);
    return throw_errno(env, -r, "uv_poll_start");
  }
  NAPI_OK(env, napi_create_external(env, x, finalize, NULL, &handle));
  return handle;
}

napi_value dhcp_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv, "dhcpSend(handle, buf, meta, count)")) return NULL;
  dhcpio *x = unwrap(env, argv[0]);
  if (!x) return NULL;
  if (x->closed) return throw_errno(env, EBADF, "dhcpSend");
  void *buf;
  size_t buflen;
  NAPI_OK(env, napi_get_buffer_info(env, argv[1], &buf, &buflen));
  int64_t count;
  if (!arg_int64(env, argv[3], "count", &count)) return NULL;
  uint32_t *meta;
  if (count < 0 || !u32array(env, argv[2], 3 * (size_t)count, &meta)) return NULL;
  enum { MAX = 64 };
  struct mmsghdr msgs[MAX];
  struct iovec iov[MAX];
  struct sockaddr_in to[MAX];
  size_t off = 0;
  int failed = 0, last = 0;
  int64_t last_index = -1;
  for (int64_t start = 0; start < count; start += MAX) {
    int k = count - start < MAX ? (int)(count - start) : MAX;
    for (int i = 0; i < k; i++) {
      size_t len = meta[3 * (start + i)];
      if (off + len > buflen) {
        napi_throw_range_error(env, NULL, "dhcpSend: the lengths run past the buffer");
        return NULL;
      }
      iov[i].iov_base = (unsigned char *)buf + off;
      iov[i].iov_len = len;
      off += len;
      memset(&to[i], 0, sizeof to[i]);
      to[i].sin_family = AF_INET;
      to[i].sin_addr.s_addr = htonl(meta[3 * (start + i) + 1]);
      to[i].sin_port = htons((uint16_t)meta[3 * (start + i) + 2]);
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &to[i];
      msgs[i].msg_hdr.msg_namelen = sizeof to[i];
    }
    int done = 0;
    while (done < k) {
      int n = sendmmsg(x->fd, msgs + done, (unsigned)(k - done), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        /* This datagram is refused: count it, go on with the next. */
        failed++;
        last = errno;
        last_index = start + done;
        done++;
      } else {
        done += n;
      }
    }
  }
  napi_value out;
  if (!failed) {
    NAPI_OK(env, napi_get_null(env, &out));
    return out;
  }
  napi_value vf, vc, vi;
  NAPI_OK(env, napi_create_object(env, &out));
  NAPI_OK(env, napi_create_int32(env, failed, &vf));
  NAPI_OK(env, napi_create_string_utf8(env, errno_name(last), NAPI_AUTO_LENGTH, &vc));
  NAPI_OK(env, napi_create_int64(env, last_index, &vi));
  NAPI_OK(env, napi_set_named_property(env, out, "failed", vf));
  NAPI_OK(env, napi_set_named_property(env, out, "code", vc));
  NAPI_OK(env, napi_set_named_property(env, out, "index", vi));
  return out;
}

napi_value dhcp_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv, "dhcpClose(handle)")) return NULL;
  dhcpio *x = unwrap(env, argv[0]);
  if (!x) return NULL;
  if (!x->closed) {
    x->closed = true;
    /* Stopping takes the descriptor out of the event loop's epoll set: then it may be closed. */
    uv_poll_stop(&x->poll);
    close(x->fd);
    release(env, x);
    uv_close((uv_handle_t *)&x->poll, closed);
  }
  napi_value undef;
  NAPI_OK(env, napi_get_undefined(env, &undef));
  return undef;
}
