// The offload tier: vpf's translated flows on a real Open vSwitch kernel
// datapath with tc offload (stock Debian kernel under qemu, harness.ts). Per
// frame: (a) it comes out where tc flower would send it, and nowhere else;
// (b) if it meets only offloaded rules (or no rule), a tc-offloaded datapath
// flow (dp:tc) handled its last pass. One VM boot for every set.
import { defaultPortMap } from '../../translator/portmap.js';
import { FRAMES, PACKETS, QFRAMES, SEED, conversationCases, formCases, guestSwitchCases, randomCases } from './cases.js';
import { offloadSuite } from './suite.js';

const ports = defaultPortMap(2);
const RULESETS = Number(process.env.VPF_OFFLOAD_RULESETS ?? 12);
const GUEST_RULESETS = Number(process.env.VPF_OFFLOAD_GUEST_RULESETS ?? 12);

/** The hand-written forms of docs/mapping.md, one set each, on vf0. */
const FORMS: [string, string][] = [
  ['no rules (misses)', ''],
  ['protocol ip, redirect', 'protocol ip flower dst_ip 10.0.0.2 action mirred egress redirect dev vf1'],
  ['protocol all, drop', 'protocol all flower dst_mac 02:00:00:00:00:02 action drop'],
  ['num_of_vlans 0', 'protocol all flower num_of_vlans 0 action mirred egress redirect dev uplink'],
  ['ipv6', 'protocol ipv6 flower ip_proto udp dst_port 80 action mirred egress redirect dev vf1'],
  ['arp', 'protocol arp flower arp_op request action mirred egress redirect dev uplink'],
  ['port range', 'protocol ip flower ip_proto tcp dst_port 70-90 action drop'],
  ['tcp_flags', 'protocol ip flower ip_proto tcp tcp_flags 0x2/0x2 action mirred egress redirect dev vf1'],
  ['ip_tos', 'protocol ip flower ip_tos 0x10/0xfc action mirred egress redirect dev vf1'],
  ['ip_ttl masked', 'protocol ip flower ip_ttl 0x40/0xc0 action mirred egress redirect dev vf1'],
  ['ip_flags nofrag', 'protocol ip flower ip_flags nofrag action mirred egress redirect dev vf1'],
  ['mirror + redirect', 'protocol ip flower action mirred egress mirror dev vf1 action mirred egress redirect dev uplink'],
  ['mirred ingress', 'protocol ip flower action mirred ingress redirect dev vf1'],
  ['pass (slow path)', 'protocol ip flower action pass'],
  ['goto chain', 'protocol ip flower action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto udp action mirred egress redirect dev vf1'],
  ['vlan push', 'protocol ip flower action vlan push id 7 priority 3 action mirred egress redirect dev uplink'],
  ['pedit', 'protocol ip flower action pedit ex munge ip dst set 10.9.9.9 munge eth src set 02:00:00:00:00:99 pipe action mirred egress redirect dev vf1'],
  ['ttl dec', 'protocol ip flower action pedit ex munge ip ttl dec pipe action mirred egress redirect dev vf1'],
  ['csum', 'protocol ip flower action csum ip4h pipe action mirred egress redirect dev vf1'],
  ['police', 'protocol ip flower action police rate 8mbit burst 100k conform-exceed drop/pipe action mirred egress redirect dev vf1'],
  // A mark nothing reads is left out (offloaded); before a mirred ingress it would be seen, so that rule is trapped.
  ['skbedit mark', 'protocol ip flower action skbedit mark 5/0xff action mirred egress redirect dev vf1'],
  ['skbedit mark, then mirred ingress', 'protocol ip flower action skbedit mark 5/0xff action mirred ingress redirect dev vf1'],
  ['sample', 'protocol ip flower action sample rate 10 group 5 action mirred egress redirect dev vf1'],
  ['ct clear', 'protocol ip flower action ct clear pipe action mirred egress redirect dev vf1'],
  // ct in place, no recirculation: the datapath NATs the frame its outputs carry (docs/mapping.md, ct nat without goto).
  ['ct commit nat without goto', 'protocol ip flower ip_proto udp action ct commit zone 5 nat src addr 10.9.9.9 pipe action mirred egress redirect dev vf1'],
  // TCP too (its frames carry a real checksum: conntrack takes a bad one as invalid and NATs nothing).
  ['ct commit nat dst with a port, tcp', 'protocol ip flower ip_proto tcp action ct commit zone 5 nat dst addr 10.8.8.8 port 80 pipe action mirred egress redirect dev vf1'],
  ['ct commit nat src, tcp', 'protocol ip flower ip_proto tcp action ct commit zone 9 nat src addr 10.9.9.9 pipe action mirred egress redirect dev vf1'],
  ['ct commit mark, then output', 'protocol ip flower ip_proto tcp action ct commit zone 6 mark 7 pipe action mirred egress redirect dev vf1'],
  // What a guest OVS emits (issue 11): masked rewrites, VLAN rewrites on protocol all, shared policers.
  ['pedit tos retain (DSCP only)', 'protocol ip flower action pedit ex munge ip tos set 0x28 retain 0xfc pipe action mirred egress redirect dev vf1'],
  ['pedit tos and ttl, part of DSCP, ECN and ttl', 'protocol ip flower action pedit ex munge ip tos set 0x21 retain 0x31 munge ip ttl set 5 retain 0xf pipe action mirred egress redirect dev vf1'],
  ['continue, then the next prio', 'protocol ip flower ip_proto udp action continue\ndev vf0 ingress prio 2 protocol ip flower action mirred egress redirect dev vf1'],
  ['pedit port retain', 'protocol ip flower ip_proto udp action pedit ex munge udp dport set 0x1234 retain 0xff00 pipe action mirred egress redirect dev vf1'],
  ['rewrite pinned, goto, miss restored', 'protocol ip flower dst_ip 10.0.0.2 action pedit ex munge ip dst set 10.9.9.9 pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action mirred egress redirect dev vf1'],
  // Unpinned fields are saved in registers (move:) and moved back: the frames that miss chain 1 leave unrewritten.
  ['rewrite unpinned, goto, miss restored', 'protocol ip flower action pedit ex munge ip dst set 10.9.9.9 munge ip tos set 0x28 retain 0xfc pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action mirred egress redirect dev vf1'],
  // A MAC does not fit a register: its low 32 bits go in one, its high 16 in a quarter of metadata (OpenFlow-only too).
  ['MACs unpinned, goto, miss restored', 'protocol all flower action pedit ex munge eth dst set 0a:bb:00:00:00:09 munge eth src set 0e:cc:00:00:00:0a pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action mirred egress redirect dev vf1'],
  ['port and ttl unpinned, goto, miss restored', 'protocol ip flower ip_proto udp action pedit ex munge udp dport set 4789 munge ip ttl dec pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto udp src_port 2000 action drop'],
  // A copy before a goto is deferred: sent with chain 1's redirect (udp), never before the hand-off of a miss.
  ['mirror, goto: the copy where the path ends in hardware', 'protocol ip flower action mirred egress mirror dev uplink pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto udp action mirred egress redirect dev vf1'],
  // One tag of either TPID, on a VM that declares none; the 802.1ad+802.1Q frame is trapped.
  ['protocol all, num_of_vlans 1', 'protocol all flower num_of_vlans 1 action mirred egress redirect dev vf1'],
  // A port rewrite without ip_proto: that protocol's frames rewritten in tc, the filter's others trapped.
  ['tcp port rewrite without ip_proto', 'protocol ip flower action pedit ex munge tcp dport set 8080 pipe action mirred egress redirect dev vf1'],
  ['udp port rewrite without ip_proto, IPv6 (nw_frag=not_later)', 'protocol ipv6 flower action pedit ex munge udp sport set 53 pipe action mirred egress redirect dev vf1'],
  ['vlan pop on protocol all', 'protocol all flower action vlan pop pipe action mirred egress redirect dev vf1'],
  ['vlan modify on protocol all', 'protocol all flower action vlan modify id 9 pipe action mirred egress redirect dev vf1'],
  ['police after a rewrite', 'protocol ip flower action pedit ex munge ip tos set 0x28 retain 0xfc pipe action police rate 8mbit burst 100k index 8 conform-exceed drop/pipe action mirred egress redirect dev vf1'],
  // Every frame dropped, conforming or not: a meter-only flow, which OVS 3.1 leaves unfinished in tc (trapped).
  ['police, then drop', 'protocol ip flower action police rate 8mbit burst 100k conform-exceed drop/pipe action drop'],
  ['shared police index', 'protocol ip flower action police rate 8mbit burst 100k index 7 conform-exceed drop/pipe action mirred egress redirect dev vf1'],
];

