/*
 * probe: sends frames into an Open vSwitch bridge (kernel datapath, tc
 * offload with tc-policy=skip_hw) through the veth peers of its ports and
 * tells, per send, which part of the datapath handled it and what came out.
 *
 *   probe --listen NAME=PEER,... [--passes N] [--flush-ct] [--settle MS]
 *         [--upcall-settle MS] [--upcall-wait MS] < lines "INPEER HEX"
 *
 * --flush-ct empties the conntrack table before each send, so that every send
 * of a frame is a new connection's first packet; a frame line ending in
 * "keep" is sent with the table as the frames before it left it (a reply
 * after its request).
 *
 * Per frame and pass it prints
 *   P <frame> <pass>     a send begins (then R lines as frames come out)
 *   S hit=<n> missed=<n> lost=<n>   ovs_dp_stats deltas of that send
 *   T <ufid> <packets>   an OVS tc flower filter on INPEER's port counted it
 *                        (OVS sets the flow's ufid as the action cookie,
 *                        lib/netdev-offload-tc.c)
 *   K <ufid> <packets>   a kernel datapath flow counted it
 *   R <name> <hex>       the frame came out of port NAME (its peer received
 *                        it; a VLAN tag the stack kept in metadata is put back)
 * With tc-policy=skip_hw a frame a tc filter handles never reaches the kernel
 * datapath; a miss goes up to ovs-vswitchd, which installs a flow (tc or
 * kernel) and executes the packet later: the probe waits for a new flow and
 * then for --upcall-settle ms of quiet (at most --upcall-wait ms), since the
 * handler's execute, coming after its flow put, lands late on a loaded host.
 * Other sends wait for a counter to move, then for --settle ms of quiet.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/gen_stats.h>
#include <linux/genetlink.h>
#include <linux/if_packet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/openvswitch.h>
#include <linux/pkt_cls.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXP 64
#define MAXF 4096

static char buf[1 << 16];

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static struct nlattr *attr_find(void *p, int len, int type)
{
	for (struct nlattr *a = p; len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= len;
	     len -= NLA_ALIGN(a->nla_len), a = (void *)((char *)a + NLA_ALIGN(a->nla_len)))
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
	return NULL;
}
#define ADATA(a) ((void *)((char *)(a) + NLA_HDRLEN))
#define ALEN(a) ((int)(a)->nla_len - NLA_HDRLEN)

/* OVS prints a ufid (ovs_u128: four native-endian u32) like a UUID. */
static void ufid_str(const void *p, int len, char *out)
{
	uint32_t u[4];
	if (len != 16) {
		strcpy(out, "-");
		return;
	}
	memcpy(u, p, 16);
	sprintf(out, "%08x-%04x-%04x-%04x-%04x%08x", u[0], u[1] >> 16, u[1] & 0xffff, u[2] >> 16,
		u[2] & 0xffff, u[3]);
}

/* a counted thing: a tc filter or a kernel flow, keyed by ufid */
struct ctr {
	char id[40];
	long long pk;
};
struct snap {
	int n;
	struct ctr c[MAXF];
};

static long long snap_get(const struct snap *s, const char *id)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->c[i].id, id))
			return s->c[i].pk;
	return 0;
}

static void snap_add(struct snap *s, const char *id, long long pk)
{
	if (s->n < MAXF) {
		snprintf(s->c[s->n].id, sizeof(s->c[s->n].id), "%s", id);
		s->c[s->n++].pk = pk;
	}
}

/* One request, replies handed to cb until DONE/ERROR (or the ack). */
static int nl_talk(int fd, struct nlmsghdr *req, void (*cb)(struct nlmsghdr *, void *), void *arg)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	static uint32_t seq;
	req->nlmsg_seq = ++seq;
	if (sendto(fd, req, req->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0)
			return -errno;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != req->nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			cb(h, arg);
			if (!(h->nlmsg_flags & NLM_F_MULTI))
				return 0;
		}
	}
}

