/*
 * nlshim: LD_PRELOAD shim that gives a stock netlink client (iproute2's tc, ip,
 * devlink; anything on libnetlink or libmnl; a guest's ovs-vswitchd) a VM's
 * guest channels instead of the kernel. socket(AF_NETLINK,
 * NETLINK_ROUTE|NETLINK_GENERIC) becomes a unix stream socket connected to
 * $VPF_NL_ROUTE / $VPF_NL_GENL; the netlink socket semantics the clients rely
 * on are kept:
 *   - bind/getsockname: a sockaddr_nl whose port id is what kernel autobind
 *     would give (af_netlink.c netlink_autobind: the tgid first, then negative
 *     ids from -4096 down);
 *   - connect to the kernel (sockaddr_nl pid 0) autobinds and succeeds, as
 *     af_netlink.c netlink_connect does: OVS's nl_sock_create
 *     (lib/netlink-socket.c) connects before it asks getsockname;
 *   - send*: each nlmsghdr's nlmsg_pid is set to that port id (the channel
 *     contract C1: the forwarder writes the requester's port id,
 *     docs/protocol.md);
 *   - answers are there when send* returns (C3): the kernel runs a request
 *     inside the sender's sendmsg (netlink_unicast_kernel -> netlink_rcv_skb),
 *     so its error/ACK/reply, or a dump's first part, is queued by then, and
 *     OVS reads without waiting (nl_sock_transact_multiple__ takes EAGAIN as
 *     "no reply, success", nl_dump_refill as the dump's end). The channel
 *     answers later, so each request goes out with NLM_F_ACK and send* reads
 *     until every request has its last answer (NLMSG_ERROR or NLMSG_DONE),
 *     keeping them for recv*; an ACK the client did not ask for is dropped
 *     (netlink_rcv_skb sends none). iproute2 waits in recvmsg and sees no
 *     difference;
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
 * its own kernel datapath). With $VPF_NL_REPS (the representors' ifindexes,
 * "2,3"), a tc request (qdisc, class, filter, chain) naming another device
 * goes to the guest's own kernel instead: on a virtual PF the representors'
 * tc reaches the hypervisor and the guest's own devices stay the guest
 * kernel's. A guest OVS probes what flower takes on the first device it
 * opens, its datapath's ovs-system (netdev-offload-tc.c
 * probe_ct_state_support), and must get its kernel's answer, not ENODEV.
 * With $VPF_NL_SWCOPY as well, the guest's kernel keeps a software copy of
 * the representors' filters, as a switchdev's tc core does (swcopy below).
 * Build: gcc -shared -fPIC -O2 -o dist/nlshim.so agent/guest/nlshim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/gen_stats.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_csum.h>
#include <linux/tc_act/tc_ct.h>
#include <linux/tc_act/tc_gact.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/tc_act/tc_mpls.h>
#include <linux/tc_act/tc_pedit.h>
#include <linux/tc_act/tc_sample.h>
#include <linux/tc_act/tc_skbedit.h>
#include <linux/tc_act/tc_tunnel_key.h>
#include <linux/tc_act/tc_vlan.h>
#include <net/if.h>
#include <linux/rtnetlink.h>
#include <poll.h>
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
/* How long a send waits for the channel's answers before letting the client read what comes. */
#define ANSWER_WAIT_MS 20000

/* A message read off the stream, not yet given to the client. */
struct kept {
	struct kept *next;
	size_t len;
	char data[];
};

/* A message sent whose last answer (NLMSG_ERROR or NLMSG_DONE) has not come yet. */
struct pending {
	uint32_t seq;
	int client_ack; /* the client asked for the ACK itself; -1: the client did not send it, none of its answers are the client's */
};

/* One channel socket (ours != 0). */
struct chan {
	int ours;
	uint32_t portid;          /* 0 until bound */
	struct kept *head, *tail; /* answers read ahead, in stream order */
	struct pending *pending;  /* oldest first */
	size_t npending, cap;
	int kernel;               /* the guest kernel's NETLINK_ROUTE socket, for its own devices; 0 until needed */
};

static struct chan chans[MAX_FD];
static int next_negative = -4096;
static int tgid_taken;

#define REAL(name) static __typeof__(name) *real_##name; \
	if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static int is_ours(int fd) { return fd >= 0 && fd < MAX_FD && chans[fd].ours; }

