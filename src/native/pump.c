/*
 * provisiond-tftp-pump: the data phase of TFTP read transfers of regular files, in C. Node keeps the
 * request socket, parsing, path safety, option negotiation and logging; for a big file it hands this
 * process a job (file path + its device/inode as Node opened it, client, negotiated options, the
 * encoded OACK) and the pump runs the transfer on its own socket (its TID) with the same rules as
 * transfer.ts: OACK handshake, lockstep or RFC 7440 windows restarted after a gap, duplicate ACKs send
 * nothing (no Sorcerer's Apprentice), foreign ports get error 5, 16-bit block numbers roll over,
 * retransmission with doubling backoff bounded by `retries`, then the transfer is dropped and freed.
 * One epoll loop carries every transfer. Built by node-gyp at `npm ci` (binding.gyp, target
 * provisiond-tftp-pump); src/native/index.ts finds it. Usage: provisiond-tftp-pump [SPIN_US]
 * (config tftp.pumpSpinUs: longest busy-poll for an ACK in microseconds, 0 turns it off).
 *
 * Frames both ways on stdin/stdout: type(1) id(u32 BE) length(u32 BE) payload.
 *  in:  J id job     A id reason (abort: error packet to the client, outcome aborted)
 *       P 0 allowed(u8) (busy-polling allowed: few transfers run in all pumps, see spin())
 *  out: S id port(u16)   F id reason (not started: Node serves it itself)
 *       E id outcome(u8) bytes(u64) retransmits(u32) ms(u32) strays(u32) reason
 *       (strays: packets ignored: from another port, runts, unknown opcodes, ACKs fitting no block)
 * Job: client ip(u32) port(u16) bind ip(u32) blksize(u16) windowsize(u16) timeout ms(u32) retries(u16)
 *      flags(u8: 1 tsize asked) size(u64) dev(u64) ino(u64) oack length(u16) oack path
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { PH_OACK, PH_DATA, PH_DONE };
enum { OUT_OK, OUT_PROBE, OUT_OPTIONS_REFUSED, OUT_ABORTED, OUT_TIMEOUT, OUT_ERROR };
#define MAX_BACKOFF 8
#define BATCH 64
#define CHUNK (256 * 1024)
#define SPIN_US 1000 /* longest busy-poll before sleeping; argv[1] overrides, 0 turns it off */
#define SPIN_BACKOFF 64 /* sleeps without polling after a poll that waited in vain */

struct xfer {
  uint32_t id;
  int sock, stray, fd, phase, tsize_asked, want_out;
  struct sockaddr_in peer;
  uint32_t blksize, window, timeout_ms, retries, tries, strays;
  uint64_t size, last_block, last_len, acked, next, sent_upto, retransmits;
  int64_t deadline, started;
  unsigned char *oack; size_t oack_len;
  unsigned char *buf; uint64_t buf_off; size_t buf_len, buf_cap;
  struct xfer *next_dead;
};

static struct xfer **xs; static size_t nxs, capxs;
static struct xfer *dead;
static int ep;
static int spin_us, spin_allowed, spin_skip;
static int64_t next_scan = INT64_MAX;
static unsigned char *obuf; static size_t olen, ocap;
static unsigned char *ibuf; static size_t ilen, icap;
static unsigned char hdrs[BATCH][4];
static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH][2];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void *xrealloc(void *p, size_t n) { p = realloc(p, n); if (!p) _exit(70); return p; }
static void put(const void *p, size_t n) {
  if (olen + n > ocap) { ocap = (olen + n) * 2; obuf = xrealloc(obuf, ocap); }
  memcpy(obuf + olen, p, n); olen += n;
}
static void be(unsigned char *p, uint64_t v, int n) { for (int i = n - 1; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; } }
static uint64_t rd(const unsigned char *p, int n) { uint64_t v = 0; for (int i = 0; i < n; i++) v = (v << 8) | p[i]; return v; }
static void emit(char t, uint32_t id, const void *p, uint32_t n) {
  unsigned char h[9]; h[0] = (unsigned char)t; be(h + 1, id, 4); be(h + 5, n, 4);
  put(h, 9); put(p, n);
}
static void flush_out(void) {
  size_t off = 0;
  while (off < olen) {
    ssize_t w = write(1, obuf + off, olen - off);
    if (w < 0) { if (errno == EINTR || errno == EAGAIN) continue; _exit(0); }
    off += (size_t)w;
  }
  olen = 0;
}

