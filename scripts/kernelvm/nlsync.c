/*
 * nlsync: preloaded in front of nlshim.so for a guest's ovs-vswitchd, it gives
 * nlshim's channel sockets two kernel behaviours OVS relies on:
 *   - connect() to the kernel (sockaddr_nl pid 0), which OVS's nl_sock_create
 *     (lib/netlink-socket.c) does before getsockname(): as af_netlink.c
 *     netlink_connect, it autobinds (through nlshim's bind) and succeeds;
 *   - replies are there when send() returns: the kernel runs a request in the
 *     sender's sendmsg (netlink_unicast_kernel -> netlink_rcv_skb), so its
 *     error/ACK/reply, or a dump's first part, is queued before send returns.
 *     OVS reads them without waiting (nl_sock_transact_multiple__ takes
 *     EAGAIN as "no reply, success"; nl_dump_refill takes it as the dump's
 *     end). The channel answers later, so each request goes out with NLM_F_ACK
 *     and send() reads until every request has its last answer (NLMSG_ERROR
 *     or NLMSG_DONE), keeping them for recv*; an ACK the client did not ask
 *     for is dropped (netlink_rcv_skb sends none).
 * Build: gcc -shared -fPIC -O2 -o nlsync.so nlsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 4096
#define MAX_PENDING 256
#define WAIT_MS 20000

struct qmsg { struct qmsg *next; size_t len; char data[]; };
struct pending { uint32_t seq; int client_ack; };
struct chan {
	int on;
	struct qmsg *head, *tail;
	struct pending p[MAX_PENDING];
	int np;
};
static struct chan ch[MAX_FD];

#define NEXT(name) static __typeof__(name) *next_##name; \
	if (!next_##name) next_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static int mine(int fd) { return fd >= 0 && fd < MAX_FD && ch[fd].on; }

static void drop_queue(int fd)
{
	while (ch[fd].head) {
		struct qmsg *m = ch[fd].head;
		ch[fd].head = m->next;
		free(m);
	}
	ch[fd].tail = NULL;
	ch[fd].np = 0;
}

int socket(int domain, int type, int protocol)
{
	NEXT(socket);
	int fd = next_socket(domain, type, protocol);
	int dom = 0;
	socklen_t dl = sizeof(dom);
	/* nlshim made it a unix socket: it is a channel socket */
	if (fd >= 0 && fd < MAX_FD && domain == AF_NETLINK &&
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) == 0 && dom == AF_UNIX) {
		drop_queue(fd);
		ch[fd].on = 1;
	}
	return fd;
}

int close(int fd)
{
	NEXT(close);
	if (mine(fd)) {
		drop_queue(fd);
		ch[fd].on = 0;
	}
	return next_close(fd);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	NEXT(connect);
	if (mine(fd) && addr && addr->sa_family == AF_NETLINK) {
		struct sockaddr_nl self;
		memset(&self, 0, sizeof(self));
		self.nl_family = AF_NETLINK;
		return bind(fd, (struct sockaddr *)&self, sizeof(self));
	}
	return next_connect(fd, addr, len);
}

static int take_pending(int fd, uint32_t seq, int *client_ack)
{
	struct chan *c = &ch[fd];
	for (int i = 0; i < c->np; i++) {
		if (c->p[i].seq != seq)
			continue;
		*client_ack = c->p[i].client_ack;
		c->p[i] = c->p[--c->np];
		return 1;
	}
	return 0;
}

/* nlshim's recvmsg: one message a call (its recv and send go through recvfrom
 * and sendto, which would come back here). */
static ssize_t chan_recv(int fd, void *buf, size_t len, int flags)
{
	NEXT(recvmsg);
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	return next_recvmsg(fd, &mh, flags);
}