/* netlink_autobind: the tgid if free in this process, else -4096, -4097, ... */
static void autobind(struct chan *c)
{
	if (c->portid)
		return;
	if (!tgid_taken) {
		tgid_taken = 1;
		c->portid = (uint32_t)getpid();
	} else {
		c->portid = (uint32_t)next_negative--;
	}
}

static void forget(struct chan *c)
{
	REAL(close);
	if (c->kernel > 0)
		real_close(c->kernel);
	while (c->head) {
		struct kept *m = c->head;
		c->head = m->next;
		free(m);
	}
	free(c->pending);
	memset(c, 0, sizeof(*c));
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
	forget(&chans[fd]);
	chans[fd].ours = 1;
	return fd;
}

int close(int fd)
{
	REAL(close);
	if (is_ours(fd)) {
		if (chans[fd].portid == (uint32_t)getpid())
			tgid_taken = 0;
		forget(&chans[fd]);
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
		chans[fd].portid = nl->nl_pid;
	autobind(&chans[fd]);
	return 0;
}

/*
 * netlink_connect: AF_UNSPEC disconnects, the kernel (pid 0) is reached after
 * an autobind. The channel reaches nothing else, so another port or a group is
 * refused as the kernel refuses it to a sender without NL_CFG_F_NONROOT_SEND.
 */
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	REAL(connect);
	if (!is_ours(fd))
		return real_connect(fd, addr, len);
	const struct sockaddr_nl *nl = (const struct sockaddr_nl *)addr;
	if (len >= sizeof(addr->sa_family) && addr->sa_family == AF_UNSPEC)
		return 0;
	if (len < sizeof(*nl) || nl->nl_family != AF_NETLINK) {
		errno = EINVAL;
		return -1;
	}
	if (nl->nl_pid || nl->nl_groups) {
		errno = EPERM;
		return -1;
	}
	autobind(&chans[fd]);
	return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	REAL(getsockname);
	if (!is_ours(fd))
		return real_getsockname(fd, addr, len);
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_pid = chans[fd].portid };
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

/* Waits until fd is ready for events, for at most ms. */
static int wait_for(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	for (;;) {
		int r = poll(&p, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			errno = ETIMEDOUT;
		return r > 0 ? 0 : -1;
	}
}

/*
 * Writes the whole buffer, waiting on a non-blocking socket too: a stream may
 * take it in parts, and a send to the kernel never waits on its receiver.
 */
static int write_all(int fd, const char *buf, size_t len)
{
	REAL(send);
	size_t done = 0;
	while (done < len) {
		ssize_t n = real_send(fd, buf + done, len - done, MSG_NOSIGNAL);
		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_for(fd, POLLOUT, ANSWER_WAIT_MS) < 0)
			return -1;
	}
	return 0;
}

/* Reads buf[done..len): the rest of a message that has begun, waited for even on a non-blocking socket. */
static int read_rest(int fd, char *buf, size_t done, size_t len)
{
	REAL(recv);
	while (done < len) {
		ssize_t n = real_recv(fd, buf + done, len - done, 0);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0) {
			errno = EPROTO; /* the stream ended inside a message */
			return -1;
		}
		if (errno == EINTR)
			continue;
		if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_for(fd, POLLIN, ANSWER_WAIT_MS) < 0)
			return -1;
	}
	return 0;
}

/*
 * Takes one whole message off the stream into *out; MSG_DONTWAIT in flags (or
 * a non-blocking socket) applies until its first byte. Returns its size, 0 at
 * the stream's end, -1 with errno (EAGAIN: nothing there).
 */
