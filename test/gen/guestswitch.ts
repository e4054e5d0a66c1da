// Rule sets shaped like what a guest Open vSwitch with hw-offload=true puts on
// its representors (issue 11), and packets that mostly hit them.
//
// One filter per megaflow, in the forms OVS 3.1's tc offload writes
// (lib/netdev-offload-tc.c netdev_tc_flow_put, lib/tc.c nl_msg_put_flower_*):
// - chain = the megaflow's recirc_id: chain 0 for first passes, chain N for
//   the flows after `ct(...),recirc(N)` or a rewrite then `recirc(N)`
//   (OVS_ACTION_ATTR_RECIRC becomes `goto chain N`);
// - prio = one per (protocol, mask) pair, shared by every device and chain
//   (get_prio_for_tc_flower); handles distinct; no skip flags (tc-policy
//   none, OVS's default);
// - match: in_port is the representor itself; protocol is the megaflow's
//   eth_type (ip, ipv6, arp; 802.1Q with vlan_id [vlan_prio] vlan_ethtype
//   for tagged traffic); exact MACs, exact or prefix addresses, exact
//   ip_proto and ports, ip_flags nofrag (megaflows pin nw_frag), ct_state /
//   ct_zone after a ct recirculation. Every field a flow rewrites is pinned
//   (ofproto-dpif-xlate.c un-wildcards what a set action writes);
// - actions, in OVS's order: `police index N` first (a meter: the shared
//   policer of tc_add_policer_action, nl_msg_put_act_police_index); vlan pop,
//   push (OVS has no vlan modify: a VID change is pop then push), and a pop
//   then ct and goto (OVN's localnet port on a VLAN network); pedit keys
//   of a masked set (parse_put_flow_set_masked_action: whole fields, DSCP
//   with 0xfc, the low byte of an IPv4 address) and the csum action tc.c
//   adds after IP rewrites (csum_update_flag, tcp/udp only); ct zone Z
//   [commit] [mark] [label] [nat] (parse_put_flow_ct_action) then goto
//   chain N, or a ct commit then output in a post-recirculation chain;
//   outputs as mirred egress mirror for all but the last, which redirects
//   (nl_msg_put_act_mirred: TC_ACT_STOLEN for the last); drop when the
//   megaflow has no actions.
// Packets: most come from a rule of chain 0: the packet that made its
// megaflow, or another one with the rule's keys laid over pool values; the
// rest are random (test/gen/packet.ts), mostly misses.
import fc from 'fast-check';
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from '../../rules/addr.js';
import { classify } from '../../rules/classify.js';
import { maskShape } from '../../rules/classify/match.js';
import type { FlowerMatch, FlowerRule } from '../../rules/model.js';
import type { Packet } from '../../rules/packet.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { arbPacket, IP4, IP6, MACS, PORTS } from './packet.js';
import { DEVS } from './ruleset.js';

export interface GuestSwitchSet {
  rules: FlowerRule[];
  packets: Packet[];
}

export interface GuestSwitchOptions {
  /** Packets per set. */
  packets: number;
  /** The VM's declared outer TPID: random (miss) packets carry only it outside. */
  outerTpid?: number;
}

const ct0 = () => ({ state: 0, zone: 0, mark: 0, label: '0'.repeat(32) });
const HOST_MACS = [...MACS.slice(0, 2), '02:00:00:00:00:03', '02:00:00:00:00:04'];
/** Guest zones as ovn-kubernetes and OVN name them (a zone per logical port, 64000 for the gateway). */
const ZONES = [5, 7, 64000];
/** Shared policers: one rate per index, as OVS creates one police action per meter. */
const POLICERS = ['police rate 8mbit burst 100k index 1 conform-exceed drop/pipe', 'police rate 100mbit burst 1m index 2 conform-exceed drop/pipe'];
const LABEL = '0000000000000000000000000000000a/000000000000000000000000000000ff';

type Kind = 'ip4' | 'ip6' | 'arp' | 'vlan';

/** The packet a megaflow was made for: fields from small pools, so megaflows and packets overlap. */
interface Template {
  dev: string;
  kind: Kind;
  dst: string;
  src: string;
  a: number;
  b: number;
  proto: number;
  sport: number;
  dport: number;
  tos: number;
  ttl: number;
  vid: number;
  pcp: number;
}

