/*
 * berth-mounter: mount(2) and umount2(2) for berthd without a fork of the
 * daemon per call. berthd keeps one of these running and writes requests on
 * its stdin, one per line, fields separated by tabs:
 *
 *   SEQ  M  SOURCE  TARGET  FSTYPE  FLAGS  DATA     mount(SOURCE, TARGET, FSTYPE, FLAGS, DATA)
 *   SEQ  U  TARGET  FLAGS                           umount2(TARGET, FLAGS)
 *   SEQ  N  TARGET                                  a new network namespace, kept by a bind mount
 *                                                   of it on TARGET (an existing file), as
 *                                                   `ip netns add` and `unshare --net=TARGET` make
 *   SEQ  I  NETNS  BATCH [NETNS  BATCH]             `ip -batch -` with BATCH on its stdin, in the
 *                                                   network namespace at path NETNS ("": the helper's
 *                                                   own), each pair in turn, stopping at the first
 *                                                   that fails; BATCH's lines are separated by \x1e
 *
 *   SEQ  P  MODE  TIMEOUT_MS  CWD  ENV  ARGV       a program run without a fork of berthd (whose
 *                                                   fork copies the page tables of tens of MB and
 *                                                   holds its event loop for milliseconds): ARGV[0]
 *                                                   (a path) with ARGV and ENV (each \x1e-separated;
 *                                                   ENV "-": the helper's own, which is berthd's),
 *                                                   in CWD ("": the helper's), in a session of its
 *                                                   own, stdin /dev/null. MODE w: stdout and stderr
 *                                                   are read, and the answer comes at its exit:
 *                                                   MESSAGE is CODE \x1f SIGNAL \x1f STDOUT \x1f STDERR.
 *                                                   MODE s (conmon's start): fd 3 is a pipe (its
 *                                                   _OCI_SYNCPIPE) and the answer comes with the first
 *                                                   line on it, or its end: PID \x1f LINE \x1f STDERR.
 *                                                   Past TIMEOUT_MS (0: none) its process group is
 *                                                   killed and the answer is ETIMEDOUT with PID.
 *                                                   In MESSAGE, \\ \n \t and \x1f are written
 *                                                   \\\\ \\n \\t and \\s.
 *
 * FLAGS is a decimal number (MS_* or MNT_*); an empty DATA is NULL. Each
 * request runs in a child of its own, so a call that blocks (an unmount stuck
 * on a dead filesystem) holds up only itself; the child writes the answer
 * "SEQ\tERRNO\tMESSAGE\n" (ERRNO 0: done) in one write, which a pipe keeps
 * whole. A malformed request is answered with EINVAL. Exits when stdin closes.
 * For I, a batch that ip refuses is answered with EIO and the last of what ip
 * printed (newlines as "; ") as MESSAGE; the pairs before it stay done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Held while a child writes an answer of more than PIPE_BUF bytes (shared by all the children). */
static sem_t *answer_lock;

static void answer_msg(const char *seq, int err, const char *msg) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "%s\t%d\t%s\n", seq, err, msg);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) { n = sizeof buf - 1; buf[n - 1] = '\n'; }
  ssize_t w;
  /* Whole by itself (under PIPE_BUF), but not in the middle of a longer answer another child is writing. */
  if (answer_lock) while (sem_wait(answer_lock) < 0 && errno == EINTR) {}
  do { w = write(STDOUT_FILENO, buf, (size_t)n); } while (w < 0 && errno == EINTR);
  if (answer_lock) sem_post(answer_lock);
}

static void answer(const char *seq, int err) { answer_msg(seq, err, err ? strerror(err) : ""); }

/* Writes all of buf to fd (a pipe to ip). */
static int write_all(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    buf += w; len -= (size_t)w;
  }
  return 0;
}

/*
 * Runs `ip -batch -` (in the current network namespace) with batch (lines separated by \x1e) on its
 * stdin. Returns 0, an errno, or EIO with the last of what ip printed in out.
 */