static void arm(struct xfer *x, int64_t now) {
  uint32_t mult = x->tries >= 3 ? MAX_BACKOFF : 1u << x->tries;
  x->deadline = now + (int64_t)x->timeout_ms * mult;
  if (x->deadline < next_scan) next_scan = x->deadline;
}

static void send_raw(struct xfer *x, const void *p, size_t n) {
  (void)!send(x->sock, p, n, MSG_DONTWAIT);
}
static void send_error(int sock, const struct sockaddr_in *to, int code, const char *msg) {
  unsigned char p[600]; size_t n = strlen(msg); if (n > 500) n = 500;
  p[0] = 0; p[1] = 5; be(p + 2, (uint64_t)code, 2); memcpy(p + 4, msg, n); p[4 + n] = 0;
  (void)!sendto(sock, p, 5 + n, MSG_DONTWAIT, (const struct sockaddr *)to, sizeof *to);
}

static void finish(struct xfer *x, int outcome, const char *reason) {
  if (x->phase == PH_DONE) return;
  x->phase = PH_DONE;
  uint64_t bytes = outcome == OUT_OK ? (x->last_block - 1) * x->blksize + x->last_len : x->acked * x->blksize;
  size_t rl = reason ? strlen(reason) : 0;
  unsigned char p[21 + 512];
  if (rl > 512) rl = 512;
  p[0] = (unsigned char)outcome; be(p + 1, bytes, 8); be(p + 9, x->retransmits, 4);
  be(p + 13, (uint64_t)(now_ms() - x->started), 4);
  be(p + 17, x->strays, 4);
  if (rl) memcpy(p + 21, reason, rl);
  emit('E', x->id, p, (uint32_t)(21 + rl));
  epoll_ctl(ep, EPOLL_CTL_DEL, x->sock, NULL);
  epoll_ctl(ep, EPOLL_CTL_DEL, x->stray, NULL);
  for (size_t i = 0; i < nxs; i++) if (xs[i] == x) { xs[i] = xs[--nxs]; break; }
  x->next_dead = dead; dead = x; /* freed after this batch of events: another event may still name it */
}

static void bury(void) {
  while (dead) {
    struct xfer *x = dead; dead = x->next_dead;
    close(x->sock); close(x->stray); close(x->fd); free(x->buf); free(x->oack); free(x);
  }
}

/* Makes block n's bytes present in the buffer; returns its payload or NULL on a read error (finished). */
static const unsigned char *block_data(struct xfer *x, uint64_t n, size_t *len) {
  uint64_t off = (n - 1) * x->blksize;
  *len = n == x->last_block ? x->last_len : x->blksize;
  if (*len == 0) return x->buf;
  if (off >= x->buf_off && off + *len <= x->buf_off + x->buf_len) return x->buf + (off - x->buf_off);
  size_t want = x->size - off < x->buf_cap ? (size_t)(x->size - off) : x->buf_cap;
  size_t got = 0;
  while (got < want) {
    ssize_t r = pread(x->fd, x->buf + got, want - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      char msg[128];
      if (r == 0) snprintf(msg, sizeof msg, "file shrank while being sent (expected %llu bytes)", (unsigned long long)x->size);
      else snprintf(msg, sizeof msg, "reading: %s", strerror(errno));
      x->buf_len = 0;
      finish(x, OUT_ERROR, msg);
      return NULL;
    }
    got += (size_t)r;
  }
  x->buf_off = off; x->buf_len = got;
  return x->buf;
}

