/*
 * reuseport: one listening TCP socket per proxy worker, as a Node-API addon (Node-API version 8, so
 * one binary loads in Node 18 and later). Node before 22.12 cannot set SO_REUSEPORT, and without it
 * the workers share one socket and the kernel hands bursts of connections to whichever worker
 * accepts first; with a socket each, the kernel spreads connections over them by address hash.
 *
 *   listen(host, port, backlog) -> fd
 *       A non-blocking, close-on-exec TCP socket for host (an IPv4 or IPv6 literal) and port, with
 *       SO_REUSEADDR and SO_REUSEPORT set, bound and listening. An IPv6 socket accepts IPv4 too
 *       (IPV6_V6ONLY off), as Node's own listen does. On failure it throws an Error whose code is
 *       the errno name (EADDRINUSE, EACCES, EADDRNOTAVAIL...) and whose message names the address.
 *   probe(host, port)
 *       Binds a plain socket (SO_REUSEADDR only) to host and port and closes it again, without
 *       listening: it throws as listen() does when another socket holds the address, even one that
 *       set SO_REUSEPORT itself, so that the proxy never silently shares a port with somebody else.
 *   cpus() -> number[]
 *       The CPUs the calling thread may run on (sched_getaffinity), in increasing order.
 *   pin(cpus: number[])
 *       Restricts the calling thread (a worker thread: its event loop) to those CPUs
 *       (sched_setaffinity). Throws with the errno name (EINVAL for CPUs outside the allowed set).
 *   nameThread(name)
 *       Names the calling thread (prctl PR_SET_NAME, 15 characters at most): what top -H, ps -L and
 *       /proc/<pid>/task/<tid>/comm show.
 */
#define _GNU_SOURCE
#include "../../common/napi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *errno_name(int err) {
  switch (err) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char *what, const char *host, unsigned port, int err) {
  char msg[320];
  snprintf(msg, sizeof msg, "%s %s: %s %s:%u", what, errno_name(err), strerror(err), host, port);
  napi_throw_error(env, errno_name(err), msg);
  return NULL;
}

/* host and port from argv[0..1] into ss; 0, or -1 with a JavaScript exception pending */
static int get_addr(napi_env env, napi_value *argv, char *host, size_t hostsize, uint32_t *port, struct sockaddr_storage *ss, socklen_t *sslen) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], host, hostsize, &len) != napi_ok || len >= hostsize - 1 ||
      napi_get_value_uint32(env, argv[1], port) != napi_ok || *port > 65535) {
    napi_throw_type_error(env, NULL, "host must be an IP address and port 0-65535");
    return -1;
  }
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)*port);
    *sslen = sizeof *in4;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)*port);
    *sslen = sizeof *in6;
  } else {
    napi_throw_type_error(env, NULL, "host is not an IPv4 or IPv6 address");
    return -1;
  }
  return 0;
}

/* a bound socket (listening when backlog >= 0), or -1 with a JavaScript exception pending */
static int open_bound(napi_env env, napi_value *argv, int reuseport, int backlog) {
  char host[INET6_ADDRSTRLEN + 1];
  uint32_t port = 0;
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  if (get_addr(env, argv, host, sizeof host, &port, &ss, &sslen) < 0) return -1;
  int family = ss.ss_family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", host, port, errno);
    return -1;
  }
  int one = 1, zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
      (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)) {
    int err = errno;
    close(fd);
    throw_errno(env, "setsockopt", host, port, err);
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || (backlog >= 0 && listen(fd, backlog) < 0)) {
    int err = errno;
    close(fd);
    throw_errno(env, "listen", host, port, err);
    return -1;
  }
  return fd;
}

static napi_value do_listen(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t backlog = 0;
  if (get_args(env, info, 3, 3, argv, "listen(host, port, backlog)") < 0) return NULL;
  if (napi_get_value_int32(env, argv[2], &backlog) != napi_ok || backlog < 0) {
    napi_throw_type_error(env, NULL, "listen(host, port, backlog)");
    return NULL;
  }
  int fd = open_bound(env, argv, 1, backlog);
  if (fd < 0) return NULL;
  return int_value(env, fd);
}

static napi_value do_probe(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, 2, argv, "probe(host, port)") < 0) return NULL;
  int fd = open_bound(env, argv, 0, -1);
  if (fd >= 0) close(fd);
  return NULL;
}

static napi_value do_cpus(napi_env env, napi_callback_info info) {
  (void)info;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) < 0) {
    napi_throw_error(env, errno_name(errno), "sched_getaffinity failed");
    return NULL;
  }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t n = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &set)) continue;
    napi_value v;
    napi_create_int32(env, c, &v);
    napi_set_element(env, out, n++, v);
  }
  return out;
}

static napi_value do_pin(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  bool is_array = false;
  uint32_t len = 0;
  if (get_args(env, info, 1, 1, argv, "pin(cpus): a non-empty array of CPU numbers") < 0) return NULL;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &len) != napi_ok || len == 0) {
    napi_throw_type_error(env, NULL, "pin(cpus): a non-empty array of CPU numbers");
    return NULL;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < len; i++) {
    napi_value v;
    uint32_t c = 0;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_uint32(env, v, &c) != napi_ok || c >= CPU_SETSIZE) {
      napi_throw_type_error(env, NULL, "pin(cpus): a non-empty array of CPU numbers");
      return NULL;
    }
    CPU_SET(c, &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) < 0) {
    int err = errno;
    char msg[128];
    snprintf(msg, sizeof msg, "sched_setaffinity %s: %s", errno_name(err), strerror(err));
    napi_throw_error(env, errno_name(err), msg);
  }
  return NULL;
}

static napi_value do_name(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char name[16];
  if (get_args(env, info, 1, 1, argv, "nameThread(name)") < 0) return NULL;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) return throw_msg(env, "nameThread(name): a string");
  if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0) return throw_code(env, errno_name(errno), "prctl PR_SET_NAME failed");
  return NULL;
}

ADDON_EXPORTS({ "listen", do_listen }, { "probe", do_probe }, { "cpus", do_cpus }, { "pin", do_pin }, { "nameThread", do_name });
