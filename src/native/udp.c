/*
 * The DHCP socket. Node's dgram cannot tie a socket to an interface (SO_BINDTOIFINDEX, Linux >= 5.7,
 * the integer form of SO_BINDTODEVICE) nor force a receive buffer past net.core.rmem_max
 * (SO_RCVBUFFORCE), and it offers no public way to reach its socket's descriptor. So the socket is
 * made here, every option set before bind() (no datagram from another interface slips in between),
 * and its datagrams go through dhcpio.c.
 *
 * udpSocket(address, port, ifindex, rcvbuf) -> { fd, rcvbuf, port }
 *   ifindex 0: any interface; rcvbuf 0: the kernel's default. The returned rcvbuf is what the kernel
 *   granted (SO_RCVBUF as read back), `port` the one bound (0 asks the kernel for one). Throws an
 *   Error with code/errno/syscall on failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "addon.h"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

static napi_value fail(napi_env env, int fd, const char *syscall) {
  int err = errno;
  if (fd >= 0) close(fd);
  return throw_errno(env, err, syscall);
}

napi_value udp_socket(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, 4, argv, "udpSocket(address, port, ifindex, rcvbuf)")) return NULL;
  char address[64];
  size_t alen;
  if (napi_get_value_string_utf8(env, argv[0], address, sizeof address, &alen) != napi_ok) {
    napi_throw_type_error(env, NULL, "address must be a string");
    return NULL;
  }
  int64_t port, ifindex, rcvbuf;
  if (!arg_int64(env, argv[1], "port", &port) || !arg_int64(env, argv[2], "ifindex", &ifindex) || !arg_int64(env, argv[3], "rcvbuf", &rcvbuf)) return NULL;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  if (port < 0 || port > 65535 || inet_pton(AF_INET, address, &sin.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "udpSocket: not an IPv4 address and port");
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(env, -1, "socket");
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0) return fail(env, fd, "setsockopt SO_REUSEADDR");
  if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on) < 0) return fail(env, fd, "setsockopt SO_BROADCAST");
  if (ifindex > 0) {
    int idx = (int)ifindex;
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &idx, sizeof idx) < 0) return fail(env, fd, "setsockopt SO_BINDTOIFINDEX");
  }
  if (rcvbuf > 0) {
    /* Past net.core.rmem_max needs CAP_NET_ADMIN; without it, as much as SO_RCVBUF allows. */
    int want = rcvbuf > 0x3fffffff ? 0x3fffffff : (int)rcvbuf;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) < 0) (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
  }
  /* Replies leave many at a time (dhcpio.c, sendmmsg): room for a burst before the NIC takes them. */
  int sndbuf = 1 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0) (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) return fail(env, fd, "bind");
  int granted = 0;
  socklen_t glen = sizeof granted;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &glen) < 0) return fail(env, fd, "getsockopt SO_RCVBUF");

  struct sockaddr_in bound;
  socklen_t blen = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &blen) < 0) return fail(env, fd, "getsockname");

  napi_value out, vfd, vbuf, vport;
  NAPI_OK(env, napi_create_object(env, &out));
  NAPI_OK(env, napi_create_int32(env, ntohs(bound.sin_port), &vport));
  NAPI_OK(env, napi_set_named_property(env, out, "port", vport));
  NAPI_OK(env, napi_create_int32(env, fd, &vfd));
  NAPI_OK(env, napi_create_int32(env, granted, &vbuf));
  NAPI_OK(env, napi_set_named_property(env, out, "fd", vfd));
  NAPI_OK(env, napi_set_named_property(env, out, "rcvbuf", vbuf));
  return out;
}
