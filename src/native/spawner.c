/*
 * provisiond-spawner: the nodescript engine's spawner process (src/nodescript/spawner/process-spawner.ts),
 * in C with vfork(), so that starting a nodescript costs the spawner almost nothing and a boot
 * storm's thousands of fork/exec never block the daemon's event loop. A dumb executor: Node decides
 * timeouts and limits. When its stdin closes it sends SIGTERM to every job's process group (SIGKILL
 * 3 s later) and exits. Built by node-gyp at `npm ci` (binding.gyp); src/native/index.ts finds it.
 *
 * Frames both ways: type(1) id(u32 BE) length(u32 BE) payload.
 *  in:  R id "path\0cwd\0K=V\0..."   K id "TERM"|"KILL"
 *  out: O id bytes   E id bytes   X id "code signo"   F id message
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct job { uint32_t id; pid_t pid; int out, err, done, code, sig; };
static struct job *jobs; static size_t njobs, capjobs;
static char *obuf; static size_t olen, ocap;
static char *ibuf; static size_t ilen, icap;
static int selfpipe[2], devnull;

static void put(const void *p, size_t n) {
  if (olen + n > ocap) { ocap = (olen + n) * 2; obuf = realloc(obuf, ocap); if (!obuf) _exit(70); }
  memcpy(obuf + olen, p, n); olen += n;
}
static void emit(char t, uint32_t id, const char *p, uint32_t n) {
  unsigned char h[9] = { (unsigned char)t, id >> 24, id >> 16, id >> 8, id, n >> 24, n >> 16, n >> 8, n };
  put(h, 9); put(p, n);
}
static void flush(void) {
  size_t off = 0;
  while (off < olen) {
    ssize_t w = write(1, obuf + off, olen - off);
    if (w < 0) { if (errno == EINTR || errno == EAGAIN) continue; _exit(0); }
    off += (size_t)w;
  }
  olen = 0;
}
static void onchld(int s) { (void)s; int e = errno; char c = 0; (void)!write(selfpipe[1], &c, 1); errno = e; }

static void finish(size_t i) {
  struct job *j = &jobs[i];
  if (j->out >= 0 || j->err >= 0 || !j->done) return;
  char msg[32]; int n = snprintf(msg, sizeof msg, "%d %d", j->code, j->sig);
  emit('X', j->id, msg, (uint32_t)n);
  jobs[i] = jobs[--njobs];
}

static void start(uint32_t id, char *p, uint32_t n) {
  char *end = p + n, *path = p, *cwd = memchr(p, 0, n) ? p + strlen(p) + 1 : end;
  if (cwd >= end) { emit('F', id, "bad request", 11); return; }
  size_t nenv = 0; char *q;
  for (q = cwd + strlen(cwd) + 1; q < end; q += strlen(q) + 1) nenv++;
  char **envp = calloc(nenv + 1, sizeof *envp); size_t k = 0;
  for (q = cwd + strlen(cwd) + 1; q < end; q += strlen(q) + 1) envp[k++] = q;
  int o[2], e[2];
  if (pipe2(o, O_CLOEXEC) < 0) { free(envp); emit('F', id, "pipe failed", 11); return; }
  if (pipe2(e, O_CLOEXEC) < 0) { close(o[0]); close(o[1]); free(envp); emit('F', id, "pipe failed", 11); return; }
  fcntl(o[0], F_SETFL, O_NONBLOCK); fcntl(e[0], F_SETFL, O_NONBLOCK); /* our ends only: the script's stay blocking */
  char *argv[] = { path, NULL }; char *shargv[] = { "sh", path, NULL };
  pid_t pid = vfork();
  if (pid == 0) {
    setsid();
    dup2(devnull, 0); dup2(o[1], 1); dup2(e[1], 2);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL); sigaction(SIGPIPE, &sa, NULL);
    if (chdir(cwd) < 0) { (void)!write(2, "cannot change directory\n", 24); _exit(126); }
    execve(path, argv, envp);
    if (errno == ENOEXEC) execve("/bin/sh", shargv, envp); /* as execvp does for a file without #! */
    const char *m = strerror(errno);
    (void)!write(2, "cannot execute: ", 16); (void)!write(2, m, strlen(m)); (void)!write(2, "\n", 1);
    _exit(127);
  }
  free(envp); close(o[1]); close(e[1]);
  if (pid < 0) { close(o[0]); close(e[0]); emit('F', id, "fork failed", 11); return; }
  if (njobs == capjobs) { capjobs = capjobs ? capjobs * 2 : 64; jobs = realloc(jobs, capjobs * sizeof *jobs); if (!jobs) _exit(70); }
  jobs[njobs++] = (struct job){ id, pid, o[0], e[0], 0, 0, 0 };
}

