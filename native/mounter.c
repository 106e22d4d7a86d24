/*
 * berth-mounter: mount(2) and umount2(2) for berthd without a fork of the
 * daemon per call. berthd keeps one of these running and writes requests on
 * its stdin, one per line, fields separated by tabs:
 *
 *   SEQ  M  SOURCE  TARGET  FSTYPE  FLAGS  DATA     mount(SOURCE, TARGET, FSTYPE, FLAGS, DATA)
 *   SEQ  U  TARGET  FLAGS                           umount2(TARGET, FLAGS)
 *
 * FLAGS is a decimal number (MS_* or MNT_*); an empty DATA is NULL. Each
 * request runs in a child of its own, so a call that blocks (an unmount stuck
 * on a dead filesystem) holds up only itself; the child writes the answer
 * "SEQ\tERRNO\tMESSAGE\n" (ERRNO 0: done) in one write, which a pipe keeps
 * whole. A malformed request is answered with EINVAL. Exits when stdin closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static void answer(const char *seq, int err) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%s\t%d\t%s\n", seq, err, err ? strerror(err) : "");
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  ssize_t w;
  do { w = write(STDOUT_FILENO, buf, (size_t)n); } while (w < 0 && errno == EINTR);
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
    }
    answer(f[0], err);
    _exit(0);
  }
  return 0;
}