const arbTemplate: fc.Arbitrary<Template> = fc.record({
  dev: fc.constantFrom(...DEVS),
  kind: fc.constantFrom<Kind>('ip4', 'ip4', 'ip4', 'ip4', 'ip6', 'ip6', 'arp', 'vlan', 'vlan'),
  dst: fc.constantFrom(...HOST_MACS),
  src: fc.constantFrom(...HOST_MACS),
  a: fc.nat(3),
  b: fc.nat(3),
  proto: fc.constantFrom(6, 6, 17, 17, 1),
  sport: fc.constantFrom(...PORTS),
  dport: fc.constantFrom(...PORTS),
  tos: fc.constantFrom(0, 0, 0x10, 0x28),
  ttl: fc.constantFrom(64, 64, 63, 255),
  vid: fc.constantFrom(5, 5, 100),
  pcp: fc.constantFrom(0, 0, 3),
});

const ip4Of = (i: number) => [...IP4, '10.0.1.7'][i]!;
const ip6Of = (i: number) => [...IP6, '2001:db8::7', '2001:db8:1::9'][i]!;

export function templatePacket(t: Template): Packet {
  const p: Packet = { inDev: t.dev, dstMac: t.dst, srcMac: t.src, vlans: [], ethType: 0x0800, ct: ct0(), mark: 0, priority: 0 };
  if (t.kind === 'arp') return { ...p, ethType: 0x0806, arp: { op: 1, sip: ip4Of(t.a), tip: ip4Of(t.b), sha: t.src, tha: '00:00:00:00:00:00' } };
  const v6 = t.kind === 'ip6';
  if (t.kind === 'vlan') p.vlans = [{ tpid: 0x8100, vid: t.vid, pcp: t.pcp }];
  const proto = v6 && t.proto === 1 ? 58 : t.proto;
  p.ethType = v6 ? 0x86dd : 0x0800;
  p.ip = { version: v6 ? 6 : 4, src: v6 ? ip6Of(t.a) : ip4Of(t.a), dst: v6 ? ip6Of(t.b) : ip4Of(t.b), proto, tos: t.tos, ttl: t.ttl, frag: 'no' };
  if (proto === 6 || proto === 17) p.l4 = { src: t.sport, dst: t.dport };
  if (proto === 6) p.tcpFlags = 0x10;
  if (proto === 1 || proto === 58) p.icmp = { type: 8, code: 0 };
  return p;
}

/** Which keys a megaflow pins beyond those its rewrites need (OVS's wildcarding leaves the rest out). */
interface Profile {
  macs: 0 | 1 | 2;
  src: 'exact' | 'prefix' | 'none';
  dst: 'exact' | 'prefix' | 'none';
  proto: boolean;
  ports: 0 | 1 | 2;
  frag: boolean;
  vlanPrio: boolean;
}
const arbProfile: fc.Arbitrary<Profile> = fc.record({
  macs: fc.constantFrom<0 | 1 | 2>(2, 2, 1, 0),
  src: fc.constantFrom<'exact' | 'prefix' | 'none'>('exact', 'exact', 'prefix', 'none'),
  dst: fc.constantFrom<'exact' | 'prefix' | 'none'>('exact', 'exact', 'prefix', 'none'),
  proto: fc.boolean(),
  ports: fc.constantFrom<0 | 1 | 2>(0, 1, 2, 2),
  frag: fc.constantFrom(true, true, false),
  vlanPrio: fc.boolean(),
});

type Rewrite = 'eth dst' | 'eth src' | 'ip src' | 'ip dst' | 'ip dst low byte' | 'ttl' | 'dscp' | 'sport' | 'dport';
type Shape =
  | 'output'
  | 'flood'
  | 'drop'
  | 'push'
  | 'pop'
  | 'vid change'
  | 'pop, ct, goto'
  | 'rewrite, output'
  | 'rewrite, goto'
  | 'ct, goto'
  | 'ct nat, goto'
  | 'ct commit, goto'
  | 'rewrite, ct, goto'
  | 'ct clear, output';

interface Spec {
  t: Template;
  prof: Profile;
  shape: Shape;
  rewrites: Rewrite[];
  outs: string[];
  police: number | undefined;
  zone: number;
  mark: boolean;
  label: boolean;
  chain: number;
  newVid: number;
}

