/*
 * vrrpnet: the raw-socket part of hasetup-vrrpd, as a Node-API addon (Node-API version 8, so one
 * binary loads in Node 18 and later).
 *
 *   open(ifname, joinMulticast, onPacket) -> handle
 *       An IPv4 raw socket for IP protocol 112 bound to the interface (SO_BINDTODEVICE), with
 *       IP_HDRINCL for sending (the caller builds the IP header: source address, TTL 255), the
 *       multicast interface and TTL set, multicast loopback off and, when joinMulticast is true,
 *       membership of 224.0.0.18 on that interface. A receiver thread blocks in poll() on the
 *       socket and hands every datagram (IP header included, so the caller sees the TTL) to
 *       onPacket(buffer) on the JavaScript thread through a thread-safe function.
 *   send(handle, packet, dstAddr) -> bytes sent      (packet: a whole IPv4 datagram)
 *   close(handle)                                    (stops the thread, closes the socket)
 *   sendFrame(ifname, frame) -> bytes sent           (a whole Ethernet frame on an AF_PACKET socket:
 *                                                     gratuitous ARP)
 *   addrAdd(ifname, addr, prefix, label, broadcast, scope) -> 0 or an errno (EEXIST: already there)
 *   addrDel(ifname, addr, prefix) -> 0 or an errno (EADDRNOTAVAIL: not there)
 *                                                    (IPv4 addresses through rtnetlink, what `ip addr` does)
 */
#define _GNU_SOURCE
#include "../../common/napi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define VRRP_PROTO 112
#define VRRP_GROUP "224.0.0.18"
#define RECV_MAX 4096

typedef struct {
  int fd;
  int wake[2];            /* pipe: a byte written here stops the receiver thread */
  pthread_t thread;
  napi_threadsafe_function tsfn;
  atomic_int closed;      /* close() was called: drop anything still queued */
  atomic_int refs;        /* the JS handle and the thread-safe function each hold one */
} vrrp_sock;

typedef struct {
  size_t len;
  unsigned char data[];
} packet;

static void sock_unref(vrrp_sock *s) {
  if (atomic_fetch_sub(&s->refs, 1) == 1) free(s);
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}


static void *receiver(void *arg) {
  vrrp_sock *s = arg;
  unsigned char buf[RECV_MAX];
  struct pollfd pfd[2] = { { s->fd, POLLIN, 0 }, { s->wake[0], POLLIN, 0 } };
  for (;;) {
    int r = poll(pfd, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[1].revents) break;
    if (pfd[0].revents & (POLLERR | POLLNVAL)) break;
    if (!(pfd[0].revents & POLLIN)) continue;
    ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      break;
    }
    packet *p = malloc(sizeof(packet) + (size_t)n);
    if (!p) continue;
    p->len = (size_t)n;
    memcpy(p->data, buf, (size_t)n);
    if (napi_call_threadsafe_function(s->tsfn, p, napi_tsfn_blocking) != napi_ok) {
      free(p);
      break;
    }
  }
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return NULL;
}

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  vrrp_sock *s = context;
  packet *p = data;
  if (env != NULL && cb != NULL && !atomic_load(&s->closed)) {
    napi_value buffer, undefined;
    void *copy;
    if (napi_create_buffer_copy(env, p->len, p->data, &copy, &buffer) == napi_ok &&
        napi_get_undefined(env, &undefined) == napi_ok) {
      napi_status st = napi_call_function(env, undefined, cb, 1, &buffer, NULL);
      if (st == napi_pending_exception) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        napi_fatal_exception(env, exc);
      }
    }
  }
  free(p);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  sock_unref(data);
}

static void stop(vrrp_sock *s) {
  if (atomic_exchange(&s->closed, 1)) return;
  char b = 1;
  ssize_t w;
  do { w = write(s->wake[1], &b, 1); } while (w < 0 && errno == EINTR);
  pthread_join(s->thread, NULL);
  close(s->fd);
  close(s->wake[0]);
  close(s->wake[1]);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  vrrp_sock *s = data;
  stop(s);
  sock_unref(s);
}

/* An interface name argument into ifname (IF_NAMESIZE + 1 bytes); -1 with an exception naming `what` pending. */
static int get_ifname(napi_env env, napi_value v, char *ifname, const char *what) {
  if (get_string(env, v, ifname, IF_NAMESIZE + 1) == 0 && ifname[0] != 0) return 0;
  char msg[64];
  snprintf(msg, sizeof msg, "%s: bad interface name", what);
  throw_msg(env, msg);
  return -1;
}

