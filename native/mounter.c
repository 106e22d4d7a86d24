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
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

static void answer_msg(const char *seq, int err, const char *msg) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "%s\t%d\t%s\n", seq, err, msg);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) { n = sizeof buf - 1; buf[n - 1] = '\n'; }
  ssize_t w;
  do { w = write(STDOUT_FILENO, buf, (size_t)n); } while (w < 0 && errno == EINTR);
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

int main(void) {
  /* Children are reaped by the kernel; their answers are all the parent needs. */
  signal(SIGCHLD, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
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