/* Reads answers until no request is pending. */
static void collect(int fd)
{
	struct chan *c = &ch[fd];
	while (c->np > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, WAIT_MS) <= 0) {
			c->np = 0; /* the channel went quiet: let the client see what it sees */
			return;
		}
		struct nlmsghdr h;
		ssize_t n = chan_recv(fd, &h, sizeof(h), MSG_PEEK | MSG_TRUNC);
		if (n <= 0) {
			c->np = 0;
			return;
		}
		struct qmsg *m = malloc(sizeof(*m) + (size_t)n);
		if (!m)
			return;
		ssize_t got = chan_recv(fd, m->data, (size_t)n, 0);
		if (got < 0) {
			free(m);
			c->np = 0;
			return;
		}
		m->len = (size_t)got;
		m->next = NULL;
		struct nlmsghdr *mh = (struct nlmsghdr *)m->data;
		int client_ack = 1;
		int last = m->len >= sizeof(*mh) && (mh->nlmsg_type == NLMSG_ERROR || mh->nlmsg_type == NLMSG_DONE);
		if (last && take_pending(fd, mh->nlmsg_seq, &client_ack) && mh->nlmsg_type == NLMSG_ERROR &&
		    m->len >= sizeof(*mh) + sizeof(int) && *(int *)(m->data + sizeof(*mh)) == 0 && !client_ack) {
			free(m);
			continue;
		}
		if (c->tail)
			c->tail->next = m;
		else
			c->head = m;
		c->tail = m;
	}
}

/* Each request asks for an ACK (its last answer is then always NLMSG_ERROR or NLMSG_DONE). */
static ssize_t send_sync(int fd, const struct iovec *iov, size_t iovlen, int flags)
{
	NEXT(sendmsg);
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
	struct chan *c = &ch[fd];
	for (size_t at = 0; at + sizeof(struct nlmsghdr) <= len;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + at);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - at)
			break;
		if ((h->nlmsg_flags & NLM_F_REQUEST) && c->np < MAX_PENDING) {
			c->p[c->np].seq = h->nlmsg_seq;
			c->p[c->np].client_ack = (h->nlmsg_flags & NLM_F_ACK) != 0;
			c->np++;
			h->nlmsg_flags |= NLM_F_ACK;
		}
		at += NLMSG_ALIGN(h->nlmsg_len);
	}
	struct iovec one = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &one, .msg_iovlen = 1 };
	ssize_t n = next_sendmsg(fd, &mh, flags);
	free(buf);
	if (n >= 0)
		collect(fd);
	else
		c->np = 0;
	return n;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	NEXT(sendmsg);
	if (!mine(fd))
		return next_sendmsg(fd, msg, flags);
	return send_sync(fd, msg->msg_iov, msg->msg_iovlen, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
	NEXT(sendto);
	if (!mine(fd))
		return next_sendto(fd, buf, len, flags, to, tolen);
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return send_sync(fd, &iov, 1, flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	return sendto(fd, buf, len, flags, NULL, 0);
}

/* A kept answer into the iovecs, as nlshim reads one from the stream. */
static ssize_t recv_kept(int fd, const struct iovec *iov, size_t iovlen, int flags, int *out_flags)
{
	struct qmsg *m = ch[fd].head;
	size_t cap = 0, off = 0;
	for (size_t i = 0; i < iovlen; i++) {
		size_t k = iov[i].iov_len;
		if (k > m->len - off)
			k = m->len - off;
		if (k)
			memcpy(iov[i].iov_base, m->data + off, k);
		off += k;
		cap += iov[i].iov_len;
	}
	*out_flags = cap < m->len ? MSG_TRUNC : 0;
	ssize_t r = (flags & MSG_TRUNC) ? (ssize_t)m->len : (ssize_t)off;
	if (!(flags & MSG_PEEK)) {
		ch[fd].head = m->next;
		if (!ch[fd].head)
			ch[fd].tail = NULL;
		free(m);
	}
	return r;
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
	NEXT(recvmsg);
	if (!mine(fd) || !ch[fd].head)
		return next_recvmsg(fd, msg, flags);
	int out = 0;
	ssize_t n = recv_kept(fd, msg->msg_iov, msg->msg_iovlen, flags, &out);
	kernel_name(msg->msg_name, &msg->msg_namelen);
	msg->msg_controllen = 0;
	msg->msg_flags = out;
	return n;
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	NEXT(recvfrom);
	if (!mine(fd) || !ch[fd].head)
		return next_recvfrom(fd, buf, len, flags, from, fromlen);
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	int out = 0;
	ssize_t n = recv_kept(fd, &iov, 1, flags, &out);
	kernel_name(from, fromlen);
	return n;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}
