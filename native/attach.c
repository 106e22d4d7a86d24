/*
 * berth-attach: relays between conmon's attach socket (SOCK_SEQPACKET, which
 * Node cannot open) and this process's stdin/stdout.
 *
 *   berth-attach SOCKET [--tty] [--stdin]
 *
 * conmon sends packets [pipe][data...] with pipe 2 = stdout, 3 = stderr.
 * Without --tty each packet is written to stdout as a Docker stdcopy frame
 * ([stream,0,0,0,len BE32] + data, stream 1 = stdout, 2 = stderr); with
 * --tty the data is written raw. With --stdin, bytes read from stdin are sent
 * to the socket (conmon writes them to the container's stdin) and EOF on
 * stdin shuts down the socket's write side, which closes the container's
 * stdin. Exits 0 when conmon closes the socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) { if (errno == EINTR) continue; return -1; }
    buf += n; len -= (size_t)n;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: berth-attach SOCKET [--tty] [--stdin]\n"); return 2; }
  int tty = 0, with_stdin = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--tty")) tty = 1;
    else if (!strcmp(argv[i], "--stdin")) with_stdin = 1;
  }
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) { perror("socket"); return 1; }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  /* Long paths: connect through /proc/self/fd/N of the directory. */
  const char *path = argv[1];
  char buf[8192 + 8];
  if (strlen(path) >= sizeof addr.sun_path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t dl = (size_t)(slash - path);
    if (dl >= sizeof dir) { fprintf(stderr, "path too long\n"); return 1; }
    memcpy(dir, path, dl); dir[dl] = 0;
    int dfd = open(dir, O_PATH | O_DIRECTORY);
    if (dfd < 0) { perror(dir); return 1; }
    snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dfd, slash + 1);
  } else {
    strcpy(addr.sun_path, path);
  }
  /* The socket may not exist yet: berthd starts us while conmon is still setting up. Retry for up to 5 s. */
  for (int tries = 0;; tries++) {
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0) break;
    if ((errno != ENOENT && errno != ECONNREFUSED) || tries >= 10000) {
      fprintf(stderr, "berth-attach: connect %s: %s\n", path, strerror(errno));
      return 1;
    }
    usleep(500);
  }
  /* Tell the parent we are connected (it starts the container only then). */
  (void)!write(2, "connected\n", 10);

  struct pollfd fds[2];
  fds[0].fd = s; fds[0].events = POLLIN;
  fds[1].fd = with_stdin ? 0 : -1; fds[1].events = POLLIN;
  for (;;) {
    int r = poll(fds, 2, -1);
    if (r < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(s, buf + 8, 8192, 0);
      if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; return 0; }
      if (n == 0) return 0;
      if (n < 1) continue;
      unsigned char pipe = (unsigned char)buf[8];
      size_t len = (size_t)n - 1;
      if (len == 0) continue;
      if (tty) {
        if (write_all(1, buf + 9, len) < 0) return 0;
      } else {
        unsigned char *h = (unsigned char *)buf + 1;
        h[0] = pipe == 3 ? 2 : 1; h[1] = h[2] = h[3] = 0;
        h[4] = (unsigned char)(len >> 24); h[5] = (unsigned char)(len >> 16);
        h[6] = (unsigned char)(len >> 8); h[7] = (unsigned char)len;
        if (write_all(1, buf + 1, len + 8) < 0) return 0;
      }
    }
    if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(0, buf, 8192);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) { shutdown(s, SHUT_WR); fds[1].fd = -1; continue; }
      if (send(s, buf, (size_t)n, 0) < 0) { fds[1].fd = -1; }
    }
  }
}