const arbShape = fc.constantFrom<Shape>(
  'output', 'output', 'output', 'flood', 'drop', 'push', 'pop', 'vid change', 'pop, ct, goto',
  'rewrite, output', 'rewrite, output', 'rewrite, goto', 'ct, goto', 'ct, goto', 'ct nat, goto', 'ct commit, goto', 'rewrite, ct, goto', 'ct clear, output',
);

const arbSpec: fc.Arbitrary<Spec> = fc.record({
  t: arbTemplate,
  prof: arbProfile,
  shape: arbShape,
  rewrites: fc.subarray<Rewrite>(['eth dst', 'eth src', 'ip src', 'ip dst', 'ip dst low byte', 'ttl', 'dscp', 'sport', 'dport'], { minLength: 1, maxLength: 3 }),
  outs: fc.shuffledSubarray(DEVS, { minLength: 1, maxLength: 2 }),
  police: fc.constantFrom(undefined, undefined, undefined, undefined, undefined, 0, 1),
  zone: fc.constantFrom(...ZONES),
  mark: fc.boolean(),
  label: fc.boolean(),
  chain: fc.integer({ min: 1, max: 3 }),
  newVid: fc.constantFrom(7, 100),
});

/** What a post-recirculation megaflow does (chain N). */
type After = 'output' | 'drop' | 'commit, output' | 'commit nat, output' | 'rewrite, output' | 'push, output';
const arbAfter = fc.record({
  after: fc.constantFrom<After>('output', 'output', 'drop', 'commit, output', 'commit, output', 'commit nat, output', 'rewrite, output', 'push, output'),
  state: fc.constantFrom('+trk+new', '+trk+new', '+trk+est', '+trk+new-rpl', '+trk+inv'),
  outs: fc.shuffledSubarray(DEVS, { minLength: 1, maxLength: 2 }),
  prof: arbProfile,
  police: fc.constantFrom(undefined, undefined, undefined, undefined, 0, 1),
  mark: fc.boolean(),
  label: fc.boolean(),
  rewrite: fc.constantFrom<Rewrite>('eth dst', 'eth src', 'ttl', 'dscp'),
});

const isIp = (k: Kind) => k === 'ip4' || k === 'ip6';
const outputs = (devs: string[], inDev: string) => {
  const to = devs.filter((d) => d !== inDev);
  const list = to.length ? to : DEVS.filter((d) => d !== inDev).slice(0, 1);
  return list.map((d, i) => `action mirred egress ${i === list.length - 1 ? 'redirect' : 'mirror'} dev ${d}${i === list.length - 1 ? '' : ' pipe'}`).join(' ');
};

/** The match of a megaflow for packet `p` under profile `prof`, pinning every field `pin` names (tc flower syntax). */
function matchText(p: Packet, prof: Profile, pin: Set<Rewrite>, vlanPrio: boolean): string {
  const k: string[] = [];
  const tag = p.vlans[0];
  if (tag) k.push(`protocol 802.1Q flower vlan_id ${tag.vid}${vlanPrio ? ` vlan_prio ${tag.pcp}` : ''} vlan_ethtype ${p.ethType === 0x86dd ? 'ipv6' : p.ethType === 0x0806 ? 'arp' : 'ip'}`);
  else k.push(`protocol ${p.ethType === 0x86dd ? 'ipv6' : p.ethType === 0x0806 ? 'arp' : 'ip'} flower`);
  if (prof.macs >= 1 || pin.has('eth dst')) k.push(`dst_mac ${p.dstMac}`);
  if (prof.macs >= 2 || pin.has('eth src')) k.push(`src_mac ${p.srcMac}`);
  if (p.arp) {
    if (prof.src !== 'none') k.push(`arp_sip ${p.arp.sip}`);
    if (prof.dst !== 'none') k.push(`arp_tip ${p.arp.tip}`);
    k.push('arp_op request');
    return k.join(' ');
  }
  const ip = p.ip!;
  const v6 = ip.version === 6;
  const prefix = v6 ? 64 : 24;
  const l4 = ip.proto === 6 ? 'tcp' : ip.proto === 17 ? 'udp' : undefined;
  const ipRewrite = ['ip src', 'ip dst', 'ip dst low byte', 'ttl', 'dscp'].some((f) => pin.has(f as Rewrite));
  const portRewrite = pin.has('sport') || pin.has('dport');
  if (prof.proto || prof.ports || ipRewrite || portRewrite) k.push(`ip_proto ${l4 ?? (v6 ? 'icmpv6' : 'icmp')}`);
  if (pin.has('ip src') || prof.src === 'exact') k.push(`src_ip ${ip.src}`);
  else if (prof.src === 'prefix') k.push(`src_ip ${ip.src}/${prefix}`);
  if (pin.has('ip dst') || pin.has('ip dst low byte') || prof.dst === 'exact') k.push(`dst_ip ${ip.dst}`);
  else if (prof.dst === 'prefix') k.push(`dst_ip ${ip.dst}/${prefix}`);
  if (pin.has('ttl')) k.push(`ip_ttl ${ip.ttl}`);
  if (pin.has('dscp')) k.push(`ip_tos 0x${(ip.tos & 0xfc).toString(16)}/0xfc`);
  if (prof.frag || prof.ports) k.push('ip_flags nofrag');
  if (l4 && (prof.ports >= 1 || pin.has('dport'))) k.push(`dst_port ${p.l4!.dst}`);
  if (l4 && (prof.ports >= 2 || pin.has('sport'))) k.push(`src_port ${p.l4!.src}`);
  return k.join(' ');
}

