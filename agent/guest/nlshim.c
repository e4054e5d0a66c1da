/*
 * nlshim: LD_PRELOAD shim that gives a stock netlink client (iproute2's tc, ip,
 * devlink; anything on libnetlink or libmnl) a VM's guest channels instead of
 * the kernel. socket(AF_NETLINK, NETLINK_ROUTE|NETLINK_GENERIC) becomes a unix
 * stream socket connected to $VPF_NL_ROUTE / $VPF_NL_GENL; the netlink socket
 * semantics the clients rely on are kept:
 *   - bind/getsockname: a sockaddr_nl whose port id is what kernel autobind
 *     would give (af_netlink.c netlink_autobind: the tgid first, then negative
 *     ids from -4096 down);
 *   - send*: each nlmsghdr's nlmsg_pid is set to that port id (the channel
 *     contract: the forwarder writes the requester's port id, docs/protocol.md);
 *   - recv*: exactly one netlink message per call, since the stream has no
 *     datagram boundaries; MSG_PEEK|MSG_TRUNC answers the size (libnetlink.c
 *     rtnl_recvmsg peeks for it), a short buffer truncates and drops the rest
 *     as a datagram socket does, msg_name is the kernel's sockaddr_nl (pid 0);
 *   - SOL_NETLINK options succeed (NETLINK_EXT_ACK, NETLINK_CAP_ACK,
 *     NETLINK_GET_STRICT_CHK); SOL_SOCKET ones go to the unix socket.
 * Other netlink protocols, and these two without their variable, fail with
 * EPROTONOSUPPORT so that nothing reaches the host's kernel by mistake. A
 * variable set to the word `kernel` opts that protocol into the real kernel
 * (a guest's OVS: rtnetlink to the channel, the openvswitch genl families to
 * its own kernel datapath).
 * Build: gcc -shared -fPIC -O2 -o dist/nlshim.so agent/guest/nlshim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#define MAX_FD 4096

/* Per fd: 0 = not ours; else the socket's port id is portid[fd] once bound. */
static unsigned char ours[MAX_FD];
static uint32_t portid[MAX_FD];
static int next_negative = -4096;
static int tgid_taken;

#define REAL(name) static __typeof__(name) *real_##name; \
	if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static int is_ours(int fd) { return fd >= 0 && fd < MAX_FD && ours[fd]; }

/* netlink_autobind: the tgid if free in this process, else -4096, -4097, ... */
static void autobind(int fd)
{
	if (portid[fd])
		return;
	if (!tgid_taken) {
		tgid_taken = 1;
		portid[fd] = (uint32_t)getpid();
	} else {
		portid[fd] = (uint32_t)next_negative--;
	}
}

int socket(int domain, int type, int protocol)
{
	REAL(socket);
	REAL(connect);
	REAL(close);
	if (domain != AF_NETLINK)
		return real_socket(domain, type, protocol);
	const char *path = protocol == NETLINK_ROUTE ? getenv("VPF_NL_ROUTE")
			 : protocol == NETLINK_GENERIC ? getenv("VPF_NL_GENL") : NULL;
	if (!path || !*path) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	if (!strcmp(path, "kernel"))
		return real_socket(domain, type, protocol);
	int fd = real_socket(AF_UNIX, SOCK_STREAM | (type & (SOCK_CLOEXEC | SOCK_NONBLOCK)), 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if (fd >= MAX_FD || real_connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = fd >= MAX_FD ? EMFILE : errno;
		real_close(fd);
		errno = e;
		return -1;
	}
	ours[fd] = 1;
	portid[fd] = 0;
	return fd;
}

int close(int fd)
{
	REAL(close);
	if (is_ours(fd)) {
		if (portid[fd] == (uint32_t)getpid())
			tgid_taken = 0;
		ours[fd] = 0;
		portid[fd] = 0;
	}
	return real_close(fd);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	REAL(bind);
	if (!is_ours(fd))
		return real_bind(fd, addr, len);
	const struct sockaddr_nl *nl = (const struct sockaddr_nl *)addr;
	if (len < sizeof(*nl) || nl->nl_family != AF_NETLINK) {
		errno = EINVAL;
		return -1;
	}
	if (nl->nl_pid)
		portid[fd] = nl->nl_pid;
	autobind(fd);
	return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	REAL(getsockname);
	if (!is_ours(fd))
		return real_getsockname(fd, addr, len);
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_pid = portid[fd] };
	memcpy(addr, &nl, *len < sizeof(nl) ? *len : sizeof(nl));
	*len = sizeof(nl);
	return 0;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	REAL(setsockopt);
	if (is_ours(fd) && level == SOL_NETLINK)
		return 0;
	int r = real_setsockopt(fd, level, name, val, len);
	/* SO_RCVBUFFORCE and friends may need privileges: a buffer size is not behaviour. */
	return is_ours(fd) && level == SOL_SOCKET ? 0 : r;
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	REAL(getsockopt);
	if (is_ours(fd) && level == SOL_NETLINK) {
		if (*len >= sizeof(int))
			*(int *)val = 0, *len = sizeof(int);
		return 0;
	}
	return real_getsockopt(fd, level, name, val, len);
}

