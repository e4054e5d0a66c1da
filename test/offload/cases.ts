// The offload tier's cases, shared by its suites (offload.test.ts on the
// stock kernel, recirc.test.ts on the one with CONFIG_NET_TC_SKB_EXT): the
// frames the hand-written forms are sent, and the random and guest-switch sets of
// the property test's generators under a fixed seed.
import fc from 'fast-check';
import type { FlowerRule } from '../../rules/model.js';
import type { Packet } from '../../rules/packet.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { arbPacket } from '../gen/packet.js';
import { arbRuleset, DEVS } from '../gen/ruleset.js';
import { arbExtraRuleset } from '../translator/support/rulesets.js';
import { arbGuestSwitchSet } from '../gen/guestswitch.js';
import type { Case } from './check.js';

export const PACKETS = 12;
// A fixed seed by default, so CI judges the same sets every run; VPF_SEED=random (or a number) explores others.
export const SEED = process.env.VPF_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.VPF_SEED ?? 20261202);

export const rule = (line: string): FlowerRule => {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(`${line}: ${r.error.message}`);
  return r.value;
};

/** Untagged, 802.1Q and 802.1ad+802.1Q copies of a packet entering on vf0. */
export const tagged = (p: Packet, pcp = 3): Packet[] => [
  p,
  { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp }] },
  { ...p, vlans: [{ tpid: 0x88a8, vid: 100, pcp }, { tpid: 0x8100, vid: 5, pcp: 0 }] },
];
export const ct0 = { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) };
export const base = { inDev: 'vf0', dstMac: '02:00:00:00:00:02', srcMac: '02:00:00:00:00:01', vlans: [], mark: 0, priority: 0, ct: ct0 };
export const udp: Packet = { ...base, ethType: 0x0800, ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, tos: 0x10, ttl: 64, frag: 'no' }, l4: { src: 1000, dst: 80 } };
export const tcp: Packet = { ...base, ethType: 0x0800, ip: { version: 4, src: '10.0.0.1', dst: '192.168.1.1', proto: 6, tos: 0, ttl: 64, frag: 'no' }, l4: { src: 53, dst: 80 }, tcpFlags: 0x02 };
export const v6: Packet = { ...base, ethType: 0x86dd, ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: 17, tos: 0, ttl: 64, frag: 'no' }, l4: { src: 1000, dst: 80 } };
export const arp: Packet = { ...base, dstMac: 'ff:ff:ff:ff:ff:ff', ethType: 0x0806, arp: { op: 1, sip: '10.0.0.1', tip: '10.0.0.2', sha: '02:00:00:00:00:01', tha: '00:00:00:00:00:00' } };
export const FRAMES = [...tagged(udp), ...tagged(tcp), ...tagged(v6), ...tagged(arp)];

/** Forms on a VM declaring outer TPID 802.1Q: its frames are untagged, 802.1Q, or 802.1Q over another tag. */
export const QFRAMES = [udp, tcp, v6, arp].flatMap((p) => [p, { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp: 3 }] }, { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp: 3 }, { tpid: 0x8100, vid: 7, pcp: 0 }] }]);

/** One set per form (tc filter lines, `dev vf0 ingress prio 1` unless a line starts with `dev`), each sent `frames`. */
export function formCases(forms: [string, string][], frames: Packet[], outerTpid?: number): Case[] {
  const one = (text: string) => (text ? text.split('\n').map((l) => rule(l.startsWith('dev ') ? l : `dev vf0 ingress prio 1 ${l}`)) : []);
  return forms.map(([name, text]) => ({ name: `form: ${name}`, rules: one(text), packets: frames, ...(outerTpid !== undefined ? { outerTpid } : {}) }));
}