/** The pedit (and csum) actions of a masked set of `fields` on `p` (only those the packet has). */
function rewriteText(p: Packet, fields: Rewrite[]): { text: string; lowByte: boolean } {
  const ip = p.ip;
  const v6 = ip?.version === 6;
  const l4 = ip?.proto === 6 ? 'tcp' : ip?.proto === 17 ? 'udp' : undefined;
  const keys: string[] = [];
  let lowByte = false, ipTouched = false, l4Touched = false;
  for (const f of fields) {
    if (f === 'eth dst') keys.push(`munge eth dst set 02:00:00:00:00:0${p.dstMac.endsWith('9') ? 8 : 9}`);
    else if (f === 'eth src') keys.push(`munge eth src set 02:00:00:00:00:aa`);
    if (!ip || !l4) continue; // OVS rewrites IP headers of TCP/UDP only here (tc.c csum_update_flag)
    if (f === 'ip src') keys.push(v6 ? 'munge ip6 src set 2001:db8::99' : 'munge ip src set 192.168.1.1');
    else if (f === 'ip dst') keys.push(v6 ? 'munge ip6 dst set 2001:db8::98' : 'munge ip dst set 10.0.0.9');
    else if (f === 'ip dst low byte' && !v6) {
      keys.push('munge ip dst set 0.0.0.77');
      lowByte = true;
    } else if (f === 'ttl') keys.push(`munge ${v6 ? 'ip6 hoplimit' : 'ip ttl'} set ${(ip.ttl + 255) & 0xff}`);
    else if (f === 'dscp' && !v6) keys.push('munge ip tos set 0x20 retain 0xfc');
    else if (f === 'sport') keys.push(`munge ${l4} sport set 4000`);
    else if (f === 'dport') keys.push(`munge ${l4} dport set 8080`);
    else continue;
    if (f === 'sport' || f === 'dport') l4Touched = true;
    else ipTouched = true;
  }
  if (!keys.length) return { text: '', lowByte };
  const csum = ipTouched || l4Touched ? ` action csum ${!v6 && ipTouched ? 'iph and ' : ''}${l4} pipe` : '';
  return { text: `action pedit ex ${keys.join(' ')} pipe${csum}`, lowByte };
}

const pinsOf = (rewrites: Rewrite[]) => new Set(rewrites);

function ctText(s: { zone: number; commit: boolean; mark: boolean; label: boolean; nat: 'none' | 'restore' | 'src'; v6?: boolean }): string {
  return [
    'action ct',
    s.commit ? 'commit' : '',
    `zone ${s.zone}`,
    s.commit && s.mark ? 'mark 0x10/0xff' : '',
    s.commit && s.label ? `label ${LABEL}` : '',
    s.nat === 'restore' ? 'nat' : s.nat === 'src' ? `nat src addr ${s.v6 ? '2001:db8::99' : '192.168.1.1'} port 2000` : '',
    'pipe',
  ].filter(Boolean).join(' ');
}