/* Sends `k` prepared messages; false when the socket is full (wait for EPOLLOUT) or failed. */
static int flush_batch(struct xfer *x, int k, uint64_t first) {
  int done = 0;
  while (done < k) {
    /* One datagram (lockstep): plain sendmsg, the cheaper call. */
    int m = k - done == 1 ? (sendmsg(x->sock, &msgs[done].msg_hdr, MSG_DONTWAIT) < 0 ? -1 : 1)
                          : sendmmsg(x->sock, msgs + done, (unsigned)(k - done), MSG_DONTWAIT);
    if (m < 0) {
      /* ECONNREFUSED: an ICMP error from the client's side, reported once; the datagram was not sent, send it now. */
      if (errno == EINTR || errno == ECONNREFUSED) continue;
      if (errno == EAGAIN || errno == ENOBUFS) {
        x->want_out = 1;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = x };
        epoll_ctl(ep, EPOLL_CTL_MOD, x->sock, &ev);
        break;
      }
      char msg[128]; snprintf(msg, sizeof msg, "socket: %s", strerror(errno));
      finish(x, OUT_ERROR, msg);
      return 0;
    }
    done += m;
  }
  if (done > 0) {
    uint64_t last = first + (uint64_t)done - 1;
    if (last > x->sent_upto) x->sent_upto = last;
    x->next = last + 1;
  }
  return done == k;
}

/*
 * Reads the block after the window now, while the client takes its turn, rather than after its ACK
 * arrives (the sent blocks are already copied into the kernel; a retransmission reads them again).
 */
static void prefetch(struct xfer *x) {
  if (x->phase != PH_DATA || x->next > x->last_block) return;
  uint64_t off = (x->next - 1) * x->blksize;
  size_t need = x->next == x->last_block ? x->last_len : x->blksize, len;
  if (need && !(off >= x->buf_off && off + need <= x->buf_off + x->buf_len)) block_data(x, x->next, &len);
}

/* Sends blocks next .. acked + window (bounded by the last block), then reads ahead. */
static void send_window(struct xfer *x) {
  if (x->phase != PH_DATA || x->want_out) return;
  uint64_t end = x->acked + x->window;
  if (end > x->last_block) end = x->last_block;
  while (x->next <= end) {
    int k = 0; uint64_t first = x->next;
    for (uint64_t n = first; n <= end && k < BATCH; n++) {
      size_t len;
      uint64_t off = (n - 1) * x->blksize;
      size_t need = n == x->last_block ? x->last_len : x->blksize;
      if (need && !(off >= x->buf_off && off + need <= x->buf_off + x->buf_len) && k > 0) break; /* refill after sending these */
      const unsigned char *d = block_data(x, n, &len);
      if (!d) return;
      hdrs[k][0] = 0; hdrs[k][1] = 3; be(hdrs[k] + 2, n & 0xffff, 2);
      iovs[k][0].iov_base = hdrs[k]; iovs[k][0].iov_len = 4;
      iovs[k][1].iov_base = (void *)d; iovs[k][1].iov_len = len;
      memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
      msgs[k].msg_hdr.msg_iov = iovs[k]; msgs[k].msg_hdr.msg_iovlen = 2;
      k++;
    }
    if (!flush_batch(x, k, first)) return;
  }
  prefetch(x);
}

static void on_client_error(struct xfer *x, const unsigned char *p, size_t n) {
  unsigned code = (unsigned)rd(p + 2, 2);
  char m[256]; size_t ml = 0;
  while (4 + ml < n && p[4 + ml] && ml < 200) { m[ml] = (char)p[4 + ml]; ml++; }
  m[ml] = 0;
  char why[320];
  if (x->phase == PH_OACK && x->tsize_asked) {
    snprintf(why, sizeof why, "client ended after the size (error %u%s%s)", code, ml ? ": " : "", m);
    finish(x, OUT_PROBE, why);
  } else if (x->phase == PH_OACK && code == 8) {
    finish(x, OUT_OPTIONS_REFUSED, ml ? m : "client refused the options");
  } else {
    snprintf(why, sizeof why, "client error %u%s%s", code, ml ? ": " : "", m);
    finish(x, OUT_ABORTED, why);
  }
}

static void on_ack(struct xfer *x, unsigned block, int64_t now) {
  if (x->phase == PH_OACK) {
    if (block != 0) { x->strays++; return; }
    x->phase = PH_DATA;
    x->tries = 0; arm(x, now);
    send_window(x);
    return;
  }
  uint64_t delta = (block - (x->acked & 0xffff)) & 0xffff;
  if (delta == 0 || x->acked + delta > x->sent_upto) { x->strays++; return; } /* duplicate, old or bogus: send nothing */
  if (x->acked + delta < x->sent_upto) x->retransmits += x->sent_upto - (x->acked + delta);
  x->acked += delta;
  if (x->acked >= x->last_block) { finish(x, OUT_OK, NULL); return; }
  x->next = x->acked + 1;
  x->tries = 0; arm(x, now);
  send_window(x);
}

