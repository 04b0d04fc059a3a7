/*
 * bench/identity's flooder: wrong node credentials from one address, as fast as asked. Keeps up to
 * CONC non-blocking connections from SRC to 127.0.0.1:PORT, each sending one check-in with a wrong
 * credential and reading until the server closes it; starts new connections at RATE per second for
 * SECONDS. Prints one JSON line: connections started, answers by status, connections closed without
 * an answer (cut at accept by the rate limit), and the rate reached.
 * Usage: flood SRC PORT PATH RATE SECONDS CONC
 * Built by bench/identity.ts with cc; the daemon itself has no part in it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn { int fd; int sent; char buf[64]; int got; };

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
  if (argc != 7) { fprintf(stderr, "usage: flood SRC PORT PATH RATE SECONDS CONC\n"); return 2; }
  const char *src = argv[1]; int port = atoi(argv[2]); const char *path = argv[3];
  double rate = atof(argv[4]), secs = atof(argv[5]); int conc = atoi(argv[6]);
  char req[1024];
  int reqlen = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: master\r\nAuthorization: Bearer ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\r\nConnection: close\r\n\r\n", path);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) }, from = { .sin_family = AF_INET };
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr); inet_pton(AF_INET, src, &from.sin_addr);
  int ep = epoll_create1(0);
  struct conn *cs = calloc(conc, sizeof *cs);
  for (int i = 0; i < conc; i++) cs[i].fd = -1;
  long started = 0, answered = 0, dropped = 0, failed = 0, status[6] = {0};
  double t0 = now(), end = t0 + secs;
  int open = 0;
  while (now() < end || open > 0) {
    double t = now();
    long due = t < end ? (long)((t - t0) * rate) : started;
    for (int i = 0; i < conc && started < due; i++) {
      if (cs[i].fd >= 0) continue;
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      struct linger lg = { 1, 0 }; /* RST on close: no TIME_WAIT pile-up on the flooder's side */
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0 || (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)) { close(fd); failed++; started++; continue; }
      cs[i] = (struct conn){ .fd = fd };
      struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i };
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      started++; open++;
    }
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 1);
    for (int k = 0; k < n; k++) {
      struct conn *c = &cs[evs[k].data.u32];
      if (c->fd < 0) continue;
      int done = 0;
      if ((evs[k].events & EPOLLOUT) && !c->sent) {
        if (write(c->fd, req, reqlen) == reqlen) { c->sent = 1; struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = evs[k].data.u32 }; epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev); }
        else done = 1;
      }
      if (evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        char b[4096]; ssize_t r;
        while ((r = read(c->fd, b, sizeof b)) > 0) { if (c->got < (int)sizeof c->buf - 1) { int m = r < (ssize_t)(sizeof c->buf - 1 - c->got) ? (int)r : (int)(sizeof c->buf - 1 - c->got); memcpy(c->buf + c->got, b, m); c->got += m; } }
        if (r == 0 || (r < 0 && errno != EAGAIN)) done = 1;
      }
      if (done) {
        if (c->got >= 12 && strncmp(c->buf, "HTTP/1.", 7) == 0) { int s = atoi(c->buf + 9); answered++; if (s >= 100 && s < 600) status[s / 100]++; if (s == 403) status[0]++; }
        else dropped++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; open--;
      }
    }
  }
  double took = now() - t0;
  /* status[0] counts 403s; 4xx includes them */
  printf("{\"started\":%ld,\"answered\":%ld,\"dropped\":%ld,\"failed\":%ld,\"s2xx\":%ld,\"s403\":%ld,\"s4xx\":%ld,\"s5xx\":%ld,\"seconds\":%.2f,\"rate\":%.0f}\n",
         started, answered, dropped, failed, status[2], status[0], status[4], status[5], took, started / secs);
  return 0;
}