struct req {
	struct nlmsghdr h;
	char body[1024];
};

static void put_attr(struct req *r, int type, const void *d, int len)
{
	struct nlattr *a = (void *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy(ADATA(a), d, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* ---------------------------------------------------------------- tc */
static int rtfd;

static void tc_cb(struct nlmsghdr *h, void *arg)
{
	struct tcmsg *t = NLMSG_DATA(h);
	int len = h->nlmsg_len - NLMSG_SPACE(sizeof(*t));
	struct nlattr *opts, *acts, *stats, *basic, *ck;
	char id[40] = "-";
	long long pk = -1;
	if (h->nlmsg_type != RTM_NEWTFILTER || !t->tcm_handle)
		return;
	opts = attr_find((char *)t + NLMSG_ALIGN(sizeof(*t)), len, TCA_OPTIONS);
	acts = opts ? attr_find(ADATA(opts), ALEN(opts), TCA_FLOWER_ACT) : NULL;
	if (!acts)
		return;
	/* actions are nested at 1..n; the first one counts every packet the filter took */
	for (int i = 1; i < 32; i++) {
		struct nlattr *a = attr_find(ADATA(acts), ALEN(acts), i);
		if (!a)
			break;
		ck = attr_find(ADATA(a), ALEN(a), TCA_ACT_COOKIE);
		if (ck && !strcmp(id, "-"))
			ufid_str(ADATA(ck), ALEN(ck), id);
		stats = attr_find(ADATA(a), ALEN(a), TCA_ACT_STATS);
		basic = stats ? attr_find(ADATA(stats), ALEN(stats), TCA_STATS_BASIC) : NULL;
		if (basic && pk < 0) {
			struct gnet_stats_basic { uint64_t bytes; uint32_t packets; } __attribute__((packed)) b;
			memcpy(&b, ADATA(basic), sizeof(b));
			pk = b.packets;
		}
	}
	if (!strcmp(id, "-"))
		sprintf(id, "tc:%u:%x", TC_H_MAJ(t->tcm_info) >> 16, t->tcm_handle);
	snap_add(arg, id, pk < 0 ? 0 : pk);
}

static void tc_snap(int ifindex, struct snap *s)
{
	struct req r = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg)), .nlmsg_type = RTM_GETTFILTER,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	struct tcmsg *t = NLMSG_DATA(&r.h);
	t->tcm_family = AF_UNSPEC;
	t->tcm_ifindex = ifindex;
	t->tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
	s->n = 0;
	nl_talk(rtfd, &r.h, tc_cb, s);
}

/* ---------------------------------------------------------------- genetlink */
/*
 * Forgets every conntrack entry, all zones and families (ctnetlink_del_conntrack
 * with no tuple and AF_UNSPEC flushes the table): each send then meets
 * conntrack as a new connection, as the reference classifier models it.
 */
static int nffd;
static void ignore_cb(struct nlmsghdr *h, void *arg)
{
	(void)h;
	(void)arg;
}
static int ct_flush(void)
{
	struct req r = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg)),
				.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK } };
	struct nfgenmsg *g = NLMSG_DATA(&r.h);
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	return nl_talk(nffd, &r.h, ignore_cb, NULL);
}

static int gfd, fam_dp, fam_flow, dp_ifindex;

static void fam_cb(struct nlmsghdr *h, void *arg)
{
	struct nlattr *id = attr_find((char *)NLMSG_DATA(h) + GENL_HDRLEN, h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
				      CTRL_ATTR_FAMILY_ID);
	if (id)
		*(int *)arg = *(uint16_t *)ADATA(id);
}

static void genl_req(struct req *r, int fam, int cmd, int flags)
{
	memset(r, 0, sizeof(*r));
	r->h.nlmsg_type = fam;
	r->h.nlmsg_flags = NLM_F_REQUEST | flags;
	r->h.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	((struct genlmsghdr *)NLMSG_DATA(&r->h))->cmd = cmd;
	((struct genlmsghdr *)NLMSG_DATA(&r->h))->version = fam == GENL_ID_CTRL ? 1 : OVS_DATAPATH_VERSION;
}