/** `n` random sets (frames every fourth double-tagged) and n/2 on a VM declaring 802.1Q. */
export function randomCases(n: number, seed: number): Case[] {
  // The property test's sets: random rules mixed with what guest switches emit (rewrite-then-goto, masked pedit, ...).
  const arb = fc.tuple(arbExtraRuleset(arbRuleset()), fc.array(arbPacket(), { minLength: PACKETS, maxLength: PACKETS }));
  const plain = fc.sample(arb, { seed, numRuns: n }).map(([rules, packets], i) => ({
    name: `random ${i}`,
    rules,
    packets: packets.map((raw, k): Packet => {
      const p: Packet = { ...raw, inDev: DEVS.includes(raw.inDev) ? raw.inDev : 'vf0', ct: ct0 };
      // every fourth frame double-tagged (802.1ad outer, 802.1Q inner)
      return k % 4 === 3 ? { ...p, vlans: [{ tpid: 0x88a8, vid: 100, pcp: 2 }, { tpid: 0x8100, vid: 5, pcp: 0 }] } : p;
    }),
  }));
  // The same kind of sets on a VM declaring outer TPID 802.1Q: its VLAN filters are offloaded too.
  const q = fc.tuple(arbExtraRuleset(arbRuleset()), fc.array(arbPacket({ outerTpid: 0x8100 }), { minLength: PACKETS, maxLength: PACKETS }));
  const declared = fc.sample(q, { seed: seed + 1, numRuns: Math.ceil(n / 2) }).map(([rules, packets], i) => ({
    name: `random declared 802.1Q ${i}`,
    rules,
    outerTpid: 0x8100,
    packets: packets.map((raw): Packet => ({ ...raw, inDev: DEVS.includes(raw.inDev) ? raw.inDev : 'vf0', ct: ct0 })),
  }));
  return [...plain, ...declared];
}

/** Sets a guest OVS's tc offload emits (test/gen/guestswitch.ts): two thirds on an undeclared VM, a third declaring 802.1Q. */
export function guestSwitchCases(n: number, seed: number): Case[] {
  const declared = Math.floor(n / 3);
  const one = (outerTpid: number | undefined, runs: number, s: number) =>
    fc.sample(arbGuestSwitchSet({ packets: PACKETS, ...(outerTpid !== undefined ? { outerTpid } : {}) }), { seed: s, numRuns: runs }).map(({ rules, packets }, i) => ({
      name: `guest-switch${outerTpid !== undefined ? ' declared 802.1Q' : ''} ${i}`,
      rules,
      packets,
      ...(outerTpid !== undefined ? { outerTpid } : {}),
    }));
  return [...one(undefined, n - declared, seed), ...one(0x8100, declared, seed + 1)];
}

/** ICMP echo requests (and other types) from vf0. */
export const icmp: Packet = { ...base, ethType: 0x0800, ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 1, tos: 0, ttl: 64, frag: 'no' }, icmp: { type: 8, code: 0 } };
export const icmp6 = (type: number): Packet => ({ ...base, ethType: 0x86dd, ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: 58, tos: 0, ttl: 64, frag: 'no' }, icmp: { type, code: 0 } });

/** A tc line for chain 1 of vf0. */
export const goto1 = (chain1: string) => `\ndev vf0 ingress chain 1 prio 1 ${chain1}`;

// Conversations (conntrack kept across a request, its reply and the request again): on the stock kernel they
// recirculate in the kernel datapath, on the skbext one in tc; real conntrack either way.
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
/** vf1's side of a conversation: `ct` (with `nat` or not), then chain 1 sends what matches `state` back to vf0 and drops the rest. */
const answersOn = (proto: string, match: string, ct: string, state: string) =>
  `\ndev vf1 ingress prio 1 protocol ${proto} flower ${match ? `${match} ` : ''}action ${ct} pipe action goto chain 1` +
  `\ndev vf1 ingress chain 1 prio 1 protocol ${proto} flower ct_state ${state} action mirred egress redirect dev vf0` +
  `\ndev vf1 ingress chain 1 prio 2 protocol ${proto} flower action drop`;