static ssize_t stream_message(int fd, int flags, struct kept **out)
{
	REAL(recv);
	struct nlmsghdr h;
	ssize_t n;
	do
		n = real_recv(fd, &h, sizeof(h), flags & MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	if (read_rest(fd, (char *)&h, (size_t)n, sizeof(h)) < 0)
		return -1;
	/* A message takes NLMSG_ALIGN(len) bytes on the stream, as in a kernel skb. */
	size_t size = NLMSG_ALIGN(h.nlmsg_len < sizeof(h) ? sizeof(h) : h.nlmsg_len);
	struct kept *m = malloc(sizeof(*m) + size);
	if (!m) {
		errno = ENOBUFS;
		return -1;
	}
	memcpy(m->data, &h, sizeof(h));
	if (read_rest(fd, m->data, sizeof(h), size) < 0) {
		free(m);
		return -1;
	}
	m->len = size;
	m->next = NULL;
	*out = m;
	return (ssize_t)size;
}

static void keep(struct chan *c, struct kept *m)
{
	if (c->tail)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
}

static int add_pending(struct chan *c, uint32_t seq, int client_ack)
{
	if (c->npending == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct pending *p = realloc(c->pending, cap * sizeof(*p));
		if (!p)
			return -1;
		c->pending = p;
		c->cap = cap;
	}
	c->pending[c->npending++] = (struct pending){ .seq = seq, .client_ack = client_ack };
	return 0;
}

/* Removes the oldest pending message of this seq (requests are answered in order); 1 if there was one. */
static int take_pending(struct chan *c, uint32_t seq, int *client_ack)
{
	for (size_t i = 0; i < c->npending; i++) {
		if (c->pending[i].seq != seq)
			continue;
		*client_ack = c->pending[i].client_ack;
		memmove(&c->pending[i], &c->pending[i + 1], (c->npending - i - 1) * sizeof(*c->pending));
		c->npending--;
		return 1;
	}
	return 0;
}

/* An NLMSG_ERROR's payload (its error code, then the request's header echoed), or NULL. */
static struct nlmsgerr *error_of(struct kept *m)
{
	struct nlmsghdr *h = (struct nlmsghdr *)m->data;
	if (h->nlmsg_type != NLMSG_ERROR || m->len < NLMSG_HDRLEN + sizeof(int))
		return NULL;
	return (struct nlmsgerr *)NLMSG_DATA(h);
}

/*
 * An answer that ends a pending message, as the client must see it: an ACK it
 * did not ask for is dropped (0), an error echoes its request without the
 * NLM_F_ACK added here (netlink_ack copies the request's header as sent).
 */
static int answer_for_client(struct chan *c, struct kept *m)
{
	struct nlmsghdr *h = (struct nlmsghdr *)m->data;
	int client_ack = 1;
	if ((h->nlmsg_type != NLMSG_ERROR && h->nlmsg_type != NLMSG_DONE) || !take_pending(c, h->nlmsg_seq, &client_ack))
		return 1;
	if (client_ack < 0)
		return 0;
	struct nlmsgerr *err = error_of(m);
	if (!err || client_ack)
		return 1;
	if (err->error == 0)
		return 0;
	if (m->len >= NLMSG_HDRLEN + sizeof(*err))
		err->msg.nlmsg_flags &= ~NLM_F_ACK;
	return 1;
}

static void add_own_counters(struct chan *c, struct kept *m);

/* Reads the channel's answers until no sent message is pending, keeping them for recv*. */
static void collect(int fd)
{
	struct chan *c = &chans[fd];
	while (c->npending) {
		struct kept *m;
		if (wait_for(fd, POLLIN, ANSWER_WAIT_MS) < 0 || stream_message(fd, 0, &m) <= 0) {
			c->npending = 0; /* the channel went quiet or away: the client reads what comes */
			return;
		}
		if (answer_for_client(c, m)) {
			add_own_counters(c, m);
			keep(c, m);
		} else {
			free(m);
		}
	}
}

/*
 * netlink_rcv_skb answers a request, and ACKs anything that asks: a request
 * goes out with NLM_F_ACK so that its last answer is known, and is pending
 * until it comes (answer_for_client drops an ACK the client did not ask for).
 */
static int expect_answer(struct chan *c, struct nlmsghdr *h)
{
	int client_ack = (h->nlmsg_flags & NLM_F_ACK) != 0;
	if (h->nlmsg_flags & NLM_F_REQUEST)
		h->nlmsg_flags |= NLM_F_ACK;
	return h->nlmsg_flags & NLM_F_ACK ? add_pending(c, h->nlmsg_seq, client_ack) : 0;
}

/*
 * A tc request about a device that is not one of $VPF_NL_REPS: the guest
 * kernel's. A dump over every device (ifindex 0) and a shared block stay the
 * channel's.
 */
static int for_own_kernel(const struct nlmsghdr *h)
{
	const char *reps = getenv("VPF_NL_REPS");
	int t = h->nlmsg_type;
	int tc = (t >= RTM_NEWQDISC && t <= RTM_GETTFILTER) || (t >= RTM_NEWCHAIN && t <= RTM_GETCHAIN);
	if (!reps || !tc || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
		return 0;
	int ifindex = ((const struct tcmsg *)NLMSG_DATA(h))->tcm_ifindex;
	if (ifindex <= 0)
		return 0;
	for (const char *p = reps; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v == ifindex)
			return 0;
		p = *end ? end + 1 : end;
	}
	return 1;
}

/* The guest kernel's NETLINK_ROUTE socket of this channel, opened on first use; -1 if it cannot be. */
static int own_kernel(struct chan *c)
{
	REAL(socket);
	if (!c->kernel && (c->kernel = real_socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0)
		c->kernel = 0;
	return c->kernel ? c->kernel : -1;
}

/*
 * Reads the guest kernel's answers to a request: each message of the datagrams,
 * addressed to the client's port id, goes to `take` (which keeps or frees it)
 * until `take` says the request is answered.
 */
static int own_kernel_answers(struct chan *c, int (*take)(struct chan *, struct kept *, void *), void *arg)
{
	REAL(recv);
	static char dgram[1 << 16];
	for (int done = 0; !done;) {
		ssize_t n = real_recv(c->kernel, dgram, sizeof(dgram), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		for (size_t at = 0; at + NLMSG_HDRLEN <= (size_t)n;) {
			struct nlmsghdr *a = (struct nlmsghdr *)(dgram + at);
			size_t size = NLMSG_ALIGN(a->nlmsg_len);
			if (a->nlmsg_len < NLMSG_HDRLEN || at + a->nlmsg_len > (size_t)n)
				break;
			struct kept *m = malloc(sizeof(*m) + size);
			if (!m)
				return -1;
			memcpy(m->data, a, a->nlmsg_len);
			memset(m->data + a->nlmsg_len, 0, size - a->nlmsg_len);
			((struct nlmsghdr *)m->data)->nlmsg_pid = c->portid;
			m->len = size;
			m->next = NULL;
			done |= take(c, m, arg);
			at += size;
		}
	}
	return 0;
}

/* An answer of the guest's kernel for the client, as the channel's are; the request is answered when nothing it sent is pending. */
static int keep_for_client(struct chan *c, struct kept *m, void *before)
{
	if (answer_for_client(c, m))
		keep(c, m);
	else
		free(m);
	return c->npending <= *(size_t *)before;
}

/*
 * One request to the guest's own kernel, answered there and then: its answers
 * are kept for recv* as the channel's are.
 */
static int ask_own_kernel(struct chan *c, struct nlmsghdr *h)
{
	REAL(send);
	size_t before = c->npending;
	if (own_kernel(c) < 0 || expect_answer(c, h) < 0 || real_send(c->kernel, h, h->nlmsg_len, 0) < 0)
		return -1;
	return own_kernel_answers(c, keep_for_client, &before);
}

/*
 * $VPF_NL_SWCOPY: the guest's kernel keeps its own copy of what the client
 * puts on the representors, as the kernel's tc core does on a switchdev
 * (cls_api.c adds a filter to software, then offers it to the driver:
 * tc_setup_cb_add). A packet vpfd hands to a representor then meets the
 * guest's filters in software, and a miss after a `goto chain` reaches a
 * guest OVS at that chain's recirc_id (tc_skb_ext, CONFIG_NET_TC_SKB_EXT) as
 * on a NIC, not at 0. A filter goes to the guest's kernel first, which picks
 * its handle (an ECHO tells it) and refuses what it refuses; vpfd gets it with
 * that handle and answers the client; vpfd's refusal takes the copy away.
 * Qdiscs are the guest kernel's (vpfd keeps none): it answers for them, and
 * vpfd is told of what it took. Chains, deletions and shared actions go to
 * both, the client gets vpfd's answer; one that describes a filter gets the
 * copy's software counters added (add_own_counters), as the kernel adds the
 * driver's to its own.
 */
static int swcopy_on(void)
{
	const char *on = getenv("VPF_NL_SWCOPY");
	return on && *on && strcmp(on, "0");
}

static int swcopy(const struct nlmsghdr *h)
{
	int t = h->nlmsg_type;
	if (!swcopy_on() || !(h->nlmsg_flags & NLM_F_REQUEST))
		return 0;
	/* The guest's kernel holds the representors' qdiscs (vpfd keeps none): it lists them, dumps included. */
	if (t == RTM_NEWACTION || t == RTM_DELACTION || t == RTM_GETQDISC)
		return 1;
	int changes = t == RTM_NEWQDISC || t == RTM_DELQDISC || t == RTM_NEWTFILTER || t == RTM_DELTFILTER || t == RTM_NEWCHAIN || t == RTM_DELCHAIN;
	return changes && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct tcmsg)) && ((const struct tcmsg *)NLMSG_DATA(h))->tcm_ifindex > 0 && !for_own_kernel(h);
}

/* What the guest's kernel answered one request: its error (errno, 0 for an ACK) and the filter it echoed or got. */
struct own_answer {
	uint32_t seq;
	uint32_t handle;
	int error;
	struct kept *refusal; /* the NLMSG_ERROR of a refusal, for the client */
	struct kept *filter;  /* its RTM_NEWTFILTER */
};

static void own_answer_free(struct own_answer *a)
{
	free(a->refusal);
	free(a->filter);
}

static int note_answer(struct chan *c, struct kept *m, void *arg)
{
	(void)c;
	struct own_answer *a = arg;
	struct nlmsghdr *h = (struct nlmsghdr *)m->data;
	struct nlmsgerr *err = error_of(m);
	int last = h->nlmsg_seq == a->seq && (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE);
	if (h->nlmsg_seq == a->seq && h->nlmsg_type == RTM_NEWTFILTER && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct tcmsg))) {
		a->handle = ((struct tcmsg *)NLMSG_DATA(h))->tcm_handle;
		free(a->filter);
		a->filter = m;
		return 0;
	}
	if (last && err && err->error) {
		a->error = -err->error;
		a->refusal = m;
	} else {
		free(m);
	}
	return last;
}