static napi_value open_socket(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, 3, argv, "open(ifname, joinMulticast, onPacket) expects 3 arguments") < 0) return NULL;
  char ifname[IF_NAMESIZE + 1];
  if (get_ifname(env, argv[0], ifname, "open") < 0) return NULL;
  bool join = false;
  if (napi_get_value_bool(env, argv[1], &join) != napi_ok)
    return throw_msg(env, "open: joinMulticast must be a boolean");
  napi_valuetype t;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return throw_msg(env, "open: onPacket must be a function");

  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return throw_errno(env, ifname, errno);

  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, VRRP_PROTO);
  if (fd < 0) return throw_errno(env, "socket(AF_INET, SOCK_RAW, 112)", errno);
  int one = 1, zero = 0, ttl = 255;
  struct ip_mreqn mreq;
  memset(&mreq, 0, sizeof mreq);
  mreq.imr_ifindex = (int)ifindex;
  const char *failed = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1) < 0) failed = "SO_BINDTODEVICE";
  else if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0) failed = "IP_HDRINCL";
  else if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq) < 0) failed = "IP_MULTICAST_IF";
  else if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0) failed = "IP_MULTICAST_TTL";
  else if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) < 0) failed = "IP_TTL";
  else if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero) < 0) failed = "IP_MULTICAST_LOOP";
  if (!failed && join) {
    inet_pton(AF_INET, VRRP_GROUP, &mreq.imr_multiaddr);
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) failed = "IP_ADD_MEMBERSHIP 224.0.0.18";
  }
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }

  vrrp_sock *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return throw_msg(env, "out of memory");
  }
  s->fd = fd;
  atomic_init(&s->closed, 0);
  atomic_init(&s->refs, 2);
  if (pipe2(s->wake, O_CLOEXEC) < 0) {
    int err = errno;
    close(fd);
    free(s);
    return throw_errno(env, "pipe", err);
  }
  napi_value name;
  napi_create_string_utf8(env, "vrrpnet-receiver", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, s, tsfn_finalize, s, call_js, &s->tsfn) != napi_ok) {
    close(fd); close(s->wake[0]); close(s->wake[1]);
    free(s);
    return throw_msg(env, "napi_create_threadsafe_function failed");
  }
  int err = pthread_create(&s->thread, NULL, receiver, s);
  if (err != 0) {
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    close(fd); close(s->wake[0]); close(s->wake[1]);
    atomic_store(&s->closed, 1);
    sock_unref(s); /* the other reference goes with the thread-safe function's finalizer */
    return throw_errno(env, "pthread_create", err);
  }
  napi_value handle;
  if (napi_create_external(env, s, handle_finalize, NULL, &handle) != napi_ok) {
    stop(s);
    sock_unref(s);
    return throw_msg(env, "napi_create_external failed");
  }
  return handle;
}

static vrrp_sock *get_handle(napi_env env, napi_value v) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* The arguments of a call whose first one is a socket handle: the socket, or NULL with an exception pending. */
static vrrp_sock *socket_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage, const char *what) {
  if (get_args(env, info, n, n, argv, usage) < 0) return NULL;
  vrrp_sock *s = get_handle(env, argv[0]);
  if (!s) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s: bad handle", what);
    throw_msg(env, msg);
  }
  return s;
}

static napi_value send_packet(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  vrrp_sock *s = socket_args(env, info, 3, argv, "send(handle, packet, dstAddr) expects 3 arguments", "send");
  if (!s) return NULL;
  if (atomic_load(&s->closed)) return throw_msg(env, "send: socket closed");
  void *data;
  size_t len;
  if (get_buffer(env, argv[1], &data, &len) < 0) return throw_msg(env, "send: packet must be a Buffer");
  char addr[64];
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  if (get_string(env, argv[2], addr, sizeof addr) != 0 || inet_pton(AF_INET, addr, &dst.sin_addr) != 1)
    return throw_msg(env, "send: bad destination address");
  ssize_t n;
  do { n = sendto(s->fd, data, len, 0, (struct sockaddr *)&dst, sizeof dst); } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto", errno);
  return int_value(env, n);
}

static napi_value close_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vrrp_sock *s = socket_args(env, info, 1, argv, "close(handle) expects 1 argument", "close");
  if (!s) return NULL;
  stop(s);
  return NULL;
}

static napi_value send_frame(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, 2, argv, "sendFrame(ifname, frame) expects 2 arguments") < 0) return NULL;
  char ifname[IF_NAMESIZE + 1];
  if (get_ifname(env, argv[0], ifname, "sendFrame") < 0) return NULL;
  void *data;
  size_t len;
  if (get_buffer(env, argv[1], &data, &len) < 0 || len < 14)
    return throw_msg(env, "sendFrame: frame must be a Buffer holding an Ethernet frame");
  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return throw_errno(env, ifname, errno);
  const unsigned char *frame = data;
  unsigned short proto = (unsigned short)((frame[12] << 8) | frame[13]);
  /* one socket for the process, opened with protocol 0: it receives nothing (no packet hook to
     register, and none to tear down with a synchronize_net() on every close) */
  static int pfd = -1;
  if (pfd < 0) {
    pfd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (pfd < 0) return throw_errno(env, "socket(AF_PACKET)", errno);
  }
  struct sockaddr_ll ll;
  memset(&ll, 0, sizeof ll);
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(proto);
  ll.sll_ifindex = (int)ifindex;
  ll.sll_halen = ETH_ALEN;
  memcpy(ll.sll_addr, frame, ETH_ALEN);
  ssize_t n;
  do { n = sendto(pfd, data, len, 0, (struct sockaddr *)&ll, sizeof ll); } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto(AF_PACKET)", errno);
  return int_value(env, n);
}