/** Both representors' ACLs in one zone, as OVN's: a new connection is committed with a mark, its replies and the rest of it pass on the mark. */
const aclOn = (proto: string, zone: number, commit: string, seen: string) =>
  `protocol ${proto} flower action ct zone ${zone} pipe action goto chain 1` +
  goto1(`protocol ${proto} flower ct_state +trk+new action ct commit zone ${zone} ${commit} pipe action mirred egress redirect dev vf1`) +
  `\ndev vf0 ingress chain 1 prio 2 protocol ${proto} flower ct_state +trk+est-rpl ${seen} action mirred egress redirect dev uplink` +
  answersOn(proto, '', `ct zone ${zone}`, `+trk+est+rpl ${seen}`);
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
      answersOn('ip', 'ip_proto udp', 'ct zone 6 nat', '+trk+est+rpl'),
    replyTo(natTo(udp, 'dst', '10.0.0.9', 6000))],
  ['conversation through a SNAT: the reply un-NATed by ct nat',
    'protocol ip flower ip_proto udp action ct commit zone 7 nat src addr 10.9.9.9 port 4000 pipe action mirred egress redirect dev vf1' +
      answersOn('ip', 'ip_proto udp', 'ct zone 7 nat', '+trk+est+rpl'),
    replyTo(natTo(udp, 'src', '10.9.9.9', 4000))],
];
/**
 * Related (nf_conntrack_proto_icmp.c icmp_error_message): a UDP request from vf0 is committed, then an ICMP port
 * unreachable from vf1 carrying it relates to its connection (+trk+rel+rpl), and one carrying another port does
 * not (invalid).
 */
const unreachable = (p: Packet, sport: number): Packet => {
  const v4 = p.ip!.version === 4, back = replyTo(p);
  return {
    ...back,
    ip: { ...back.ip!, proto: v4 ? 1 : 58 },
    l4: undefined,
    icmp: { type: v4 ? 3 : 1, code: v4 ? 3 : 4, inner: { src: p.ip!.src, dst: p.ip!.dst, proto: 17, sport, dport: p.l4!.dst } },
  } as Packet;
};
const relatedOn = (proto: string, icmpProto: string) =>
  `protocol ${proto} flower ip_proto udp action ct commit zone 8 pipe action mirred egress redirect dev vf1` +
  answersOn(proto, `ip_proto ${icmpProto}`, 'ct zone 8', '+trk+rel+rpl');
const RELATED_FORMS: [string, string, Packet][] = [
  ['related, ipv4: an ICMP port unreachable about a committed connection', relatedOn('ip', 'icmp'), udp],
  ['related, ipv6: an ICMPv6 port unreachable about a committed connection', relatedOn('ipv6', 'icmpv6'), v6],
];

/**
 * TCP conversations (nf_conntrack_proto_tcp.c, rules/classify/tcptrack.ts): vf0 opens to vf1 in the zone of
 * aclOn, each segment with 8 bytes of data. The probe sends every frame twice, so each segment after the first
 * is also retransmitted: the SYN/ACK's second send is one the state table ignores, still +est+rpl.
 */