/* Sends a copy of h to the guest's kernel with an ACK (and an ECHO if `echo`), and reads what it answers. */
static int own_kernel_transact(struct chan *c, const struct nlmsghdr *h, int echo, struct own_answer *a)
{
	REAL(send);
	*a = (struct own_answer){ .seq = h->nlmsg_seq };
	struct nlmsghdr *copy = malloc(h->nlmsg_len);
	if (!copy || own_kernel(c) < 0) {
		free(copy);
		return -1;
	}
	memcpy(copy, h, h->nlmsg_len);
	copy->nlmsg_flags |= NLM_F_ACK | (echo ? NLM_F_ECHO : 0);
	int r = real_send(c->kernel, copy, copy->nlmsg_len, 0) < 0 ? -1 : own_kernel_answers(c, note_answer, a);
	free(copy);
	return r;
}

/* A tc message's attributes after its tcmsg, and their length. */
#define TC_ATTRS(h) ((struct rtattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct tcmsg))))
#define TC_ATTRLEN(h) ((int)(h)->nlmsg_len - (int)NLMSG_LENGTH(sizeof(struct tcmsg)))

/* The first attribute of `type` among the len bytes of attributes at a, or NULL. */
static struct rtattr *find_attr(struct rtattr *a, int len, int type)
{
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if ((a->rta_type & NLA_TYPE_MASK) == type)
			return a;
	return NULL;
}