function parse(line: string, lowByte: boolean): FlowerRule {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(`guest-switch generator made a bad rule: ${line}: ${r.error.message}`);
  if (!lowByte) return r.value;
  // A masked set of the IPv4 destination's last byte (set_field:V/0.0.0.255->ip_dst): tc syntax has no
  // retain for addresses, so the key word keeps the other bits afterwards, as OVS's netlink keys do.
  const actions = r.value.actions.map((a) => (a.kind === 'pedit' ? { ...a, keys: a.keys.map((x) => (x.htype === 'ip4' && x.offset === 16 ? { ...x, mask: 0xffffff00, value: x.value & 0xff } : x)) } : a));
  return { ...r.value, actions };
}

interface Made {
  rule: FlowerRule;
  /** The packet that made the megaflow. */
  origin: Packet;
}

/** A chain-0 megaflow and the chain-N megaflows after it (when it recirculates). */
function megaflows(s: Spec, after: AfterSpec[]): Made[] {
  const t = s.t;
  let shape = s.shape;
  // Shapes that need IP (ct, rewrites of IP fields) or a tag fall back to what OVS would make for this packet.
  if (t.kind === 'vlan' && !['output', 'flood', 'drop', 'pop', 'vid change', 'pop, ct, goto'].includes(shape)) shape = 'pop';
  if (t.kind !== 'vlan' && (shape === 'pop' || shape === 'vid change' || shape === 'pop, ct, goto')) shape = 'push';
  if (!isIp(t.kind) && shape.startsWith('ct')) shape = 'output';
  if (t.kind === 'arp' && shape.startsWith('rewrite')) shape = 'output';
  const origin = templatePacket(t);
  const head = `dev ${t.dev} ingress prio 1`;
  // A meter comes after conntrack in OVN's pipelines (ls_in_qos_meter follows the ACL stages), so never before a recirculation;
  // and it limits what is forwarded, never a drop: OVS 3.1 would offload a meter-then-drop flow as `police index N`
  // alone (lib/tc.c adds the gact drop only to a flow with no action), not as police then drop.
  const police = s.police === undefined || shape.includes('goto') || shape === 'drop' ? '' : `action ${POLICERS[s.police]} `;
  const out = outputs(s.outs, t.dev);
  let rw = { text: '', lowByte: false };
  let pins = new Set<Rewrite>();
  if (shape === 'rewrite, output' || shape === 'rewrite, goto' || shape === 'rewrite, ct, goto') {
    rw = rewriteText(origin, s.rewrites);
    if (!rw.text) rw = rewriteText(origin, ['eth dst']);
    pins = pinsOf(rw.text.includes('eth dst') ? [...s.rewrites, 'eth dst'] : s.rewrites);
  }
  // pop_vlan un-wildcards the whole TCI (ofproto-dpif-xlate.c), so a megaflow that pops pins the PCP too.
  const m = matchText(origin, s.prof, pins, s.prof.vlanPrio || shape === 'pop, ct, goto');
  const goto = `action goto chain ${s.chain}`;
  let acts: string;
  switch (shape) {
    case 'output': acts = outputs(s.outs.slice(0, 1), t.dev); break;
    case 'flood': acts = outputs(DEVS, t.dev); break;
    case 'drop': acts = 'action drop'; break;
    case 'push': acts = `action vlan push id ${s.newVid} priority ${t.pcp} protocol 802.1Q pipe ${out}`; break;
    case 'pop': acts = `action vlan pop pipe ${out}`; break;
    case 'vid change': acts = `action vlan pop pipe action vlan push id ${s.newVid} priority ${t.pcp} protocol 802.1Q pipe ${out}`; break;
    // OVN's localnet port on a VLAN provider network: the tag comes off, then conntrack for the ACLs recirculates.
    case 'pop, ct, goto': acts = `action vlan pop pipe ${ctText({ zone: s.zone, commit: false, mark: false, label: false, nat: 'none' })} ${goto}`; break;
    case 'rewrite, output': acts = `${rw.text} ${out}`; break;
    case 'rewrite, goto': acts = `${rw.text} ${goto}`; break;
    case 'ct, goto': acts = `${ctText({ zone: s.zone, commit: false, mark: false, label: false, nat: 'none' })} ${goto}`; break;
    case 'ct nat, goto': acts = `${ctText({ zone: s.zone, commit: false, mark: false, label: false, nat: 'restore' })} ${goto}`; break;
    case 'ct commit, goto': acts = `${ctText({ zone: s.zone, commit: true, mark: s.mark, label: s.label, nat: 'none' })} ${goto}`; break;
    case 'rewrite, ct, goto': acts = `${rw.text} ${ctText({ zone: s.zone, commit: false, mark: false, label: false, nat: 'none' })} ${goto}`; break;
    case 'ct clear, output': acts = `action ct clear pipe ${out}`; break;
  }
  const first = parse(`${head} ${m} ${police}${acts}`, rw.lowByte);
  const made: Made[] = [{ rule: first, origin }];
  if (!shape.includes('goto')) return made;
  // What chain N sees: the packet after this megaflow's rewrites and ct (the classifier's conntrack: +trk+new).
  const seen = classify([{ ...first, actions: first.actions.filter((a) => !(a.kind === 'gact' && a.control.kind === 'goto')) }], origin).emits.at(-1)!.packet;
  const zone = shape.includes('ct') ? s.zone : undefined;
  for (const a of after) made.push({ rule: afterRule(a, seen, s.chain, zone), origin });
  return made;
}