const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;
const segment = (fromVf0: boolean, flags: number, seq: number, ack: number, dataLen = 8): Packet => {
  const p: Packet = { ...tcp, tcpFlags: flags, tcpSeg: { seq, ack, window: 8192, dataLen } };
  return fromVf0 ? p : replyTo(p);
};
/** vf0 opens: SYN (+new, committed; data to 1009), SYN/ACK (+est+rpl; to 5009), ACK with data to 1017 (+est, assured). */
const HANDSHAKE = [segment(true, SYN, 1000, 0), segment(false, SYN | ACK, 5000, 1009), segment(true, ACK, 1009, 5009)];
const TCP_CONVERSATIONS: [string, Packet[]][] = [
  ['conversation, tcp: the handshake (+trk+new, +est+rpl, +est), an ack of unsent data and an early ACK invalid', [
    segment(true, SYN, 1000, 0), // new: committed with the mark
    segment(false, SYN | ACK, 5000, 1010), // acks a byte vf0 never sent (tcp_in_window III): invalid, dropped
    segment(true, ACK, 1009, 5009), // an ACK in SYN_SENT, before any SYN/ACK: invalid, handed to software
    segment(false, SYN | ACK, 5000, 1009), // +est+rpl
    segment(true, ACK, 1009, 5009), // +est; the connection is assured
    segment(false, ACK, 5009, 1017), // data back: +est+rpl
  ]],
  ['conversation, tcp: a bare ACK picks a connection up (nf_conntrack_tcp_loose), its reply +est+rpl, then +est', [
    segment(true, ACK, 70000, 300),
    segment(false, ACK, 300, 70008),
    segment(true, ACK, 70008, 308),
  ]],
  // act_ct offloads the connection at the handshake's ACK; the FIN tears its flow-table entry down
  // (tcf_ct_flow_table_lookup), and conntrack takes the close from there. The first FIN's second send reads to the
  // table as the FIN of both sides (FIN_WAIT to LAST_ACK), so the ACK back already reaches TIME_WAIT.
  ['conversation, tcp: a full close (FIN both ways, +est to the last ACK), data after it, then a SYN reopens (+new)', [
    ...HANDSHAKE,
    segment(true, FIN | ACK, 1017, 5009), // FIN_WAIT; its data ends at 1025, the FIN takes 1025
    segment(false, ACK, 5009, 1026), // TIME_WAIT (after the FIN's second send)
    segment(false, FIN | ACK, 5017, 1026),
    segment(true, ACK, 1026, 5026, 0), // the last ACK
    segment(false, ACK, 5026, 1026), // data after the close: in the window, +est+rpl, TIME_WAIT stays
    segment(true, SYN, 90000, 0), // a SYN in TIME_WAIT after a FIN: nf_ct_kill, a new connection (+new), committed again
  ]],
  // The out-of-window RST also tears act_ct's entry down, then conntrack finds it invalid ("invalid rst").
  ['conversation, tcp: an RST below vf0\'s ack invalid, one at it closes, an ACK after it +est', [
    ...HANDSHAKE,
    segment(false, RST, 4000, 0, 0), // below 5009, what vf0 acked: invalid, dropped
    segment(false, RST, 5009, 0, 0), // at it: CLOSE, +est+rpl (its second send: an RST while closing, taken)
    segment(true, ACK, 1017, 5009), // CLOSE stays, +est
  ]],
];
/** OVN's load balancer over TCP: vf0's SYN and ACK DNATed to the backend on vf1, whose SYN/ACK a bare `ct nat` puts back. */
const TCP_BALANCED: [string, string, Packet[]] = [
  'conversation, tcp through a DNAT (a load balancer): the SYN/ACK un-NATed by ct nat, then +est',
  'protocol ip flower ip_proto tcp action ct commit zone 13 nat dst addr 10.0.0.9 port 6000 pipe action mirred egress redirect dev vf1' +
    answersOn('ip', 'ip_proto tcp', 'ct zone 13 nat', '+trk+est+rpl'),
  [segment(true, SYN, 1000, 0), replyTo(natTo({ ...tcp, tcpFlags: SYN | ACK, tcpSeg: { seq: 5000, ack: 1009, window: 8192, dataLen: 8 } }, 'dst', '10.0.0.9', 6000)), segment(true, ACK, 1009, 5009)],
];

export function conversationCases(): Case[] {
  const plain = formCases(STATEFUL_FORMS, []).map((c) => {
    const proto = c.rules[0]!.protocol;
    const talks = CONVERSATIONS.filter((p) => p.ethType === proto);
    return { ...c, packets: talks.flatMap((p) => [p, replyTo(p), p]), keepCt: talks.flatMap(() => [false, true, true]) };
  });
  const nat = NAT_FORMS.map(([name, text, reply]) => ({ ...formCases([[name, text]], [])[0]!, packets: [udp, reply, udp], keepCt: [false, true, true] }));
  const related = RELATED_FORMS.map(([name, text, p]) => ({
    ...formCases([[name, text]], [])[0]!,
    packets: [p, unreachable(p, p.l4!.src), unreachable(p, p.l4!.src + 1)],
    keepCt: [false, true, true],
  }));
  const tcpTalks = TCP_CONVERSATIONS.map(([name, packets], i) => ({
    ...formCases([[name, aclOn('ip', 11 + i, 'mark 9', 'ct_mark 9')]], [])[0]!,
    packets,
    keepCt: packets.map((_, k) => k > 0),
  }));
  const [lbName, lbText, lbPackets] = TCP_BALANCED;
  const balanced = { ...formCases([[lbName, lbText]], [])[0]!, packets: lbPackets, keepCt: lbPackets.map((_, k) => k > 0) };
  return [...plain, ...nat, ...related, ...tcpTalks, balanced];
}

