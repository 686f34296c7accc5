// An open-loop HTTP/1.1 load generator for the proxy latency benchmark (bench/proxy/latency.ts compiles and runs it).
//
// Requests are due at fixed times (rate per second, evenly spaced) and each one is sent when due whether or not
// earlier answers have come back: a request takes an idle keep-alive connection, or opens a new one while fewer than
// `maxconns` are open, or else waits in a queue for the next connection to come free. Its latency runs from the
// time it was due to the last byte of its answer, so a late proxy shows in full (no coordinated omission).
// Bounded: it stops sending after `seconds`, waits at most 5 s for the answers still due, then exits.
//
//   openloop HOST PORT RATE SECONDS ka|close MAXCONNS OUTFILE
//
// OUTFILE gets one little-endian uint32 per answered request: its latency in microseconds. OUTFILE.lag gets, for
// each request sent the moment it was due (not queued), how late the generator itself sent it (microseconds): the
// generator's own delay, which must stay small for the figures to be the proxy's. stdout: one JSON line of counts.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { FREE, CONNECTING, IDLE, BUSY, DONE };

struct conn {
  int fd;
  int state;
  int64_t due;  // when the request on it was due (ns); -1: a warm connection with none
  int want_out; // EPOLLOUT registered
  size_t len;
  char buf[8192];
};

static const char *REQ_KA = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char *REQ_CLOSE = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static struct sockaddr_in addr;
static int ep, close_mode, open_conns, maxconns;
static struct conn *conns;
static int *idle; // stack of idle keep-alive connections (indexes)
static int nidle;
static int64_t *queue; // due times of requests waiting for a connection (FIFO)
static size_t qhead, qtail;
static uint32_t *lat, *lag;
static size_t nlat, nlag, cap;
static long errors, req_errors, queued, sent;
static int peak;
static const char *req;
static size_t reqlen;

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void set_events(struct conn *c, int out) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c - conns)};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
  c->want_out = out;
}

static struct conn *open_conn(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) die("connect");
  int i = 0;
  while (conns[i].state != FREE) i++;
  struct conn *c = &conns[i];
  c->fd = fd;
  c->state = CONNECTING;
  c->len = 0;
  c->want_out = 1;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.u32 = (uint32_t)i};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
  if (++open_conns > peak) peak = open_conns;
  return c;
}

static void close_conn(struct conn *c) {
  if (c->state == BUSY || (c->state == CONNECTING && c->due >= 0)) req_errors++; // its request is lost
  if (c->state == IDLE)
    for (int i = 0; i < nidle; i++)
      if (idle[i] == (int)(c - conns)) {
        idle[i] = idle[--nidle];
        break;
      }
  close(c->fd);
  c->state = FREE;
  open_conns--;
}

static void send_req(struct conn *c, int64_t due) {
  c->due = due;
  c->len = 0;
  c->state = BUSY;
  ssize_t n = write(c->fd, req, reqlen);
  if (n != (ssize_t)reqlen) { // a few dozen bytes into an empty socket: anything else is a failed connection
    errors++;
    close_conn(c); // the main loop gives the queue the free connection
    return;
  }
  sent++;
}

/** A request that is due (or queued since `due`): on a connection now, or queued. */
static int dispatch(int64_t due) {
  if (!close_mode && nidle > 0) {
    send_req(&conns[idle[--nidle]], due);
    return 1;
  }
  if (open_conns < maxconns) {
    open_conn()->due = due; // sent once connected
    return 1;
  }
  return 0;
}

/** Requests waiting for a connection, oldest first, while there are connections for them. */
static void drain_queue(void) {
  while (qhead < qtail && dispatch(queue[qhead])) qhead++;
}

/** A keep-alive connection free for the next request: the oldest queued one, or idle. */
static void released(struct conn *c) {
  if (qhead < qtail) {
    send_req(c, queue[qhead++]);
    return;
  }
  c->state = IDLE;
  idle[nidle++] = (int)(c - conns);
}

/** Length of the complete answer at the start of buf, 0 when it is not complete yet, -1 when it never will be. */
static long answer_length(struct conn *c, int eof) {
  char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!end) return eof ? -1 : 0;
  size_t head = (size_t)(end - c->buf) + 4;
  long body = -1;
  for (char *p = c->buf; p < end; p++)
    if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) body = strtol(p + 15, NULL, 10);
  if (body < 0) return eof ? (long)c->len : 0; // no length: ends with the connection
  return c->len >= head + (size_t)body ? (long)(head + body) : (eof ? -1 : 0);
}