interface AfterSpec {
  after: After;
  state: string;
  outs: string[];
  prof: Profile;
  police: number | undefined;
  mark: boolean;
  label: boolean;
  rewrite: Rewrite;
}

/** A megaflow of recirculation `chain` for the packet `seen` (ct_state and ct_zone pinned after a ct). */
function afterRule(a: AfterSpec, seen: Packet, chain: number, zone: number | undefined): FlowerRule {
  let after = a.after;
  if (zone === undefined && after.startsWith('commit')) after = 'output';
  const rw = after === 'rewrite, output' ? rewriteText(seen, [a.rewrite]) : { text: '', lowByte: false };
  if (after === 'rewrite, output' && !rw.text) after = 'output';
  const pins = rw.text ? pinsOf([a.rewrite]) : new Set<Rewrite>();
  const ct = zone === undefined ? '' : ` ct_state ${a.state} ct_zone ${zone}`;
  const head = `dev ${seen.inDev} ingress chain ${chain} prio 1 ${matchText(seen, a.prof, pins, a.prof.vlanPrio)}${ct}`;
  const drops = after === 'drop' || a.state === '+trk+inv';
  // A meter limits what is forwarded, never a drop (megaflows(), above).
  const police = a.police === undefined || drops ? '' : `action ${POLICERS[a.police]} `;
  const out = outputs(a.outs, seen.inDev);
  const acts =
    drops ? 'action drop'
    : after === 'commit, output' ? `${ctText({ zone: zone!, commit: true, mark: a.mark, label: a.label, nat: 'none' })} ${out}`
    : after === 'commit nat, output' ? `${ctText({ zone: zone!, commit: true, mark: false, label: false, nat: 'src', v6: seen.ip?.version === 6 })} ${out}`
    : after === 'rewrite, output' ? `${rw.text} ${out}`
    : after === 'push, output' ? `action vlan push id 7 protocol 802.1Q pipe ${out}`
    : out;
  return parse(`${head} ${police}${acts}`, rw.lowByte);
}

const arbAfterSpec = arbAfter as fc.Arbitrary<AfterSpec>;

/** A guest switch's rule set: 2-8 chain-0 megaflows, each recirculating one with 1-2 megaflows after it. */
export function arbGuestSwitchRules(): fc.Arbitrary<{ rules: FlowerRule[]; origins: Packet[] }> {
  return fc.array(fc.tuple(arbSpec, fc.array(arbAfterSpec, { minLength: 1, maxLength: 2 })), { minLength: 2, maxLength: 8 }).map((specs) => {
    const made = specs.flatMap(([s, after]) => megaflows(s, after));
    // get_prio_for_tc_flower: one prio per (protocol, mask), in the order OVS first needed it; one handle per flow.
    const prios = new Map<string, number>();
    const rules = made.map(({ rule }, i) => {
      const k = `${rule.protocol}|${maskShape(rule.match)}`;
      if (!prios.has(k)) prios.set(k, prios.size + 1);
      return { ...rule, prio: prios.get(k)!, handle: i + 1 };
    });
    return { rules, origins: made.filter((x) => x.rule.chain === 0).map((x) => x.origin) };
  });
}

