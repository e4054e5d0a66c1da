// The offload tier on the kernel that can offload recirculation: Debian's
// kernel source and config with CONFIG_NET_TC_SKB_EXT=y (scripts/kernelvm/
// skbext.sh). On the stock kernel OVS puts no flow with a recirc_id into tc,
// so everything after a `ct ... goto chain` ran in the kernel datapath; here
// every such frame must be handled by dp:tc, conntrack included, and come out
// where flower sends it, with the conntrack answer of a real kernel (the probe
// empties the table before each send; rules/classify/conntrack.ts).
import { defaultPortMap } from '../../translator/portmap.js';
import type { Packet } from '../../rules/packet.js';
import { base, formCases, guestSwitchCases, PACKETS, QFRAMES, randomCases, SEED, tcp, udp, v6, arp } from './cases.js';
import type { Case } from './check.js';
import { offloadSuite } from './suite.js';

const ports = defaultPortMap(2);
const GUEST_RULESETS = Number(process.env.VPF_RECIRC_GUEST_RULESETS ?? 15);
const RULESETS = Number(process.env.VPF_RECIRC_RULESETS ?? 6);

// First packets conntrack takes (a TCP SYN, a bare ACK picking a connection up, UDP, ICMP echo requests) and ones it
// takes as invalid (a SYN+ACK or a FIN+ACK with no connection, an ICMPv6 echo reply), each untagged and 802.1Q.
const icmp: Packet = { ...base, ethType: 0x0800, ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 1, tos: 0, ttl: 64, frag: 'no' }, icmp: { type: 8, code: 0 } };
const icmp6 = (type: number): Packet => ({ ...base, ethType: 0x86dd, ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: 58, tos: 0, ttl: 64, frag: 'no' }, icmp: { type, code: 0 } });
const CT_FRAMES: Packet[] = [tcp, { ...tcp, tcpFlags: 0x10 }, { ...tcp, tcpFlags: 0x12 }, { ...tcp, tcpFlags: 0x11 }, udp, icmp, v6, icmp6(128), icmp6(129), arp].flatMap((p) => [
  p,
  { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp: 3 }] },
]);

const goto1 = (chain1: string) => `\ndev vf0 ingress chain 1 prio 1 ${chain1}`;
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

/** The reply to p: addresses and ports swapped, from vf1, an echo request answered. */
const replyTo = (p: Packet): Packet => ({
  ...p,
  inDev: 'vf1',
  srcMac: p.dstMac,
  dstMac: p.srcMac,
  ...(p.ip ? { ip: { ...p.ip, src: p.ip.dst, dst: p.ip.src } } : {}),
  ...(p.l4 ? { l4: { src: p.l4.dst, dst: p.l4.src } } : {}),
  ...(p.icmp ? { icmp: { type: p.icmp.type === 8 ? 0 : 129, code: 0 } } : {}),
});
/**
 * Conversations: a request, its reply (conntrack kept: +est+rpl), the request again (+est), each untagged and
 * 802.1Q; UDP and ICMP echo, whose conntrack state is their direction alone (rules/classify/conntrack.ts).
 */
const CONVERSATIONS = [udp, icmp, v6, icmp6(128)].flatMap((p) => [p, { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp: 3 }] }]);
/** Both representors' ACLs in one zone, as OVN's: a new connection is committed with a mark, its replies and the rest of it pass on the mark. */
const aclOn = (proto: string, zone: number, commit: string, seen: string) =>
  `protocol ${proto} flower action ct zone ${zone} pipe action goto chain 1` +
  goto1(`protocol ${proto} flower ct_state +trk+new action ct commit zone ${zone} ${commit} pipe action mirred egress redirect dev vf1`) +
  `\ndev vf0 ingress chain 1 prio 2 protocol ${proto} flower ct_state +trk+est-rpl ${seen} action mirred egress redirect dev uplink` +
  `\ndev vf1 ingress prio 1 protocol ${proto} flower action ct zone ${zone} pipe action goto chain 1` +
  `\ndev vf1 ingress chain 1 prio 1 protocol ${proto} flower ct_state +trk+est+rpl ${seen} action mirred egress redirect dev vf0` +
  `\ndev vf1 ingress chain 1 prio 2 protocol ${proto} flower action drop`;
const STATEFUL_FORMS: [string, string][] = [
  ['conversation, ipv4: commit with a mark, reply +est+rpl, then +est', aclOn('ip', 3, 'mark 9', 'ct_mark 9')],
  ['conversation, ipv4: commit with a label', aclOn('ip', 4, 'label 10', 'ct_label 10/ff')],
  ['conversation, ipv6: commit with a mark', aclOn('ipv6', 5, 'mark 9', 'ct_mark 9')],
];
/**
 * NAT bindings (OVN's load balancer and SNAT): the request from vf0 is committed with a NAT, its reply comes from
 * vf1 to the NATed side, a bare `ct nat` puts it back (+est+rpl), and the request again gets the same binding.
 */
const natTo = (p: Packet, side: 'src' | 'dst', addr: string, port: number): Packet => ({ ...p, ip: { ...p.ip!, [side]: addr }, l4: { ...p.l4!, [side]: port } });
const NAT_FORMS: [string, string, Packet][] = [
  ['conversation through a DNAT (a load balancer): the reply un-NATed by ct nat',
    'protocol ip flower ip_proto udp action ct commit zone 6 nat dst addr 10.0.0.9 port 6000 pipe action mirred egress redirect dev vf1' +
      '\ndev vf1 ingress prio 1 protocol ip flower ip_proto udp action ct zone 6 nat pipe action goto chain 1' +
      '\ndev vf1 ingress chain 1 prio 1 protocol ip flower ct_state +trk+est+rpl action mirred egress redirect dev vf0' +
      '\ndev vf1 ingress chain 1 prio 2 protocol ip flower action drop',
    replyTo(natTo(udp, 'dst', '10.0.0.9', 6000))],
  ['conversation through a SNAT: the reply un-NATed by ct nat',
    'protocol ip flower ip_proto udp action ct commit zone 7 nat src addr 10.9.9.9 port 4000 pipe action mirred egress redirect dev vf1' +
      '\ndev vf1 ingress prio 1 protocol ip flower ip_proto udp action ct zone 7 nat pipe action goto chain 1' +
      '\ndev vf1 ingress chain 1 prio 1 protocol ip flower ct_state +trk+est+rpl action mirred egress redirect dev vf0' +
      '\ndev vf1 ingress chain 1 prio 2 protocol ip flower action drop',
    replyTo(natTo(udp, 'src', '10.9.9.9', 4000))],
];
function conversationCases(): Case[] {
  const plain = formCases(STATEFUL_FORMS, []).map((c) => {
    const proto = c.rules[0]!.protocol;
    const talks = CONVERSATIONS.filter((p) => p.ethType === proto);
    return { ...c, packets: talks.flatMap((p) => [p, replyTo(p), p]), keepCt: talks.flatMap(() => [false, true, true]) };
  });
  const nat = NAT_FORMS.map(([name, text, reply]) => ({ ...formCases([[name, text]], [])[0]!, packets: [udp, reply, udp], keepCt: [false, true, true] }));
  return [...plain, ...nat];
}

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