/* A packet on the connected socket: the kernel lets only the client's address and port in. */
static void on_packet(struct xfer *x, int64_t now) {
  unsigned char p[1024];
  ssize_t n = recv(x->sock, p, sizeof p, MSG_DONTWAIT);
  if (n < 0) return; /* a reported ICMP error (ECONNREFUSED): retransmission deals with a lost client */
  if (n < 4) { x->strays++; return; }
  unsigned op = (unsigned)rd(p, 2);
  if (op == 4) on_ack(x, (unsigned)rd(p + 2, 2), now);
  else if (op == 5) on_client_error(x, p, (size_t)n);
  else x->strays++;
}

/* A packet on the stray socket: someone else (or an old socket of the client) wrote to this TID. */
static void on_stray(struct xfer *x) {
  unsigned char p[1024];
  struct sockaddr_in from; socklen_t fl = sizeof from;
  ssize_t n = recvfrom(x->stray, p, sizeof p, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
  if (n < 0) return;
  x->strays++;
  if (fl == sizeof from && from.sin_family == AF_INET) send_error(x->stray, &from, 5, "unknown transfer id");
}

static void on_timeout(struct xfer *x, int64_t now) {
  if (++x->tries > x->retries) {
    char msg[128];
    if (x->phase == PH_OACK) snprintf(msg, sizeof msg, "no acknowledgement of option acknowledgement after %u retries", x->retries);
    else snprintf(msg, sizeof msg, "no acknowledgement of block %llu after %u retries", (unsigned long long)(x->acked + 1), x->retries);
    finish(x, OUT_TIMEOUT, msg);
    return;
  }
  if (x->phase == PH_OACK) send_raw(x, x->oack, x->oack_len);
  else {
    if (x->sent_upto > x->acked) x->retransmits += x->sent_upto - x->acked;
    x->next = x->acked + 1;
    send_window(x);
  }
  if (x->phase != PH_DONE) arm(x, now);
}

/*
 * The transfer's sockets. `sock` is connected to the client, like tftpd-hpa's: the kernel keeps the
 * route and filters the source, so a block costs no route lookup and no address copy. `stray` is bound
 * to the same port unconnected: the kernel prefers the connected socket for the client's packets and
 * hands everything else to it, which gets error 5. `sock` takes its port alone (no SO_REUSEADDR at bind
 * time, so no other socket holds it) and then allows `stray` to share it. Returns -1 with errno set.
 */
static int open_sockets(struct xfer *x, struct sockaddr_in *local) {
  int one = 1, sb = 1024 * 1024, rb = 256 * 1024;
  socklen_t ll = sizeof *local;
  x->sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (x->sock < 0) return -1;
  setsockopt(x->sock, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
  setsockopt(x->sock, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
  if (bind(x->sock, (struct sockaddr *)local, sizeof *local) < 0 || getsockname(x->sock, (struct sockaddr *)local, &ll) < 0) return -1;
  if (setsockopt(x->sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return -1;
  x->stray = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (x->stray < 0) return -1;
  if (setsockopt(x->stray, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || bind(x->stray, (struct sockaddr *)local, sizeof *local) < 0) return -1;
  if (connect(x->sock, (struct sockaddr *)&x->peer, sizeof x->peer) < 0) return -1;
  struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)x };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, x->sock, &ev) < 0) return -1;
  ev.data.u64 = (uint64_t)(uintptr_t)x | 1; /* tagged: the stray socket */
  if (epoll_ctl(ep, EPOLL_CTL_ADD, x->stray, &ev) < 0) { epoll_ctl(ep, EPOLL_CTL_DEL, x->sock, NULL); return -1; }
  return 0;
}

/*
 * Busy-poll for the client's next packet before sleeping in epoll_wait. A lockstep transfer spends
 * its time waiting for each ACK, and on a virtual machine whose CPUs halt when idle, being woken
 * from a halt costs more than the whole round trip, for the client too (its ACK must wake us).
 * Measured here: 4-9 MB/s at blksize 1468 when the machine was otherwise idle, 26-32 MB/s polling;
 * 105-150 MB/s at 65464 with curl, 315-595 polling up to 1 ms (curl's turn, taking in and writing
 * 64 KiB, lasts 300-400 us: a 100 us poll was always in vain there). Only while Node says there are
 * CPUs to spare (spin_allowed: few transfers running in all pumps) and this pump runs a single
 * transfer; a poll that waits in vain (the client is slow or the machine busy) turns polling off for the next
 * SPIN_BACKOFF waits, so a busy machine pays at most spin_us per SPIN_BACKOFF packets.
 * Returns epoll_wait's count (0: nothing came, sleep).
 */
static int spin(struct epoll_event *evs, int max) {
  if (!spin_us || !spin_allowed || nxs != 1) return 0;
  if (spin_skip > 0) { spin_skip--; return 0; }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    int k = epoll_wait(ep, evs, max, 0);
    if (k != 0) return k;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if ((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000 >= spin_us) break;
  }
  spin_skip = SPIN_BACKOFF;
  return 0;
}

static void fail(uint32_t id, const char *what) {
  char msg[256]; snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  emit('F', id, msg, (uint32_t)strlen(msg));
}

static void start_job(uint32_t id, const unsigned char *p, uint32_t n) {
  if (n < 48) { emit('F', id, "bad job", 7); return; }
  struct xfer *x = calloc(1, sizeof *x);
  if (!x) _exit(70);
  x->id = id; x->sock = -1; x->stray = -1; x->fd = -1;
  x->peer.sin_family = AF_INET;
  memcpy(&x->peer.sin_addr.s_addr, p, 4); memcpy(&x->peer.sin_port, p + 4, 2);
  struct sockaddr_in local = { .sin_family = AF_INET };
  memcpy(&local.sin_addr.s_addr, p + 6, 4);
  x->blksize = (uint32_t)rd(p + 10, 2); x->window = (uint32_t)rd(p + 12, 2);
  x->timeout_ms = (uint32_t)rd(p + 14, 4); x->retries = (uint32_t)rd(p + 18, 2);
  x->tsize_asked = p[20] & 1;
  x->size = rd(p + 21, 8);
  uint64_t dev = rd(p + 29, 8), ino = rd(p + 37, 8);
  size_t oack_len = (size_t)rd(p + 45, 2);
  if (47 + oack_len >= n || x->blksize < 8 || x->window < 1 || x->timeout_ms < 1) { emit('F', id, "bad job", 7); free(x); return; }
  size_t path_len = n - 47 - oack_len;
  char *path = malloc(path_len + 1);
  if (!path) _exit(70);
  memcpy(path, p + 47 + oack_len, path_len); path[path_len] = 0;
  x->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  free(path);
  struct stat st;
  if (x->fd < 0) { fail(id, "open"); free(x); return; }
  if (fstat(x->fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) {
    emit('F', id, "file replaced since it was checked", 34); close(x->fd); free(x); return;
  }
  if (open_sockets(x, &local) < 0) {
    fail(id, "transfer socket");
    if (x->sock >= 0) close(x->sock);
    if (x->stray >= 0) close(x->stray);
    close(x->fd); free(x); return;
  }
  x->oack_len = oack_len;
  if (oack_len) { x->oack = malloc(oack_len); if (!x->oack) _exit(70); memcpy(x->oack, p + 47, oack_len); }
  x->last_block = x->size / x->blksize + 1;
  x->last_len = x->size % x->blksize;
  size_t cap = (size_t)x->blksize * x->window * 2;
  if (cap < CHUNK) cap = CHUNK;
  cap -= cap % x->blksize;
  if (cap > x->size) cap = (size_t)x->size;
  x->buf_cap = cap; x->buf = malloc(cap ? cap : 1);
  if (!x->buf) _exit(70);
  x->acked = 0; x->next = 1; x->sent_upto = 0;
  int64_t now = now_ms();
  x->started = now;
  if (nxs == capxs) { capxs = capxs ? capxs * 2 : 64; xs = xrealloc(xs, capxs * sizeof *xs); }
  xs[nxs++] = x;
  unsigned char port[2]; memcpy(port, &local.sin_port, 2);
  emit('S', id, port, 2);
  flush_out(); /* Node hears "started" before any packet leaves: a pump dying later never leaves it guessing */
  if (oack_len) { x->phase = PH_OACK; send_raw(x, x->oack, x->oack_len); }
  else { x->phase = PH_DATA; send_window(x); }
  if (x->phase != PH_DONE) arm(x, now);
}

static void abort_job(uint32_t id, const unsigned char *p, uint32_t n) {
  for (size_t i = 0; i < nxs; i++) {
    struct xfer *x = xs[i];
    if (x->id != id) continue;
    char msg[256]; size_t l = n < 255 ? n : 255;
    memcpy(msg, p, l); msg[l] = 0;
    send_error(x->sock, &x->peer, 0, msg);
    finish(x, OUT_ABORTED, msg);
    return;
  }
}

static int on_stdin(void) {
  if (icap - ilen < 65536) { icap = icap ? icap * 2 : 131072; ibuf = xrealloc(ibuf, icap); }
  ssize_t r = read(0, ibuf + ilen, icap - ilen);
  if (r < 0) return errno == EINTR || errno == EAGAIN;
  if (r == 0) return 0;
  ilen += (size_t)r;
  size_t off = 0;
  while (ilen - off >= 9) {
    uint32_t id = (uint32_t)rd(ibuf + off + 1, 4), n = (uint32_t)rd(ibuf + off + 5, 4);
    if (ilen - off - 9 < n) break;
    const unsigned char *pl = ibuf + off + 9;
    if (ibuf[off] == 'J') start_job(id, pl, n);
    else if (ibuf[off] == 'A') abort_job(id, pl, n);
    else if (ibuf[off] == 'P' && n >= 1) { spin_allowed = pl[0] != 0; spin_skip = 0; }
    off += 9 + n;
  }
  memmove(ibuf, ibuf + off, ilen - off);
  ilen -= off;
  return 1;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  spin_us = argc > 1 ? atoi(argv[1]) : SPIN_US;
  if (spin_us < 0) spin_us = 0;
  if (spin_us > 10000) spin_us = 10000;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return 71;
  static int stdin_tag;
  struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &stdin_tag };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev) < 0) return 71;
  struct epoll_event evs[256];
  for (;;) {
    int64_t now = now_ms();
    if (now >= next_scan) {
      /* Deadlines only move later, so next_scan may be early: then this finds nothing and recomputes it. */
      next_scan = INT64_MAX;
      for (size_t i = 0; i < nxs;) {
        struct xfer *x = xs[i];
        if (x->deadline <= now) on_timeout(x, now);
        if (i < nxs && xs[i] == x) { if (x->deadline < next_scan) next_scan = x->deadline; i++; }
      }
      bury();
    }
    flush_out();
    int wait = next_scan == INT64_MAX ? -1 : (int)(next_scan - now < 0 ? 0 : next_scan - now);
    int k = wait != 0 ? spin(evs, 256) : 0;
    if (k == 0) k = epoll_wait(ep, evs, 256, wait);
    if (k < 0 && errno != EINTR) return 72;
    now = now_ms();
    for (int i = 0; i < k; i++) {
      if (evs[i].data.ptr == &stdin_tag) {
        if (!on_stdin()) {
          /* Node is gone: tell every client, then leave. */
          for (size_t j = nxs; j > 0; j--) { send_error(xs[j - 1]->sock, &xs[j - 1]->peer, 0, "server shutting down"); finish(xs[j - 1], OUT_ABORTED, "server shutting down"); }
          bury();
          return 0;
        }
        continue;
      }
      struct xfer *x = (struct xfer *)(uintptr_t)(evs[i].data.u64 & ~(uint64_t)1);
      if (x->phase == PH_DONE) continue;
      if (evs[i].data.u64 & 1) { on_stray(x); continue; }
      if ((evs[i].events & EPOLLOUT) && x->want_out) {
        x->want_out = 0;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = x };
        epoll_ctl(ep, EPOLL_CTL_MOD, x->sock, &ev);
        send_window(x);
      }
      if ((evs[i].events & (EPOLLIN | EPOLLERR)) && x->phase != PH_DONE) on_packet(x, now);
    }
    bury();
  }
}
