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
 *
 *   berth-attach SOCKET [--tty] [--stdin] --relay RELAY TOKEN
 *
 * Started by the mount helper instead of by berthd (no fork of the daemon):
 * once connected to SOCKET it connects to berthd's unix stream socket RELAY,
 * sends "TOKEN\n", writes "connected\n" to fd 3 (the helper's sync pipe) and
 * relays between SOCKET and that connection as above (the connection takes
 * the place of stdin and stdout). It ends when conmon closes SOCKET or
 * berthd closes the connection.
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
#include <signal.h>

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) { if (errno == EINTR) continue; return -1; }
    buf += n; len -= (size_t)n;
  }
  return 0;
}

/* A unix socket's address; a path too long for sun_path goes through /proc/self/fd/N of its directory. */
static int unix_addr(const char *path, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen(path) < sizeof addr->sun_path) { strcpy(addr->sun_path, path); return 0; }
  const char *slash = strrchr(path, '/');
  char dir[4096];
  size_t dl = slash ? (size_t)(slash - path) : 0;
  if (!slash || dl >= sizeof dir || strlen(slash + 1) + 32 >= sizeof addr->sun_path) { fprintf(stderr, "berth-attach: %s: path too long\n", path); return -1; }
  memcpy(dir, path, dl); dir[dl] = 0;
  int dfd = open(dir, O_PATH | O_DIRECTORY);
  if (dfd < 0) { fprintf(stderr, "berth-attach: %s: %s\n", dir, strerror(errno)); return -1; }
  snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", dfd, slash + 1);
  return 0;
}

/*
 * conmon closed the attach socket. On the relay connection: our end is sent (shutdown), then what berthd
 * still sends is read until its own end. A unix socket closed with unread data in it makes the peer's
 * next read fail with ECONNRESET instead of ending; berthd answers our end with its own at once.
 */
static int finish(const char *relay, int conn, char *buf) {
  if (!relay) return 0;
  shutdown(conn, SHUT_WR);
  for (;;) {
    struct pollfd f = { conn, POLLIN, 0 };
    int r = poll(&f, 1, 5000);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    ssize_t n = read(conn, buf, 8192);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
  }
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: berth-attach SOCKET [--tty] [--stdin] [--relay RELAY TOKEN]\n"); return 2; }
  int tty = 0, with_stdin = 0;
  const char *relay = NULL, *token = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--tty")) tty = 1;
    else if (!strcmp(argv[i], "--stdin")) with_stdin = 1;
    else if (!strcmp(argv[i], "--relay") && i + 2 < argc) { relay = argv[++i]; token = argv[++i]; }
  }
  /* A reader that went away is a write error (EPIPE), not a signal. */
  signal(SIGPIPE, SIG_IGN);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) { perror("socket"); return 1; }
  struct sockaddr_un addr;
  const char *path = argv[1];
  char buf[8192 + 8];
  if (unix_addr(path, &addr) < 0) return 1;
  /* The socket may not exist yet: berthd starts us while conmon is still setting up. Retry for up to 5 s. */
  for (int tries = 0;; tries++) {
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0) break;
    if ((errno != ENOENT && errno != ECONNREFUSED) || tries >= 10000) {
      fprintf(stderr, "berth-attach: connect %s: %s\n", path, strerror(errno));
      return 1;
    }
    usleep(500);
  }
  int in = 0, out = 1;
  if (relay) {
    int r = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un ra;
    if (r < 0 || unix_addr(relay, &ra) < 0 || connect(r, (struct sockaddr *)&ra, sizeof ra) < 0) {
      fprintf(stderr, "berth-attach: connect %s: %s\n", relay, strerror(errno));
      return 1;
    }
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", token);
    if (n <= 0 || (size_t)n >= sizeof line || write_all(r, line, (size_t)n) < 0) { fprintf(stderr, "berth-attach: %s: %s\n", relay, strerror(errno)); return 1; }
    in = out = r;
    /* Tell the helper (and so berthd) we are connected. */
    (void)!write(3, "connected\n", 10);
    close(3);
  } else {
    /* Tell the parent we are connected (it starts the container only then). */
    (void)!write(2, "connected\n", 10);
  }

  struct pollfd fds[2];
  fds[0].fd = s; fds[0].events = POLLIN;
  /* The relay connection is watched without stdin too: berthd closing it ends the relay. */
  fds[1].fd = with_stdin || relay ? in : -1; fds[1].events = POLLIN;
  for (;;) {
    int r = poll(fds, 2, -1);
    if (r < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = recv(s, buf + 8, 8192, 0);
      if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; return finish(relay, in, buf); }
      if (n == 0) return finish(relay, in, buf);
      if (n < 1) continue;
      unsigned char pipe = (unsigned char)buf[8];
      size_t len = (size_t)n - 1;
      if (len == 0) continue;
      if (tty) {
        if (write_all(out, buf + 9, len) < 0) return 0;
      } else {
        unsigned char *h = (unsigned char *)buf + 1;
        h[0] = pipe == 3 ? 2 : 1; h[1] = h[2] = h[3] = 0;
        h[4] = (unsigned char)(len >> 24); h[5] = (unsigned char)(len >> 16);
        h[6] = (unsigned char)(len >> 8); h[7] = (unsigned char)len;
        if (write_all(out, buf + 1, len + 8) < 0) return 0;
      }
    }
    if (fds[1].fd >= 0 && relay && (fds[1].revents & (POLLHUP | POLLERR))) return 0; /* berthd closed it */
    if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(in, buf, 8192);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (with_stdin) shutdown(s, SHUT_WR);
        /* After the relay's half-close only its hang-up is watched (poll reports that whatever events asks). */
        if (relay && n == 0) fds[1].events = 0; else fds[1].fd = -1;
        continue;
      }
      if (with_stdin && send(s, buf, (size_t)n, 0) < 0) { if (relay) fds[1].events = 0; else fds[1].fd = -1; }
    }
  }
}