/* Writes the whole buffer (a stream socket may take it in parts). */
static ssize_t write_all(int fd, const char *buf, size_t len, int flags)
{
	REAL(send);
	size_t done = 0;
	while (done < len) {
		ssize_t n = real_send(fd, buf + done, len - done, flags | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

/* One send: the messages with nlmsg_pid set to the socket's port id (C1). */
static ssize_t send_messages(int fd, const struct iovec *iov, size_t iovlen, int flags)
{
	size_t len = 0, off = 0;
	for (size_t i = 0; i < iovlen; i++)
		len += iov[i].iov_len;
	char *buf = malloc(len ? len : 1);
	if (!buf) {
		errno = ENOBUFS;
		return -1;
	}
	for (size_t i = 0; i < iovlen; i++) {
		memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	autobind(fd); /* sending on an unbound netlink socket autobinds it */
	for (size_t at = 0; at + sizeof(struct nlmsghdr) <= len;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + at);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - at)
			break;
		h->nlmsg_pid = portid[fd];
		at += NLMSG_ALIGN(h->nlmsg_len);
	}
	ssize_t n = write_all(fd, buf, len, flags & MSG_DONTWAIT);
	free(buf);
	return n;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	REAL(sendmsg);
	if (!is_ours(fd))
		return real_sendmsg(fd, msg, flags);
	return send_messages(fd, msg->msg_iov, msg->msg_iovlen, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
	REAL(sendto);
	if (!is_ours(fd))
		return real_sendto(fd, buf, len, flags, to, tolen);
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return send_messages(fd, &iov, 1, flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	return sendto(fd, buf, len, flags, NULL, 0);
}

/* Reads exactly len bytes, or peeks them (waiting until they are all there). */
static ssize_t read_exact(int fd, char *buf, size_t len, int flags)
{
	REAL(recv);
	size_t done = 0;
	if (flags & MSG_PEEK) {
		for (;;) {
			ssize_t n = real_recv(fd, buf, len, MSG_PEEK | MSG_WAITALL | (flags & MSG_DONTWAIT));
			if (n < 0 && errno == EINTR)
				continue;
			return n;
		}
	}
	while (done < len) {
		ssize_t n = real_recv(fd, buf + done, len - done, done ? 0 : (flags & MSG_DONTWAIT));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? n : (ssize_t)done;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * One netlink message into the iovecs, as a datagram read: the return value
 * is the message size with MSG_TRUNC, else what was copied; *out_flags gets
 * MSG_TRUNC when the buffer was short.
 */
static ssize_t recv_message(int fd, const struct iovec *iov, size_t iovlen, int flags, int *out_flags)
{
	struct nlmsghdr h;
	ssize_t n = read_exact(fd, (char *)&h, sizeof(h), MSG_PEEK | (flags & MSG_DONTWAIT));
	if (n <= 0)
		return n;
	if (n < (ssize_t)sizeof(h)) {
		errno = EPROTO;
		return -1;
	}
	/* A message takes NLMSG_ALIGN(len) bytes on the stream, as in a kernel skb. */
	size_t size = NLMSG_ALIGN(h.nlmsg_len < sizeof(h) ? sizeof(h) : h.nlmsg_len);
	char *msg = malloc(size);
	if (!msg) {
		errno = ENOBUFS;
		return -1;
	}
	n = read_exact(fd, msg, size, flags & MSG_PEEK);
	if (n < (ssize_t)size) {
		free(msg);
		if (n >= 0)
			errno = EPROTO;
		return -1;
	}
	size_t cap = 0, off = 0;
	for (size_t i = 0; i < iovlen; i++) {
		size_t k = iov[i].iov_len;
		if (k > size - off)
			k = size - off;
		if (k)
			memcpy(iov[i].iov_base, msg + off, k);
		off += k;
		cap += iov[i].iov_len;
	}
	free(msg);
	*out_flags = cap < size ? MSG_TRUNC : 0;
	return (flags & MSG_TRUNC) ? (ssize_t)size : (ssize_t)off;
}

static void kernel_name(void *name, socklen_t *namelen)
{
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	if (name && namelen) {
		memcpy(name, &nl, *namelen < sizeof(nl) ? *namelen : sizeof(nl));
		*namelen = sizeof(nl);
	}
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	REAL(recvmsg);
	if (!is_ours(fd))
		return real_recvmsg(fd, msg, flags);
	int out = 0;
	ssize_t n = recv_message(fd, msg->msg_iov, msg->msg_iovlen, flags, &out);
	if (n < 0)
		return n;
	kernel_name(msg->msg_name, &msg->msg_namelen);
	msg->msg_controllen = 0;
	msg->msg_flags = out;
	return n;
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	REAL(recvfrom);
	if (!is_ours(fd))
		return real_recvfrom(fd, buf, len, flags, from, fromlen);
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	int out = 0;
	ssize_t n = recv_message(fd, &iov, 1, flags, &out);
	if (n >= 0)
		kernel_name(from, fromlen);
	return n;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}