/* The attribute of `type` nested in nest (NULL if nest is). */
static struct rtattr *nested(struct rtattr *nest, int type)
{
	return nest ? find_attr(RTA_DATA(nest), (int)RTA_PAYLOAD(nest), type) : NULL;
}

/* A flower filter the client puts in hardware only (TCA_CLS_FLAGS_SKIP_SW): there is no software copy. */
static int skips_sw(const struct nlmsghdr *h)
{
	struct rtattr *flags = nested(find_attr(TC_ATTRS(h), TC_ATTRLEN(h), TCA_OPTIONS), TCA_FLOWER_FLAGS);
	return flags && RTA_PAYLOAD(flags) >= 4 && (*(uint32_t *)RTA_DATA(flags) & TCA_CLS_FLAGS_SKIP_SW);
}

#define OWN_FILTER_REQUEST_SIZE (NLMSG_LENGTH(sizeof(struct tcmsg)) + 2 * RTA_SPACE(IFNAMSIZ))

/* A request of `type` about the filter h names (its device, parent, prio, protocol, kind and chain) with `handle`. */
static struct nlmsghdr *own_filter_request(char *buf, const struct nlmsghdr *h, int type, uint32_t handle)
{
	struct nlmsghdr *d = (struct nlmsghdr *)buf;
	*d = (struct nlmsghdr){ .nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg)), .nlmsg_type = type, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = h->nlmsg_seq };
	struct tcmsg *t = NLMSG_DATA(d);
	*t = *(const struct tcmsg *)NLMSG_DATA(h);
	t->tcm_family = AF_UNSPEC;
	t->tcm_handle = handle;
	int kinds[] = { TCA_KIND, TCA_CHAIN };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		struct rtattr *a = find_attr(TC_ATTRS(h), TC_ATTRLEN(h), kinds[i]);
		if (!a || a->rta_len > RTA_SPACE(IFNAMSIZ))
			continue;
		memcpy(buf + NLMSG_ALIGN(d->nlmsg_len), a, a->rta_len);
		d->nlmsg_len = NLMSG_ALIGN(d->nlmsg_len) + RTA_ALIGN(a->rta_len);
	}
	return d;
}