static int family(const char *name)
{
	struct req r;
	int id = -1;
	genl_req(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	put_attr(&r, CTRL_ATTR_FAMILY_NAME, name, strlen(name) + 1);
	nl_talk(gfd, &r.h, fam_cb, &id);
	return id;
}

static void ovs_req(struct req *r, int fam, int cmd, int flags)
{
	struct ovs_header oh = { .dp_ifindex = dp_ifindex };
	genl_req(r, fam, cmd, flags);
	memcpy((char *)r + r->h.nlmsg_len, &oh, sizeof(oh));
	r->h.nlmsg_len += sizeof(oh);
}

static void *ovs_attrs(struct nlmsghdr *h, int *len)
{
	*len = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN + sizeof(struct ovs_header));
	return (char *)NLMSG_DATA(h) + GENL_HDRLEN + sizeof(struct ovs_header);
}

static void dp_cb(struct nlmsghdr *h, void *arg)
{
	int len;
	void *p = ovs_attrs(h, &len);
	struct nlattr *st = attr_find(p, len, OVS_DP_ATTR_STATS);
	dp_ifindex = ((struct ovs_header *)((char *)NLMSG_DATA(h) + GENL_HDRLEN))->dp_ifindex;
	if (st)
		memcpy(arg, ADATA(st), sizeof(struct ovs_dp_stats));
}

static void dp_stats(struct ovs_dp_stats *s)
{
	struct req r;
	memset(s, 0, sizeof(*s));
	ovs_req(&r, fam_dp, OVS_DP_CMD_GET, 0);
	put_attr(&r, OVS_DP_ATTR_NAME, "ovs-system", sizeof("ovs-system"));
	nl_talk(gfd, &r.h, dp_cb, s);
}

static void flow_cb(struct nlmsghdr *h, void *arg)
{
	int len;
	void *p = ovs_attrs(h, &len);
	struct nlattr *u = attr_find(p, len, OVS_FLOW_ATTR_UFID), *st = attr_find(p, len, OVS_FLOW_ATTR_STATS);
	struct ovs_flow_stats fs = { 0, 0 };
	char id[40];
	ufid_str(u ? ADATA(u) : NULL, u ? ALEN(u) : 0, id);
	if (st)
		memcpy(&fs, ADATA(st), sizeof(fs));
	snap_add(arg, id, (long long)fs.n_packets);
}

static void flow_snap(struct snap *s)
{
	struct req r;
	uint32_t omit = OVS_UFID_F_OMIT_KEY | OVS_UFID_F_OMIT_MASK | OVS_UFID_F_OMIT_ACTIONS;
	s->n = 0;
	ovs_req(&r, fam_flow, OVS_FLOW_CMD_GET, NLM_F_DUMP);
	put_attr(&r, OVS_FLOW_ATTR_UFID_FLAGS, &omit, sizeof(omit));
	nl_talk(gfd, &r.h, flow_cb, s);
}

/* ---------------------------------------------------------------- frames */
struct port {
	char name[32], peer[32];
	int ifindex, peer_ifindex, rx;
};
static struct port ports[MAXP];
static int nports;