static int ip_batch(char *batch, char *out, size_t outcap) {
  out[0] = 0;
  for (char *c = batch; *c; c++) if (*c == '\x1e') *c = '\n';
  int in[2], er[2];
  if (pipe(in) < 0) return errno;
  if (pipe(er) < 0) { int e = errno; close(in[0]); close(in[1]); return e; }
  pid_t pid = fork();
  if (pid < 0) { int e = errno; close(in[0]); close(in[1]); close(er[0]); close(er[1]); return e; }
  if (pid == 0) {
    dup2(in[0], 0); dup2(er[1], 1); dup2(er[1], 2);
    close(in[0]); close(in[1]); close(er[0]); close(er[1]);
    execlp("ip", "ip", "-batch", "-", (char *)NULL);
    _exit(127);
  }
  close(in[0]); close(er[1]);
  if (write_all(in[1], batch, strlen(batch)) == 0) write_all(in[1], "\n", 1);
  close(in[1]);
  /* Keep the last outcap-1 bytes of what ip says, on one line. */
  char tmp[512];
  size_t len = 0;
  ssize_t r;
  while ((r = read(er[0], tmp, sizeof tmp)) != 0) {
    if (r < 0) { if (errno == EINTR) continue; break; }
    for (ssize_t i = 0; i < r; i++) {
      if (len + 1 >= outcap) { memmove(out, out + 1, len - 1); len--; }
      char ch = tmp[i];
      out[len++] = (ch == '\n' || ch == '\t' || ch == '\r') ? ' ' : ch;
    }
  }
  out[len] = 0;
  close(er[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0) { if (errno != EINTR) return errno; }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && !out[0]) snprintf(out, outcap, "ip: not found");
  return EIO;
}


/* A growing buffer of bytes (what a program printed), kept to at most `cap`. */
struct buf { char *p; size_t len, cap; };

static void buf_add(struct buf *b, const char *d, size_t n) {
  if (b->len + n > b->cap) n = b->cap > b->len ? b->cap - b->len : 0;
  if (!n) return;
  char *q = realloc(b->p, b->len + n + 1);
  if (!q) return;
  b->p = q;
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = 0;
}

/* Appends d to out, escaped for the line protocol (\\ \n \t and \x1f as \\\\ \\n \\t \\s). */
static void buf_escaped(struct buf *out, const char *d, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = d[i];
    const char *e = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\x1f' ? "\\s" : NULL;
    if (e) buf_add(out, e, 2); else buf_add(out, &c, 1);
  }
}