/* Takes the copy of the filter h added away, when vpfd refused it. */
static void own_kernel_forget(struct chan *c, const struct nlmsghdr *h, uint32_t handle)
{
	char buf[OWN_FILTER_REQUEST_SIZE];
	struct own_answer a;
	if (own_kernel_transact(c, own_filter_request(buf, h, RTM_DELTFILTER, handle), 0, &a) == 0)
		own_answer_free(&a);
}

/* Adds n to the u64 bytes and u32 packets of a struct gnet_stats_basic (unaligned in the message). */
static void add_basic(struct rtattr *to, const struct rtattr *n)
{
	uint64_t b, nb;
	uint32_t p, np;
	if (!to || !n || RTA_PAYLOAD(to) < 12 || RTA_PAYLOAD(n) < 12)
		return;
	memcpy(&b, RTA_DATA(to), 8), memcpy(&nb, RTA_DATA(n), 8);
	memcpy(&p, (char *)RTA_DATA(to) + 8, 4), memcpy(&np, (char *)RTA_DATA(n) + 8, 4);
	b += nb, p += np;
	memcpy(RTA_DATA(to), &b, 8), memcpy((char *)RTA_DATA(to) + 8, &p, 4);
}

/* Where an action kind keeps its struct tcf_t in TCA_ACT_OPTIONS (each act_*.c dumps it as its own *_TM). */
static int tm_attr(const struct rtattr *act)
{
	static const struct { const char *kind; int tm; } kinds[] = {
		{ "gact", TCA_GACT_TM }, { "mirred", TCA_MIRRED_TM }, { "police", TCA_POLICE_TM }, { "ct", TCA_CT_TM },
		{ "vlan", TCA_VLAN_TM }, { "pedit", TCA_PEDIT_TM }, { "csum", TCA_CSUM_TM }, { "skbedit", TCA_SKBEDIT_TM },
		{ "mpls", TCA_MPLS_TM }, { "sample", TCA_SAMPLE_TM }, { "tunnel_key", TCA_TUNNEL_KEY_TM },
	};
	struct rtattr *kind = nested((struct rtattr *)act, TCA_ACT_KIND);
	for (size_t i = 0; kind && i < sizeof(kinds) / sizeof(*kinds); i++)
		if (!strncmp(RTA_DATA(kind), kinds[i].kind, RTA_PAYLOAD(kind)))
			return kinds[i].tm;
	return -1;
}

/*
 * The times of one action, ages in clock_t (tcf_tm_dump): used last by
 * whichever ran it last, first by whichever ran it first (firstuse 0: never).
 */
static void merge_times(struct rtattr *act, struct rtattr *mine)
{
	int tm = tm_attr(act);
	struct rtattr *to = tm < 0 ? NULL : nested(nested(act, TCA_ACT_OPTIONS), tm);
	struct rtattr *from = tm < 0 ? NULL : nested(nested(mine, TCA_ACT_OPTIONS), tm);
	struct tcf_t t, o;
	if (!to || !from || RTA_PAYLOAD(to) < sizeof(t) || RTA_PAYLOAD(from) < sizeof(o))
		return;
	memcpy(&t, RTA_DATA(to), sizeof(t));
	memcpy(&o, RTA_DATA(from), sizeof(o));
	if (!o.firstuse)
		return;
	t.lastuse = o.lastuse < t.lastuse ? o.lastuse : t.lastuse;
	t.firstuse = o.firstuse > t.firstuse ? o.firstuse : t.firstuse;
	memcpy(RTA_DATA(to), &t, sizeof(t));
}