/* ---- IPv4 addresses over rtnetlink ---- */

static void nl_attr(struct nlmsghdr *n, size_t max, unsigned short type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(n->nlmsg_len);
  struct rtattr *rta = (struct rtattr *)((char *)n + off);
  if (off + RTA_SPACE(len) > max) return;
  rta->rta_type = type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  n->nlmsg_len = (unsigned int)(off + RTA_SPACE(len));
}

/* returns 0 or a positive errno */
static int nl_addr(int add, unsigned int ifindex, struct in_addr addr, int prefix, const char *label, const struct in_addr *brd, int scope) {
  struct {
    struct nlmsghdr n;
    struct ifaddrmsg ifa;
    char buf[256];
  } req;
  memset(&req, 0, sizeof req);
  req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  req.n.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
  req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  req.n.nlmsg_seq = 1;
  req.ifa.ifa_family = AF_INET;
  req.ifa.ifa_prefixlen = (unsigned char)prefix;
  req.ifa.ifa_scope = (unsigned char)scope;
  req.ifa.ifa_index = ifindex;
  nl_attr(&req.n, sizeof req, IFA_LOCAL, &addr, 4);
  nl_attr(&req.n, sizeof req, IFA_ADDRESS, &addr, 4);
  if (add && brd) nl_attr(&req.n, sizeof req, IFA_BROADCAST, brd, 4);
  if (add && label && label[0]) nl_attr(&req.n, sizeof req, IFA_LABEL, label, strlen(label) + 1);

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno;
  struct sockaddr_nl nl;
  memset(&nl, 0, sizeof nl);
  nl.nl_family = AF_NETLINK;
  int err = 0;
  if (sendto(fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&nl, sizeof nl) < 0) {
    err = errno;
  } else {
    char rbuf[4096];
    for (;;) {
      ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
      int done = 0;
      for (; NLMSG_OK(h, (unsigned int)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
          struct nlmsgerr *e = NLMSG_DATA(h);
          err = -e->error;
          done = 1;
          break;
        }
        if (h->nlmsg_type == NLMSG_DONE) {
          done = 1;
          break;
        }
      }
      if (done) break;
    }
  }
  close(fd);
  return err;
}

static napi_value addr_common(napi_env env, napi_callback_info info, int add) {
  napi_value argv[6];
  if (get_args(env, info, 3, 6, argv, "addrAdd/addrDel(ifname, addr, prefix, ...) expects at least 3 arguments") < 0) return NULL;
  char ifname[IF_NAMESIZE + 1], addr[64], label[IF_NAMESIZE + 1] = "", brd[64] = "";
  if (get_string(env, argv[0], ifname, sizeof ifname) != 0) return throw_msg(env, "bad interface name");
  if (get_string(env, argv[1], addr, sizeof addr) != 0) return throw_msg(env, "bad address");
  int32_t prefix = 32, scope = 0;
  if (napi_get_value_int32(env, argv[2], &prefix) != napi_ok || prefix < 0 || prefix > 32) return throw_msg(env, "bad prefix");
  napi_valuetype t;
  if (napi_typeof(env, argv[3], &t) == napi_ok && t == napi_string && get_string(env, argv[3], label, sizeof label) != 0)
    return throw_msg(env, "bad label");
  if (napi_typeof(env, argv[4], &t) == napi_ok && t == napi_string && get_string(env, argv[4], brd, sizeof brd) != 0)
    return throw_msg(env, "bad broadcast address");
  if (napi_typeof(env, argv[5], &t) == napi_ok && t == napi_number) napi_get_value_int32(env, argv[5], &scope);
  struct in_addr a, b;
  if (inet_pton(AF_INET, addr, &a) != 1) return throw_msg(env, "bad address");
  if (brd[0] && inet_pton(AF_INET, brd, &b) != 1) return throw_msg(env, "bad broadcast address");
  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return throw_errno(env, ifname, errno);
  int err = nl_addr(add, ifindex, a, prefix, label, brd[0] ? &b : NULL, scope);
  return int_value(env, err);
}

static napi_value addr_add(napi_env env, napi_callback_info info) { return addr_common(env, info, 1); }
static napi_value addr_del(napi_env env, napi_callback_info info) { return addr_common(env, info, 0); }

ADDON_EXPORTS({ "open", open_socket }, { "send", send_packet }, { "close", close_socket }, { "sendFrame", send_frame },
              { "addrAdd", addr_add }, { "addrDel", addr_del });