/* Splits s on \x1e into a NULL-ended vector (s is changed). */
static char **split_rs(char *s) {
  size_t n = 1;
  for (char *c = s; *c; c++) if (*c == '\x1e') n++;
  char **v = calloc(n + 1, sizeof *v);
  if (!v) return NULL;
  size_t k = 0;
  if (!*s) { v[0] = NULL; return v; }
  v[k++] = s;
  for (char *c = s; *c; c++) if (*c == '\x1e') { *c = 0; v[k++] = c + 1; }
  v[k] = NULL;
  return v;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is there on fd into b; returns 0 at its end (or an error), 1 otherwise. */
static int drain(int fd, struct buf *b) {
  char tmp[4096];
  ssize_t r = read(fd, tmp, sizeof tmp);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (r <= 0) return 0;
  buf_add(b, tmp, (size_t)r);
  return 1;
}

/* The P request, in the helper's child for it: answers once and returns. */
static void run_program(const char *seq, const char *mode, const char *timeout, const char *cwd, char *env, char *argvs) {
  signal(SIGCHLD, SIG_DFL);
  int sync_mode = strcmp(mode, "s") == 0;
  long long limit = strtoll(timeout, NULL, 10);
  long long end = limit > 0 ? now_ms() + limit : 0;
  extern char **environ;
  char **envp = strcmp(env, "-") == 0 ? environ : split_rs(env), **argv = split_rs(argvs);
  if (!envp || !argv || !argv[0] || (!sync_mode && strcmp(mode, "w") != 0)) { answer(seq, EINVAL); return; }
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0) { answer(seq, errno); return; }
  if (pipe2(err, O_CLOEXEC) < 0) { answer(seq, errno); return; }
  int execp[2];
  if (pipe2(execp, O_CLOEXEC) < 0) { answer(seq, errno); return; }
  pid_t pid = fork();
  if (pid < 0) { answer(seq, errno); return; }
  if (pid == 0) {
    setsid();
    signal(SIGPIPE, SIG_DFL);
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || (cwd[0] && chdir(cwd) < 0)) { int e = errno; (void)!write(execp[1], &e, sizeof e); _exit(127); }
    dup2(null, 0);
    if (sync_mode) { dup2(null, 1); dup2(err[1], 2); dup2(out[1], 3); }
    else { dup2(out[1], 1); dup2(err[1], 2); }
    int keep = sync_mode ? 4 : 3;
    for (int fd = keep; fd < 1024; fd++) if (fd != execp[1]) close(fd);
    execve(argv[0], argv, envp);
    int e = errno;
    (void)!write(execp[1], &e, sizeof e);
    _exit(127);
  }
  close(out[1]); close(err[1]); close(execp[1]);
  int e = 0;
  ssize_t r;
  do { r = read(execp[0], &e, sizeof e); } while (r < 0 && errno == EINTR);
  close(execp[0]);
  if (r == (ssize_t)sizeof e) {
    waitpid(pid, NULL, 0);
    answer(seq, e);
    return;
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  struct buf o = { 0 }, er = { 0 };
  o.cap = sync_mode ? 65536 : 1 << 20; er.cap = 65536;
  int open_out = 1, open_err = 1, timed_out = 0;
  while (open_out || open_err) {
    if (sync_mode && (!open_out || (o.len && memchr(o.p, '\n', o.len)))) break;
    int wait = -1;
    if (end) { long long left = end - now_ms(); if (left <= 0) { timed_out = 1; break; } wait = (int)left; }
    struct pollfd fds[2] = { { open_out ? out[0] : -1, POLLIN, 0 }, { open_err ? err[0] : -1, POLLIN, 0 } };
    int n = poll(fds, 2, wait);
    if (n < 0) { if (errno == EINTR) continue; break; }
    if (n == 0) continue;
    if (fds[0].revents && !drain(out[0], &o)) open_out = 0;
    if (fds[1].revents && !drain(err[0], &er)) open_err = 0;
  }
  char head[64];
  struct buf msg = { 0 };
  msg.cap = (size_t)-1;
  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    snprintf(head, sizeof head, "%d", (int)pid);
    answer_msg(seq, ETIMEDOUT, head);
    return;
  }
  if (sync_mode) {
    /* conmon's first process leaves at once (it daemonizes); what is left of its stderr comes with an end without a line. */
    if (!(o.len && memchr(o.p, '\n', o.len))) {
      long long until = now_ms() + 200;
      while (open_err) {
        long long left = until - now_ms();
        if (left <= 0) break;
        struct pollfd f = { err[0], POLLIN, 0 };
        if (poll(&f, 1, (int)left) <= 0) break;
        if (!drain(err[0], &er)) open_err = 0;
      }
    }
    waitpid(pid, NULL, WNOHANG);
    size_t line = o.len;
    if (o.len) { char *nl = memchr(o.p, '\n', o.len); if (nl) line = (size_t)(nl - o.p); }
    snprintf(head, sizeof head, "%s\t0\t%d\x1f", seq, (int)pid);
    buf_add(&msg, head, strlen(head));
    buf_escaped(&msg, o.p ? o.p : "", line);
    buf_add(&msg, "\x1f", 1);
  } else {
    int st = 0;
    for (;;) {
      pid_t w = waitpid(pid, &st, end ? WNOHANG : 0);
      if (w == pid) break;
      if (w < 0 && errno != EINTR) break;
      if (w == 0) {
        if (now_ms() >= end) {
          kill(-pid, SIGKILL); kill(pid, SIGKILL); waitpid(pid, NULL, 0);
          snprintf(head, sizeof head, "%d", (int)pid);
          answer_msg(seq, ETIMEDOUT, head);
          return;
        }
        usleep(1000);
      }
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1, sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    snprintf(head, sizeof head, "%s\t0\t%d\x1f%d\x1f", seq, code, sig);
    buf_add(&msg, head, strlen(head));
    buf_escaped(&msg, o.p ? o.p : "", o.len);
    buf_add(&msg, "\x1f", 1);
  }
  buf_escaped(&msg, er.p ? er.p : "", er.len);
  buf_add(&msg, "\n", 1);
  /* An answer longer than a pipe keeps whole (PIPE_BUF) is written under the lock the children share. */
  if (!msg.p) return;
  while (sem_wait(answer_lock) < 0 && errno == EINTR) {}
  write_all(STDOUT_FILENO, msg.p, msg.len);
  sem_post(answer_lock);
}