static void drain(int report)
{
	for (int i = 0; i < nports; i++) {
		for (;;) {
			unsigned char f[10000], out[10004];
			char cbuf[256], hex[2 * sizeof(out) + 1];
			struct sockaddr_ll from;
			struct iovec iov = { f, sizeof(f) };
			struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
					    .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
			ssize_t n = recvmsg(ports[i].rx, &m, MSG_DONTWAIT);
			int len;
			if (n < 0)
				break;
			if (!report || from.sll_pkttype == PACKET_OUTGOING)
				continue;
			len = (int)n;
			memcpy(out, f, len);
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
				struct tpacket_auxdata *a = (void *)CMSG_DATA(c);
				if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA ||
				    !(a->tp_status & TP_STATUS_VLAN_VALID) || len < 12)
					continue;
				uint16_t tpid = htons(a->tp_status & TP_STATUS_VLAN_TPID_VALID ? a->tp_vlan_tpid : 0x8100);
				uint16_t tci = htons(a->tp_vlan_tci);
				memmove(out + 16, f + 12, len - 12);
				memcpy(out + 12, &tpid, 2);
				memcpy(out + 14, &tci, 2);
				len += 4;
			}
			for (int k = 0; k < len; k++)
				sprintf(hex + 2 * k, "%02x", out[k]);
			hex[2 * len] = 0;
			printf("R %s %s\n", ports[i].name, hex);
		}
	}
}

/* waits ms for any frame on any port; 1 if one came */
static int wait_rx(double ms)
{
	struct pollfd p[MAXP];
	for (int i = 0; i < nports; i++)
		p[i] = (struct pollfd){ .fd = ports[i].rx, .events = POLLIN };
	return poll(p, nports, ms < 1 ? 1 : (int)ms) > 0;
}