/** Forms on a VM declaring outer TPID 802.1Q: its frames are untagged, 802.1Q, or 802.1Q over another tag. */
const DECLARED_FORMS: [string, string][] = [
  ['declared 802.1Q: vlan_id', 'protocol 802.1Q flower vlan_id 5 action mirred egress redirect dev vf1'],
  ['declared 802.1Q: vlan_id, vlan_prio, vlan_ethtype ip, dst_ip', 'protocol 802.1Q flower vlan_id 5 vlan_prio 3 vlan_ethtype ip dst_ip 10.0.0.2 action mirred egress redirect dev vf1'],
  ['declared 802.1Q: inner 802.1Q tag (vlan_ethtype 802.1Q)', 'protocol 802.1Q flower vlan_ethtype 802.1Q action drop'],
  ['declared 802.1Q: any tag, pop and redirect', 'protocol 802.1Q flower action vlan pop pipe action mirred egress redirect dev vf1'],
  // OVN's localnet shape without its ct (no recirculation offload on this kernel): a pinned tag popped, then a chain that misses for udp.
  ['declared 802.1Q: pinned tag popped, goto, miss puts it back', 'protocol 802.1Q flower vlan_id 5 vlan_prio 3 vlan_ethtype ip action vlan pop pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action mirred egress redirect dev vf1'],
  ['declared 802.1Q: vlan push, goto, miss pops it', 'protocol ip flower action vlan push id 9 pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol 802.1Q flower vlan_ethtype ip ip_proto tcp action drop'],
];

