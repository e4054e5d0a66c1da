// Dumps RTM_GETCHAIN and RTM_GETTFILTER replies for dev $1 ingress as hex, one message a line (test/corpus/kernelDumps.py runs it in a 6.1 VM).
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
static int dump(int fd, int type, int ifindex, unsigned parent, const char *tag) {
  struct { struct nlmsghdr n; struct tcmsg t; } req;
  memset(&req, 0, sizeof req);
  req.n.nlmsg_len = sizeof req; req.n.nlmsg_type = type;
  req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP; req.n.nlmsg_seq = 1;
  req.t.tcm_family = AF_UNSPEC; req.t.tcm_ifindex = ifindex; req.t.tcm_parent = parent;
  if (send(fd, &req, sizeof req, 0) < 0) { perror("send"); return 1; }
  static char buf[1 << 16];
  for (;;) {
    int n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) { perror("recv"); return 1; }
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      printf("%s ", tag);
      for (unsigned i = 0; i < h->nlmsg_len; i++) printf("%02x", (unsigned char)((char *)h)[i]);
      printf("\n");
      if (h->nlmsg_type == NLMSG_ERROR) return 1;
    }
  }
}
int main(int argc, char **argv) {
  int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  bind(fd, (void *)&sa, sizeof sa);
  int ifi = if_nametoindex(argc > 1 ? argv[1] : "b");
  dump(fd, RTM_GETCHAIN, ifi, 0xfffffff2, "CHAIN");
  dump(fd, RTM_GETTFILTER, ifi, 0xfffffff2, "FILTER");
  return 0;
}