/* 1 if a counter in b grew since a */
static int snap_moved(const struct snap *a, const struct snap *b)
{
	for (int i = 0; i < b->n; i++)
		if (b->c[i].pk > snap_get(a, b->c[i].id))
			return 1;
	return 0;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int count_flows(int ifindex, struct snap *tc)
{
	struct ovs_dp_stats d;
	dp_stats(&d);
	tc_snap(ifindex, tc);
	return (int)d.n_flows + tc->n;
}

int main(int argc, char **argv)
{
	int passes = 2, flush_ct = 0;
	double settle = 20, upcall_settle = 100, upcall_wait = 1500;
	char line[40000];
	static struct snap tc0, tc1, k0, k1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--passes") && i + 1 < argc)
			passes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--flush-ct"))
			flush_ct = 1;
		else if (!strcmp(argv[i], "--settle") && i + 1 < argc)
			settle = atof(argv[++i]);
		else if (!strcmp(argv[i], "--upcall-settle") && i + 1 < argc)
			upcall_settle = atof(argv[++i]);
		else if (!strcmp(argv[i], "--upcall-wait") && i + 1 < argc)
			upcall_wait = atof(argv[++i]);
		else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			for (char *s = strtok(argv[++i], ","); s && nports < MAXP; s = strtok(NULL, ",")) {
				struct port *p = &ports[nports++];
				sscanf(s, "%31[^=]=%31s", p->name, p->peer);
			}
		} else {
			fprintf(stderr, "usage: probe --listen NAME=PEER,... [--passes N] [--flush-ct] [--settle MS] [--upcall-settle MS] [--upcall-wait MS]\n");
			return 2;
		}
	}
	rtfd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	gfd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	nffd = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	fam_dp = family(OVS_DATAPATH_FAMILY);
	fam_flow = family(OVS_FLOW_FAMILY);
	if (fam_dp < 0 || fam_flow < 0) {
		fprintf(stderr, "probe: no openvswitch genetlink families\n");
		return 1;
	}
	struct ovs_dp_stats d0, d1;
	dp_stats(&d0);
	for (int i = 0; i < nports; i++) {
		struct port *p = &ports[i];
		int on = 1;
		struct sockaddr_ll sa = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
		p->ifindex = if_nametoindex(p->name);
		p->peer_ifindex = if_nametoindex(p->peer);
		p->rx = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
		sa.sll_ifindex = p->peer_ifindex;
		setsockopt(p->rx, SOL_PACKET, PACKET_AUXDATA, &on, sizeof(on));
		if (!p->peer_ifindex || bind(p->rx, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			fprintf(stderr, "probe: port %s peer %s: %s\n", p->name, p->peer, strerror(errno));
			return 1;
		}
	}
	int tx = socket(AF_PACKET, SOCK_RAW, 0);
	for (int frame = 1; fgets(line, sizeof(line), stdin); frame++) {
		char name[32], hex[sizeof(line)], keep[8] = "";
		unsigned char f[sizeof(line) / 2];
		struct port *in = NULL;
		int len = 0;
		if (sscanf(line, "%31s %39999s %7s", name, hex, keep) < 2)
			continue;
		for (int i = 0; i < nports; i++)
			if (!strcmp(ports[i].name, name))
				in = &ports[i];
		for (; hex[2 * len] && hex[2 * len + 1]; len++)
			sscanf(hex + 2 * len, "%2hhx", &f[len]);
		for (int pass = 1; pass <= passes; pass++) {
			struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_halen = 6 };
			int err;
			if (!in) {
				printf("P %d %d\nS error=unknown-port\n", frame, pass);
				continue;
			}
			drain(0);
			printf("P %d %d\n", frame, pass);
			if (flush_ct && strcmp(keep, "keep") && (err = ct_flush()) < 0)
				printf("S error=ct-flush:%s\n", strerror(-err));
			dp_stats(&d0);
			tc_snap(in->ifindex, &tc0);
			flow_snap(&k0);
			int flows0 = (int)d0.n_flows + tc0.n;
			to.sll_ifindex = in->peer_ifindex;
			memcpy(to.sll_addr, f, 6);
			if (sendto(tx, f, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
				printf("S error=%s\n", strerror(errno));
				continue;
			}
			/* sendto only queues the frame on the veth peer's backlog; under TCG on a
			 * loaded host the softirq (or ksoftirqd) may take it later, so wait
			 * until a counter says the datapath handled it (a tc filter, a hit, a
			 * miss or a loss) before judging it. */
			double tq = now_ms();
			for (;;) {
				dp_stats(&d1);
				if (d1.n_hit != d0.n_hit || d1.n_missed != d0.n_missed || d1.n_lost != d0.n_lost)
					break;
				tc_snap(in->ifindex, &tc1);
				if (snap_moved(&tc0, &tc1) || now_ms() - tq >= upcall_wait)
					break;
				nap_ms(1);
			}
			double t0 = now_ms(), quiet = 0, enough = settle;
			if (d1.n_missed > d0.n_missed) {
				enough = upcall_settle;
				/* the upcall: wait for its flow */
				static struct snap tmp;
				while (now_ms() - t0 < upcall_wait && count_flows(in->ifindex, &tmp) <= flows0)
					wait_rx(2);
			}
			/* then for quiet: what comes out can lag the counter when the softirq
			 * work is deferred to ksoftirqd */
			while (now_ms() - t0 < upcall_wait && quiet < enough) {
				double q0 = now_ms();
				quiet = wait_rx(enough - quiet) ? 0 : quiet + now_ms() - q0;
				if (quiet == 0)
					drain(1);
			}
			drain(1);
			dp_stats(&d1);
			tc_snap(in->ifindex, &tc1);
			flow_snap(&k1);
			printf("S hit=%llu missed=%llu lost=%llu\n",
			       (unsigned long long)(d1.n_hit - d0.n_hit), (unsigned long long)(d1.n_missed - d0.n_missed),
			       (unsigned long long)(d1.n_lost - d0.n_lost));
			for (int i = 0; i < tc1.n; i++)
				if (tc1.c[i].pk > snap_get(&tc0, tc1.c[i].id))
					printf("T %s %lld\n", tc1.c[i].id, tc1.c[i].pk - snap_get(&tc0, tc1.c[i].id));
			for (int i = 0; i < k1.n; i++)
				if (k1.c[i].pk > snap_get(&k0, k1.c[i].id))
					printf("K %s %lld\n", k1.c[i].id, k1.c[i].pk - snap_get(&k0, k1.c[i].id));
			fflush(stdout);
		}
	}
	return 0;
}