static void on_event(struct conn *c, uint32_t events) {
  if (c->state == CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err || (events & (EPOLLERR | EPOLLHUP))) {
      errors++;
      close_conn(c);
      drain_queue();
      return;
    }
    if (!(events & EPOLLOUT)) return;
    set_events(c, 0);
    if (c->due < 0) { // a warm connection opened before the clock started
      c->state = IDLE;
      idle[nidle++] = (int)(c - conns);
      return;
    }
    send_req(c, c->due);
    return;
  }
  int eof = 0;
  for (;;) {
    if (c->len == sizeof c->buf) break;
    ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (n > 0) {
      c->len += (size_t)n;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof = 1;
    break;
  }
  if (c->state == IDLE) { // the server closed an idle keep-alive connection
    if (eof) close_conn(c);
    return;
  }
  if (c->state != BUSY) return;
  long n = answer_length(c, eof);
  if (n == 0) return;
  if (n < 0) {
    errors++;
    close_conn(c);
    drain_queue();
    return;
  }
  int64_t l = (now_ns() - c->due) / 1000;
  if (nlat < cap) lat[nlat++] = (uint32_t)l;
  if (close_mode || eof) {
    c->state = DONE; // answered: not a lost request
    close_conn(c);
    drain_queue();
    return;
  }
  c->len = 0;
  released(c);
}

static void dump(const char *file, uint32_t *v, size_t n) {
  FILE *f = fopen(file, "wb");
  if (!f || fwrite(v, sizeof *v, n, f) != n || fclose(f) != 0) die(file);
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: openloop HOST PORT RATE SECONDS ka|close MAXCONNS OUTFILE\n");
    return 2;
  }
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("address");
  double rate = atof(argv[3]), seconds = atof(argv[4]);
  close_mode = strcmp(argv[5], "close") == 0;
  maxconns = atoi(argv[6]);
  req = close_mode ? REQ_CLOSE : REQ_KA;
  reqlen = strlen(req);
  size_t total = (size_t)(rate * seconds) + 1;
  cap = total;
  conns = calloc((size_t)maxconns, sizeof *conns);
  idle = calloc((size_t)maxconns, sizeof *idle);
  queue = calloc(total, sizeof *queue);
  lat = calloc(total, sizeof *lat);
  lag = calloc(total, sizeof *lag);
  if (!conns || !idle || !queue || !lat || !lag) die("calloc");
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event evs[256];

  // keep-alive: a pool opened before the clock starts (enough for the rate at a few ms each; more open on demand)
  if (!close_mode) {
    int warm = (int)(rate / 1000) + 8;
    if (warm > maxconns) warm = maxconns;
    for (int i = 0; i < warm; i++) open_conn()->due = -1;
    int64_t until = now_ns() + 2000000000LL;
    while (nidle < warm && now_ns() < until) {
      int n = epoll_wait(ep, evs, 256, 100);
      for (int i = 0; i < n; i++) on_event(&conns[evs[i].data.u32], evs[i].events);
    }
  }

  const int64_t interval = (int64_t)(1e9 / rate);
  const int64_t start = now_ns();
  const int64_t stop_at = start + (int64_t)(seconds * 1e9);
  size_t next = 0; // index of the next request due
  int64_t give_up = stop_at + 5000000000LL;
  for (;;) {
    int64_t t = now_ns();
    while (next < total && start + (int64_t)next * interval <= t && start + (int64_t)next * interval < stop_at) {
      int64_t due = start + (int64_t)next * interval;
      if (qhead < qtail || !dispatch(due)) { // after those already waiting
        queue[qtail++] = due;
        queued++;
      } else if (nlag < cap) lag[nlag++] = (uint32_t)((t - due) / 1000);
      next++;
    }
    drain_queue();
    int sending = next < total && start + (int64_t)next * interval < stop_at;
    if (!sending && ((long)nlat + req_errors >= (long)next || t >= give_up)) break;
    int64_t wait = sending ? start + (int64_t)next * interval - t : 50000000;
    if (wait < 0) wait = 0;
    struct timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
    int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
    if (n < 0 && errno != EINTR) die("epoll_pwait2");
    for (int i = 0; i < n; i++) on_event(&conns[evs[i].data.u32], evs[i].events);
  }
  long unanswered = (long)next - (long)nlat - req_errors;
  dump(argv[7], lat, nlat);
  char lagfile[4096];
  snprintf(lagfile, sizeof lagfile, "%s.lag", argv[7]);
  dump(lagfile, lag, nlag);
  printf("{\"due\":%zu,\"sent\":%ld,\"answered\":%zu,\"errors\":%ld,\"lost\":%ld,\"unanswered\":%ld,\"queued\":%ld,\"peakConns\":%d}\n", next,
         sent, nlat, errors, req_errors, unanswered < 0 ? 0 : unanswered, queued, peak);
  return 0;
}