/** `p` with `m`'s keys laid over it (the bits each mask covers); p must be of the rule's protocol. */
export function overlay(m: FlowerMatch, p: Packet): Packet {
  const q = structuredClone(p);
  const bits = (old: Uint8Array, v: Uint8Array, k: Uint8Array) => old.map((b, i) => (b & ~k[i]!) | (v[i]! & k[i]!));
  if (m.dstMac) q.dstMac = bytesToMac(bits(macToBytes(q.dstMac), macToBytes(m.dstMac.value), macToBytes(m.dstMac.mask)));
  if (m.srcMac) q.srcMac = bytesToMac(bits(macToBytes(q.srcMac), macToBytes(m.srcMac.value), macToBytes(m.srcMac.mask)));
  if (q.vlans[0] && m.vlanId !== undefined) q.vlans[0].vid = m.vlanId;
  if (q.vlans[0] && m.vlanPrio !== undefined) q.vlans[0].pcp = m.vlanPrio;
  if (q.arp) {
    if (m.arpSip) q.arp.sip = bytesToIp(bits(ipToBytes(q.arp.sip), ipToBytes(m.arpSip.value), ipToBytes(m.arpSip.mask)));
    if (m.arpTip) q.arp.tip = bytesToIp(bits(ipToBytes(q.arp.tip), ipToBytes(m.arpTip.value), ipToBytes(m.arpTip.mask)));
    if (m.arpOp) q.arp.op = m.arpOp.value;
  }
  if (q.ip) {
    if (m.ipProto !== undefined && m.ipProto !== q.ip.proto) {
      q.ip.proto = m.ipProto;
      delete q.l4;
      delete q.tcpFlags;
      delete q.icmp;
      if (m.ipProto === 6 || m.ipProto === 17) q.l4 = { src: PORTS[0]!, dst: PORTS[1]! };
      if (m.ipProto === 6) q.tcpFlags = 0x10;
      if (m.ipProto === 1 || m.ipProto === 58) q.icmp = { type: 8, code: 0 };
    }
    if (m.srcIp) q.ip.src = bytesToIp(bits(ipToBytes(q.ip.src), ipToBytes(m.srcIp.value), ipToBytes(m.srcIp.mask)));
    if (m.dstIp) q.ip.dst = bytesToIp(bits(ipToBytes(q.ip.dst), ipToBytes(m.dstIp.value), ipToBytes(m.dstIp.mask)));
    if (m.ipTtl) q.ip.ttl = (q.ip.ttl & ~m.ipTtl.mask) | (m.ipTtl.value & m.ipTtl.mask);
    if (m.ipTos) q.ip.tos = (q.ip.tos & ~m.ipTos.mask) | (m.ipTos.value & m.ipTos.mask);
    if (m.ipFlags) q.ip.frag = 'no';
    if (q.l4 && m.srcPort) q.l4.src = (q.l4.src & ~m.srcPort.mask) | (m.srcPort.value & m.srcPort.mask);
    if (q.l4 && m.dstPort) q.l4.dst = (q.l4.dst & ~m.dstPort.mask) | (m.dstPort.value & m.dstPort.mask);
  }
  return q;
}

/** Guest-switch rule sets and packets: most hit a chain-0 megaflow (its own packet or its keys over other values). */
export function arbGuestSwitchSet(opts: GuestSwitchOptions): fc.Arbitrary<GuestSwitchSet> {
  const pick = fc.record({ how: fc.nat(99), rule: fc.nat(), base: arbTemplate, miss: arbPacket(opts.outerTpid !== undefined ? { outerTpid: opts.outerTpid } : {}) });
  return fc.tuple(arbGuestSwitchRules(), fc.array(pick, { minLength: opts.packets, maxLength: opts.packets })).map(([{ rules, origins }, picks]) => {
    const chain0 = rules.filter((r) => r.chain === 0);
    const packets = picks.map(({ how, rule, base, miss }): Packet => {
      if (how >= 85 || !chain0.length) return { ...miss, inDev: DEVS.includes(miss.inDev) ? miss.inDev : DEVS[rule % DEVS.length]!, ct: ct0() };
      const i = rule % chain0.length;
      if (how < 40) return structuredClone(origins[i]!);
      // Another packet of the megaflow's kind on its port, with the megaflow's keys laid over it.
      const o = origins[i]!;
      const kind: Kind = o.vlans.length ? 'vlan' : o.arp ? 'arp' : o.ip?.version === 6 ? 'ip6' : 'ip4';
      return overlay(chain0[i]!.match, templatePacket({ ...base, dev: o.inDev, kind }));
    });
    return { rules, packets };
  });
}