int main(void) {
  /* Children are reaped by the kernel; their answers are all the parent needs. */
  signal(SIGCHLD, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  answer_lock = mmap(NULL, sizeof *answer_lock, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (answer_lock == MAP_FAILED || sem_init(answer_lock, 1, 1) < 0) return 1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    if (line[n - 1] == '\n') line[--n] = 0;
    char *f[8];
    int k = 0;
    char *p = line;
    while (k < 8) {
      f[k++] = p;
      char *t = strchr(p, '\t');
      if (!t) break;
      *t = 0;
      p = t + 1;
    }
    pid_t pid = fork();
    if (pid < 0) { answer(f[0], errno); continue; }
    if (pid > 0) continue;
    int err = EINVAL;
    if (k == 7 && strcmp(f[1], "M") == 0) {
      unsigned long flags = strtoul(f[5], NULL, 10);
      err = mount(f[2], f[3], f[4][0] ? f[4] : NULL, flags, f[6][0] ? f[6] : NULL) == 0 ? 0 : errno;
    } else if (k == 4 && strcmp(f[1], "U") == 0) {
      err = umount2(f[2], (int)strtol(f[3], NULL, 10)) == 0 ? 0 : errno;
    } else if (k == 3 && strcmp(f[1], "N") == 0) {
      err = unshare(CLONE_NEWNET) == 0 && mount("/proc/self/ns/net", f[2], NULL, MS_BIND, NULL) == 0 ? 0 : errno;
    } else if (k == 7 && strcmp(f[1], "P") == 0) {
      run_program(f[0], f[2], f[3], f[4], f[5], f[6]);
      _exit(0);
    } else if ((k == 4 || k == 6) && strcmp(f[1], "I") == 0) {
      /* This child waits for ip: it must see its own children exit. */
      signal(SIGCHLD, SIG_DFL);
      char out[600];
      err = 0;
      out[0] = 0;
      for (int i = 2; i + 1 < k && !err; i += 2) {
        if (f[i][0]) {
          int fd = open(f[i], O_RDONLY | O_CLOEXEC);
          if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) { err = errno; snprintf(out, sizeof out, "setns %s: %s", f[i], strerror(err)); }
          if (fd >= 0) close(fd);
          if (err) break;
        }
        err = ip_batch(f[i + 1], out, sizeof out);
        if (err && err != EIO) snprintf(out, sizeof out, "%s", strerror(err));
      }
      answer_msg(f[0], err, err ? out : "");
      _exit(0);
    }
    answer(f[0], err);
    _exit(0);
  }
  return 0;
}
