// The offload tier on the kernel that can offload recirculation: Debian's
// kernel source and config with CONFIG_NET_TC_SKB_EXT=y (scripts/kernelvm/
// skbext.sh). On the stock kernel OVS puts no flow with a recirc_id into tc,
// so everything after a `ct ... goto chain` ran in the kernel datapath; here
// every such frame must be handled by dp:tc, conntrack included, and come out
// where flower sends it, with the conntrack answer of a real kernel (the probe
// empties the table before each send; rules/classify/conntrack.ts).
import { defaultPortMap } from '../../translator/portmap.js';
import type { Packet } from '../../rules/packet.js';
import { arp, conversationCases, formCases, goto1, guestSwitchCases, icmp, icmp6, PACKETS, QFRAMES, randomCases, SEED, tcp, udp, v6 } from './cases.js';
import { offloadSuite } from './suite.js';

const ports = defaultPortMap(2);
const GUEST_RULESETS = Number(process.env.VPF_RECIRC_GUEST_RULESETS ?? 15);
const RULESETS = Number(process.env.VPF_RECIRC_RULESETS ?? 6);

// First packets conntrack takes (a TCP SYN, a bare ACK picking a connection up, UDP, ICMP echo requests) and ones it
// takes as invalid (a SYN+ACK or a FIN+ACK with no connection, an ICMPv6 echo reply), each untagged and 802.1Q.
const CT_FRAMES: Packet[] = [tcp, { ...tcp, tcpFlags: 0x10 }, { ...tcp, tcpFlags: 0x12 }, { ...tcp, tcpFlags: 0x11 }, udp, icmp, v6, icmp6(128), icmp6(129), arp].flatMap((p) => [
  p,
  { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp: 3 }] },
]);

/** What OVS's tc offload and hand-written tc put around conntrack: ct, then goto a chain that reads its state. */
const CT_FORMS: [string, string][] = [
  ['ct, goto, +trk+new redirected, +inv dropped',
    'protocol ip flower action ct zone 3 pipe action goto chain 1' +
      goto1('protocol ip flower ct_state +trk+new action mirred egress redirect dev vf1') +
      '\ndev vf0 ingress chain 1 prio 2 protocol ip flower ct_state +trk+inv action drop'],
  ['ct, goto, chain 1 commits then redirects (a firewall)',
    'protocol ip flower ip_proto tcp action ct zone 3 pipe action goto chain 1' +
      goto1('protocol ip flower ct_state +trk+new action ct commit zone 3 pipe action mirred egress redirect dev uplink')],
  ['ct commit mark, goto, chain 1 matches the mark',
    'protocol ip flower action ct commit zone 5 mark 7 pipe action goto chain 1' +
      goto1('protocol ip flower ct_mark 7 action mirred egress redirect dev vf1')],
  ['ct commit label, goto, chain 1 matches the label',
    'protocol ip flower action ct commit zone 5 label 10 pipe action goto chain 1' +
      goto1('protocol ip flower ct_label 10/ff action mirred egress redirect dev vf1')],
  // A NAT cannot be undone before a possible miss in chain 1: trapped, exact in software (docs/mapping.md, misses).
  ['ct commit nat src, goto: trapped',
    'protocol ip flower ip_proto udp action ct commit zone 6 nat src addr 10.9.9.9 pipe action goto chain 1' +
      goto1('protocol ip flower src_ip 10.9.9.9 action mirred egress redirect dev vf1')],
  ['ct nat (restore), goto',
    'protocol ip flower action ct zone 7 nat pipe action goto chain 1' +
      goto1('protocol ip flower ct_state +trk action mirred egress redirect dev vf1')],
  ['ct, goto, chain 1 misses: handed off untouched',
    'protocol ip flower action ct zone 8 pipe action goto chain 1' +
      goto1('protocol ip flower ip_proto tcp ct_state +trk+new action mirred egress redirect dev vf1')],
  ['ipv6: ct, goto, +trk+new redirected',
    'protocol ipv6 flower action ct zone 4 pipe action goto chain 1' +
      goto1('protocol ipv6 flower ct_state +trk+new action mirred egress redirect dev vf1')],
  ['rewrite pinned, ct, goto',
    'protocol ip flower dst_ip 10.0.0.2 action pedit ex munge ip dst set 10.0.0.9 pipe action ct zone 9 pipe action goto chain 1' +
      goto1('protocol ip flower dst_ip 10.0.0.9 ct_state +trk+new action mirred egress redirect dev vf1')],
  ['ct clear after a ct, goto',
    'protocol ip flower action ct zone 3 pipe action goto chain 1' +
      goto1('protocol ip flower ct_state +trk action ct clear pipe action mirred egress redirect dev vf1')],
];

/** OVN's localnet port on a VLAN provider network: the declared tag comes off, then conntrack for the ACLs. */
const DECLARED_CT_FORMS: [string, string][] = [
  ['declared 802.1Q: pop, ct, goto (OVN localnet)',
    'protocol 802.1Q flower vlan_id 5 vlan_prio 3 vlan_ethtype ip action vlan pop pipe action ct zone 64000 pipe action goto chain 1' +
      goto1('protocol ip flower ct_state +trk+new action mirred egress redirect dev vf1')],
];

offloadSuite({
  title: 'offload tier: recirculation (ct then goto) on OVS tc offload, kernel with CONFIG_NET_TC_SKB_EXT',
  flavor: 'skbext',
  ports,
  kinds: [
    { prefix: 'form', label: 'ct forms' },
    { prefix: 'random', label: `random (seed ${SEED + 10})` },
    { prefix: 'guest-switch', label: `guest-switch (seed ${SEED + 12}, ${SEED + 13})` },
  ],
  cases: () => [
    ...formCases(CT_FORMS, CT_FRAMES),
    ...formCases(DECLARED_CT_FORMS, QFRAMES, 0x8100),
    ...conversationCases(),
    ...randomCases(RULESETS, SEED + 10),
    ...guestSwitchCases(GUEST_RULESETS, SEED + 12),
  ],
  figures: (share) => [
    share((n) => n.startsWith('guest-switch')).line(`offload guest-switch with recirculation, ${GUEST_RULESETS} sets x ${PACKETS} frames, on dp:tc`),
    share((n) => n.startsWith('guest-switch declared')).line('  of which on a VM declaring outer TPID 802.1Q'),
    share((n) => n.startsWith('guest-switch') && !n.startsWith('guest-switch declared')).line('  of which on VMs declaring none'),
  ],
  rerun: `VPF_SEED=${SEED}`,
});