offloadSuite({
  title: 'offload tier: translated flows on OVS tc offload (kernel datapath, skip_hw), stock kernel',
  flavor: 'stock',
  ports,
  kinds: [
    { prefix: 'form', label: 'forms' },
    { prefix: 'random', label: `random (seed ${SEED})` },
    { prefix: 'guest-switch', label: `guest-switch (seed ${SEED + 2}, ${SEED + 3})` },
  ],
  cases: () => [
    ...formCases(FORMS, FRAMES),
    ...formCases(DECLARED_FORMS, QFRAMES, 0x8100),
    // Real conntrack across a request and its reply, in the kernel datapath here (recirculation).
    ...conversationCases(),
    ...randomCases(RULESETS, SEED),
    ...guestSwitchCases(GUEST_RULESETS, SEED + 2),
  ],
  figures: (share) => [
    share((n) => n.startsWith('guest-switch')).line(`offload guest-switch, ${GUEST_RULESETS} sets x ${PACKETS} frames, on dp:tc`),
    // The same apart: a VM that declares its outer TPID gets its VLAN filters offloaded (docs/mapping.md).
    share((n) => n.startsWith('guest-switch declared')).line('  of which on a VM declaring outer TPID 802.1Q'),
    share((n) => n.startsWith('guest-switch') && !n.startsWith('guest-switch declared')).line('  of which on VMs declaring none'),
  ],
  rerun: `VPF_SEED=${SEED}`,
});