/*
 * A filter as the channel describes it (a dump's, a get's, an echo): the
 * kernel's counters are software plus hardware (tcf_exts_hw_stats_update adds
 * the driver's to the actions' own), so each action's TCA_STATS_BASIC gets
 * what the guest kernel's copy counted in software added, and its times the
 * copy's uses.
 */
static void add_own_counters(struct chan *c, struct kept *m)
{
	struct nlmsghdr *h = (struct nlmsghdr *)m->data;
	if (!swcopy_on() || h->nlmsg_type != RTM_NEWTFILTER || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)) || for_own_kernel(h))
		return;
	const struct tcmsg *t = NLMSG_DATA(h);
	struct rtattr *acts = nested(find_attr(TC_ATTRS(h), TC_ATTRLEN(h), TCA_OPTIONS), TCA_FLOWER_ACT);
	if (!t->tcm_handle || t->tcm_ifindex <= 0 || !acts)
		return;
	char buf[OWN_FILTER_REQUEST_SIZE];
	struct own_answer a;
	if (own_kernel_transact(c, own_filter_request(buf, h, RTM_GETTFILTER, t->tcm_handle), 0, &a) < 0)
		return;
	struct nlmsghdr *r = a.filter ? (struct nlmsghdr *)a.filter->data : NULL;
	struct rtattr *own = r ? nested(find_attr(TC_ATTRS(r), TC_ATTRLEN(r), TCA_OPTIONS), TCA_FLOWER_ACT) : NULL;
	int len = (int)RTA_PAYLOAD(acts);
	/* Actions are nested by their order (1, 2, ...) in both. */
	for (struct rtattr *act = RTA_DATA(acts); own && RTA_OK(act, len); act = RTA_NEXT(act, len)) {
		struct rtattr *mine = find_attr(RTA_DATA(own), (int)RTA_PAYLOAD(own), act->rta_type & NLA_TYPE_MASK);
		add_basic(nested(nested(act, TCA_ACT_STATS), TCA_STATS_BASIC), nested(nested(mine, TCA_ACT_STATS), TCA_STATS_BASIC));
		merge_times(act, mine);
	}
	own_answer_free(&a);
}

/* An answer kept for the client to seq (the channel's or its kernel's) is an error. */
static int refused(struct chan *c, uint32_t seq)
{
	for (struct kept *m = c->head; m; m = m->next) {
		struct nlmsgerr *err = error_of(m);
		if (err && err->error && ((struct nlmsghdr *)m->data)->nlmsg_seq == seq)
			return 1;
	}
	return 0;
}

/*
 * One request to the channel, its answers collected: for the client, or, when
 * the channel is only told of what the client's kernel took (a qdisc), dropped
 * (pending as -1: the client has its kernel's answer).
 */
static int ask_channel(int fd, struct nlmsghdr *h, size_t size, int for_client)
{
	struct chan *c = &chans[fd];
	int r = for_client ? expect_answer(c, h) : (h->nlmsg_flags |= NLM_F_ACK, add_pending(c, h->nlmsg_seq, -1));
	if (r < 0 || write_all(fd, (char *)h, size) < 0)
		return -1;
	collect(fd);
	return 0;
}

/* A request the guest's kernel keeps a copy of (swcopy): to the guest's kernel and to the channel. */
static int ask_both(int fd, struct nlmsghdr *h, size_t size)
{
	struct chan *c = &chans[fd];
	struct own_answer a;
	int t = h->nlmsg_type;
	if (t == RTM_GETQDISC)
		return ask_own_kernel(c, h);
	if (t == RTM_NEWQDISC || t == RTM_DELQDISC) {
		/* A qdisc is the guest kernel's to answer for (sch_api.c: EEXIST, ENOENT, a deletion flushing its filters);
		 * vpfd is told of what it took, so that its filters on the representor go with it. */
		if (ask_own_kernel(c, h) < 0)
			return -1;
		return refused(c, h->nlmsg_seq) ? 0 : ask_channel(fd, h, size, 0);
	}
	if (t == RTM_NEWTFILTER && !skips_sw(h)) {
		if (own_kernel_transact(c, h, 1, &a) < 0)
			return -1;
		if (a.error) {
			/* Refused in software: the client gets the guest kernel's error, as it would before any offload,
			 * echoing its request as sent (without the ACK and ECHO added here). */
			if (a.refusal->len >= NLMSG_HDRLEN + sizeof(struct nlmsgerr))
				error_of(a.refusal)->msg.nlmsg_flags = h->nlmsg_flags;
			keep(c, a.refusal);
			a.refusal = NULL;
			own_answer_free(&a);
			return 0;
		}
		own_answer_free(&a);
		struct tcmsg *tm = NLMSG_DATA(h);
		if (!tm->tcm_handle)
			tm->tcm_handle = a.handle;
		if (ask_channel(fd, h, size, 1) < 0)
			return -1;
		if (refused(c, h->nlmsg_seq))
			own_kernel_forget(c, h, tm->tcm_handle);
		return 0;
	}
	if (ask_channel(fd, h, size, 1) < 0)
		return -1;
	/* A skip_sw filter has no copy; the rest (deletions, chains, shared actions) is done in the guest's kernel too. */
	if (t != RTM_NEWTFILTER && own_kernel_transact(c, h, 0, &a) == 0)
		own_answer_free(&a);
	return 0;
}