static void input(void) {
  size_t off = 0;
  while (ilen - off >= 9) {
    unsigned char *h = (unsigned char *)ibuf + off;
    uint32_t id = (uint32_t)h[1] << 24 | h[2] << 16 | h[3] << 8 | h[4];
    uint32_t n = (uint32_t)h[5] << 24 | h[6] << 16 | h[7] << 8 | h[8];
    if (ilen - off < 9 + (size_t)n) break;
    char *p = ibuf + off + 9; char t = (char)h[0];
    if (t == 'R') { char save = p[n]; p[n] = 0; start(id, p, n); p[n] = save; }
    else if (t == 'K') {
      int sig = (n == 4 && !memcmp(p, "KILL", 4)) ? SIGKILL : SIGTERM;
      for (size_t i = 0; i < njobs; i++) if (jobs[i].id == id) kill(-jobs[i].pid, sig);
    }
    off += 9 + n;
  }
  memmove(ibuf, ibuf + off, ilen - off); ilen -= off;
}

static void reap(void) {
  int st; pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
    for (size_t i = 0; i < njobs; i++) if (jobs[i].pid == pid && !jobs[i].done) {
      jobs[i].done = 1;
      if (WIFSIGNALED(st)) { jobs[i].code = -1; jobs[i].sig = WTERMSIG(st); } else jobs[i].code = WEXITSTATUS(st);
      finish(i); break;
    }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (pipe2(selfpipe, O_CLOEXEC | O_NONBLOCK) < 0) return 70;
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = onchld; sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  icap = 1 << 16; ibuf = malloc(icap + 1);
  int ineof = 0, killed = 0; time_t eofat = 0;
  struct pollfd *pf = NULL; size_t pfcap = 0;
  static char buf[65536];
  for (;;) {
    reap(); flush();
    if (ineof) {
      if (njobs == 0) return 0;
      if (!killed && time(NULL) - eofat >= 3) { for (size_t i = 0; i < njobs; i++) kill(-jobs[i].pid, SIGKILL); killed = 1; }
    }
    size_t need = 2 + 2 * njobs;
    if (need > pfcap) { pfcap = need * 2; pf = realloc(pf, pfcap * sizeof *pf); if (!pf) return 70; }
    size_t np = 0;
    pf[np++] = (struct pollfd){ selfpipe[0], POLLIN, 0 };
    pf[np++] = (struct pollfd){ ineof ? -1 : 0, POLLIN, 0 };
    for (size_t i = 0; i < njobs; i++) {
      pf[np++] = (struct pollfd){ jobs[i].out, POLLIN, 0 };
      pf[np++] = (struct pollfd){ jobs[i].err, POLLIN, 0 };
    }
    int r = poll(pf, np, ineof ? 500 : -1);
    if (r < 0) { if (errno == EINTR) continue; return 70; }
    if (pf[0].revents) { char c[256]; while (read(selfpipe[0], c, sizeof c) > 0) {} }
    if (pf[1].revents) {
      if (ilen + 65536 > icap) { icap = (ilen + 65536) * 2; ibuf = realloc(ibuf, icap + 1); if (!ibuf) return 70; }
      ssize_t n = read(0, ibuf + ilen, 65536);
      if (n > 0) { ilen += (size_t)n; input(); }
      else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        ineof = 1; eofat = time(NULL);
        for (size_t i = 0; i < njobs; i++) kill(-jobs[i].pid, SIGTERM);
      }
    }
    /* Job fds: walk by id, as finish() reorders the table. */
    for (size_t p = 2; p < np; p++) {
      if (!pf[p].revents) continue;
      int fd = pf[p].fd;
      for (size_t i = 0; i < njobs; i++) {
        struct job *j = &jobs[i];
        if (j->out != fd && j->err != fd) continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) emit(j->out == fd ? 'O' : 'E', j->id, buf, (uint32_t)n);
        else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          close(fd);
          if (j->out == fd) j->out = -1; else j->err = -1;
          finish(i);
        }
        break;
      }
    }
  }
}