/* A send with requests for the guest's own kernel (or for both): each request in turn, to where it goes, answered before the next. */
static int send_split(int fd, char *buf, size_t len)
{
	struct chan *c = &chans[fd];
	for (size_t at = 0; at + sizeof(struct nlmsghdr) <= len;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + at);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - at)
			break;
		size_t size = NLMSG_ALIGN(h->nlmsg_len) < len - at ? NLMSG_ALIGN(h->nlmsg_len) : len - at;
		if ((for_own_kernel(h) ? ask_own_kernel(c, h) : swcopy(h) ? ask_both(fd, h, size) : ask_channel(fd, h, size, 1)) < 0)
			return -1;
		at += NLMSG_ALIGN(h->nlmsg_len);
	}
	return 0;
}

/*
 * One send: the messages with nlmsg_pid set to the socket's port id (C1), each
 * request with NLM_F_ACK so that its last answer is known, then its answers
 * read (C3).
 */
static ssize_t send_messages(int fd, const struct iovec *iov, size_t iovlen)
{
	struct chan *c = &chans[fd];
	size_t len = 0, off = 0, was_pending = c->npending;
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
	autobind(c); /* sending on an unbound netlink socket autobinds it */
	int failed = 0, split = 0;
	/* Every message carries the socket's port id (C1); one for the guest's own kernel sends them one by one. */
	for (size_t at = 0; at + sizeof(struct nlmsghdr) <= len;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + at);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - at)
			break;
		h->nlmsg_pid = c->portid;
		split |= for_own_kernel(h) || swcopy(h);
		at += NLMSG_ALIGN(h->nlmsg_len);
	}
	if (split) {
		failed = send_split(fd, buf, len) < 0;
		free(buf);
		return failed ? -1 : (ssize_t)len;
	}
	for (size_t at = 0; !failed && at + sizeof(struct nlmsghdr) <= len;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + at);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - at)
			break;
		failed = expect_answer(c, h) < 0;
		at += NLMSG_ALIGN(h->nlmsg_len);
	}
	if (failed)
		errno = ENOBUFS;
	else
		failed = write_all(fd, buf, len) < 0;
	free(buf);
	if (failed) {
		c->npending = was_pending;
		return -1;
	}
	collect(fd);
	return (ssize_t)len;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	REAL(sendmsg);
	if (!is_ours(fd))
		return real_sendmsg(fd, msg, flags);
	return send_messages(fd, msg->msg_iov, msg->msg_iovlen);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
	REAL(sendto);
	if (!is_ours(fd))
		return real_sendto(fd, buf, len, flags, to, tolen);
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return send_messages(fd, &iov, 1);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	return sendto(fd, buf, len, flags, NULL, 0);
}

/*
 * One netlink message into the iovecs, as a datagram read: the oldest kept
 * answer, else the next message on the stream. The return value is the message
 * size with MSG_TRUNC, else what was copied; *out_flags gets MSG_TRUNC when the
 * buffer was short; without MSG_PEEK the message is gone, even if truncated.
 */
static ssize_t recv_message(int fd, const struct iovec *iov, size_t iovlen, int flags, int *out_flags)
{
	struct chan *c = &chans[fd];
	if (!c->head) {
		struct kept *m;
		ssize_t n = stream_message(fd, flags, &m);
		if (n <= 0)
			return n;
		keep(c, m);
	}
	struct kept *m = c->head;
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
		c->head = m->next;
		if (!c->head)
			c->tail = NULL;
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
