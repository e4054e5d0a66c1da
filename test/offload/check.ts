// From rules to an offload set and back: translate a rule set as vpfd does,
// send its frames through the offload VM, and judge each frame against the
// reference classifier (where it must come out) and the offload facts (which
// datapath flow handled its last pass).
import type { FlowerRule } from '../../rules/model.js';
import type { Packet } from '../../rules/packet.js';
import { classify } from '../../rules/classify.js';
import { ConntrackTable, firstPackets, type Conntrack } from '../../rules/classify/conntrack.js';
import { flowLine, meterLine } from '../../ovs/openflow/flow.js';
import { hardwareTraps } from '../translator/support/traps.js';
import { shown } from '../helpers/shown.js';
import { causeKey, rulesMet } from '../helpers/met.js';
import { translate } from '../../translator/index.js';
import type { PortMap } from '../../translator/portmap.js';
import { frameView, packetToHex, packetView, type FrameView } from './frame.js';
import type { FrameResult, OffloadSet, SetResult } from './harness.js';

export interface Case {
  name: string;
  rules: FlowerRule[];
  packets: Packet[];
  /** Per packet: sent with conntrack as the packets before it left it (a reply after its request), not emptied. */
  keepCt?: boolean[];
  /** The VM's declared outer TPID (docs/mapping.md, VLAN matches): its packets carry only that one outside. */
  outerTpid?: number;
}

export interface Prepared {
  c: Case;
  set: OffloadSet;
  kept: FlowerRule[];
  notOffloaded: Set<FlowerRule>;
  /** Why each rule that is not offloaded stays in the guest's software (the translator's reason). */
  reasons: Map<FlowerRule, string>;
  flows: string[];
  /** The hardware path's traps (support/traps.ts, the property test's own): classify's `trapped` hook. */
  trapped: ReturnType<typeof hardwareTraps>;
}

export function prepare(c: Case, ports: PortMap): Prepared {
  const t = translate({ rules: c.rules.map((rule, i) => ({ id: i + 1, rule })), ports, ...(c.outerTpid !== undefined ? { outerTpid: c.outerTpid } : {}) });
  // refused rules (skip_sw that cannot be offloaded) are refused in the guest too: they do not exist
  const kept = c.rules.filter((_, i) => !t.perRule.get(i + 1)!.refused);
  const notOffloaded = new Set(c.rules.filter((_, i) => !t.perRule.get(i + 1)!.offloaded));
  const reasons = new Map(c.rules.flatMap((r, i) => { const e = t.perRule.get(i + 1)!.error; return e ? [[r, e.message] as const] : []; }));
  const flows = t.flows.map(flowLine);
  return { c, kept, notOffloaded, reasons, flows, trapped: hardwareTraps(t, c.rules, c.outerTpid), set: { name: c.name, flows, meters: t.meters.map(meterLine), frames: c.packets.map((p, n) => ({ port: p.inDev, hex: packetToHex(p), ...(c.keepCt?.[n] ? { keepCt: true } : {}) })) } };
}

export interface Verdict {
  /** (a): came out where flower would send it, and nowhere else. */
  outputOk: boolean;
  /** The frame met only offloaded rules (or missed): (b) applies. */
  mustOffload: boolean;
  /** (b): its last pass was handled by tc alone. */
  offloaded: boolean;
  /** Why not offloaded: OVS's reasons, or what the datapath flow shows. */
  cause: string;
  /** Not comparable: conntrack picks a NAT range's address and port. */
  skipped?: string;
  /**
   * Not offloaded for a reason no flow form can change (docs/mapping.md, "Not
   * vpf's to fix"): the frame itself is one OVS 3.1's tc offload never takes,
   * or the flow recirculates and the kernel cannot offload that.
   */
  beyond?: string;
  /** Software alone (the classifier) says a rule decided the frame, not a skip_hw one: issue 11's "packets that meet a rule". */
  metRule: boolean;
  /** The hardware path hands the frame to the guest's software at a trap: the translator's reason. */
  trappedBy?: string;
  expected: FrameView[];
  actual: FrameView[];
  report: string;
}

/** What the VM's kernel can offload (harness.ts KernelFlavor): the stock one no flow that recirculates. */
export interface TierKernel {
  recirculation: boolean;
}

/** A NAT to a range: which address and port conntrack picks in it depends on the tuples in use (nf_nat_core.c), not on the rule. */
const natToRange = (r: FlowerRule) =>
  r.actions.some((a) => a.kind === 'ct' && a.nat && ((a.nat.addrMax !== undefined && a.nat.addrMax !== a.nat.addrMin) || (a.nat.portMax !== undefined && a.nat.portMax !== a.nat.portMin)));

/**
 * The probe empties the conntrack table before every send (--flush-ct), so
 * each send is a new connection's first packet, unless it continues a
 * conversation (keepCt): conntrackAt gives conntrack's answer either way, and
 * ct frames are compared like any other.
 */
export function judge(p: Prepared, res: SetResult, n: number, kernel: TierKernel): Verdict {
  const raw = p.c.packets[n]!;
  const pkt = fresh(raw);
  // A hand-off after a rewrite-then-goto gives software the packet as it arrived (docs/mapping.md, restore).
  const want = classify(p.kept, pkt, { trapped: p.trapped, handOffRestores: true, conntrack: conntrackAt(p, res, n) });
  const expected = want.emits.map((e) => packetView(e.to.kind === 'port' ? e.to.dev : `${e.to.dev}rep`, e.packet));
  const fr: FrameResult = res.frames[n]!;
  const actual = fr.last.out.map((o) => frameView(o.port, o.hex));
  const key = (v: FrameView) => JSON.stringify(v);
  const outputOk = JSON.stringify(expected.map(key).sort()) === JSON.stringify(actual.map(key).sort());
  const trapStep = want.trace.find((s) => s.verdict.startsWith('trap (not offloaded)'));
  const mustOffload = !trapStep;
  const trapRule = trapStep && rulesMet(p.kept, pkt.inDev, [trapStep])[0];
  const trappedBy = trapStep ? causeKey((trapRule && p.reasons.get(trapRule)) || 'IPv6 later fragment or deeper tags of an offloaded rule') : undefined;
  const metBySoftware = rulesMet(p.kept, pkt.inDev, classify(p.kept, pkt, { conntrack: conntrackAt(p, res, n) }).trace);
  const metRule = metBySoftware.length > 0 && !metBySoftware.some((r) => r.flags.skipHw);
  const offloaded = fr.last.path === 'tc';
  const met = p.kept.filter((r) => r.dev === pkt.inDev && want.trace.some((s) => s.chain === r.chain && s.prio === r.prio));
  const skipped = met.some(natToRange) ? 'NAT to a range' : undefined;
  let cause = '';
  if (!offloaded) {
    const failed = fr.flows.map((f) => res.failures.find((x) => x.ufid === f.ufid)).filter((x) => x !== undefined);
    const reasons = failed.flatMap((f) => f.reasons.filter((r) => /unsupported|not supported|cannot|refus|sharing/i.test(r)));
    const soft = fr.flows.filter((f) => f.dp !== 'tc');
    const acts = soft.map((f) => f.actions).join(' ');
    const match = soft.map((f) => f.match).join(' ');
    cause = reasons.length
      ? reasons.map((r) => r.replace(/^\S+: /, '').replace(/\d+$/, 'N')).sort()[0]!
      : /skb_mark\(/.test(acts) ? 'pkt_mark (set(skb_mark))'
      : /userspace\(|sample\(/.test(acts) ? 'sample/userspace action'
      : /recirc\(/.test(acts) ? 'recirculation'
      // a CFI-only TCI mask prints as vlan(vid=V/0x0,pcp=P/0x0); netdev-offload-tc refuses it without a log line
      : /vlan\(vid=\d+\/0x0,pcp=\d+\/0x0\)/.test(match) ? 'VLAN presence mask (tci /0x1000, refused silently)'
      : /frag=later/.test(match) ? 'IP later fragment (refused silently)'
      : failed.length ? `${failed[0]!.error} ${failed[0]!.reasons.slice(-1).join('')}`
      : fr.flows.length === 0 ? `no datapath flow (path ${fr.last.path})`
      : `other (path ${fr.last.path})`;
  }
  const beyond = offloaded ? undefined
    : !kernel.recirculation && /recirc/.test(cause) ? 'recirculation (Debian\'s kernel has no CONFIG_NET_TC_SKB_EXT)'
    : ovsNeverOffloads(pkt, fr.flows.filter((f) => f.dp !== 'tc'), p.kept);
  const report = [
    `set ${p.c.name}, frame ${n + 1} on ${pkt.inDev}: ${fr.hex}`,
    'rules:',
    ...p.kept.map((r) => `  tc filter add ${shown(r)}${p.notOffloaded.has(r) ? '   # not offloaded' : ''}`),
    `classifier: ${want.final}; ${want.trace.map((s) => `${s.chain}/${s.prio}:${s.verdict}`).join(' ')}`,
    `expected: ${JSON.stringify(expected)}`,
    `actual:   ${JSON.stringify(actual)}`,
    `passes: ${fr.passes.map((x) => x.path).join(' ')}`,
    'flows:',
    ...p.flows.map((f) => '  ' + f),
    'datapath flows of the last pass:',
    ...fr.flows.map((f) => `  dp:${f.dp} ${f.match} actions:${f.actions}`),
    ...(cause ? [`not offloaded: ${cause}`] : []),
  ].join('\n');
  return { outputOk, mustOffload, offloaded, cause, skipped, ...(beyond ? { beyond } : {}), metRule, ...(trappedBy ? { trappedBy } : {}), expected, actual, report };
}

/**
 * Conntrack as the last send of packet n meets it: the probe emptied the
 * table before it, or (keepCt) before the first packet of its run. The run is
 * replayed through the hardware path (what the datapath committed) into a
 * fresh table as the probe sent it: every send of the packets before n (a
 * TCP segment sent twice is a retransmission to conntrack), then n's earlier
 * sends. The run's first packet counts once, the table emptied before each.
 */
function conntrackAt(p: Prepared, res: SetResult, n: number): Conntrack {
  if (!p.c.keepCt?.[n]) return firstPackets;
  let start = n;
  while (start > 0 && p.c.keepCt[start]) start--;
  const table = new ConntrackTable();
  const sends = (k: number) => (k === start ? 1 : res.frames[k]!.passes.length) - (k === n ? 1 : 0);
  for (let k = start; k <= n; k++) {
    for (let i = 0; i < sends(k); i++) classify(p.kept, fresh(p.c.packets[k]!), { trapped: p.trapped, handOffRestores: true, conntrack: table });
  }
  return table;
}

const fresh = (raw: Packet): Packet => ({ ...raw, ct: { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) } });

/**
 * Frames OVS 3.1 does not offload whatever the flows: an IPv6 fragment
 * (netdev-offload-tc.c: "offloading of IPv6 fragments isn't supported"), an
 * IPv4 first fragment under a megaflow that matches L4 ports or ICMP
 * type/code (flower dissects neither for a fragment, flow_dissector.c without
 * FLOW_DISSECTOR_F_PARSE_1ST_FRAG, so the tc filter OVS installs never
 * matches it and every pass is an upcall), and an IP header rewrite of a packet that is not TCP, UDP or
 * ICMP (tc.c csum_update_flag: "can't offload rewrite of IP/IPV6 with
 * ip_proto"). Judged from the frame and its software datapath flows only.
 */
function ovsNeverOffloads(pkt: Packet, software: { match: string; actions: string }[], rules: FlowerRule[]): string | undefined {
  const softwareMatches = software.map((f) => f.match);
  if (pkt.ip?.version === 6 && pkt.ip.frag !== 'no') return 'IPv6 fragment';
  const csummed = pkt.ip?.version === 6 ? [6, 17, 58] : [6, 17, 1];
  if (pkt.ip && !csummed.includes(pkt.ip.proto) && software.some((f) => /\bset\(ipv[46]\(|\bdec_ttl\(/.test(f.actions))) return 'IP header rewrite of a protocol other than TCP/UDP/ICMP';
  const l4Masked = (m: string) => [...m.matchAll(/\b(?:tcp|udp|sctp)\(([^)]*)\)/g)].some(([, f]) => !/^src=\d+\/0,dst=\d+\/0$/.test(f!));
  if (pkt.ip?.version === 4 && pkt.ip.frag === 'first' && softwareMatches.some(l4Masked)) return 'IPv4 first fragment under an L4-port megaflow';
  // With no software flow to read, a rule on the frame's port matching ICMP type/code puts it in the megaflow.
  const icmpRule = rules.some((r) => r.dev === pkt.inDev && (r.match.icmpType || r.match.icmpCode));
  if (pkt.ip?.version === 4 && pkt.ip.frag === 'first' && pkt.ip.proto === 1 && icmpRule) return 'IPv4 first fragment under an ICMP type/code megaflow';
  return undefined;
}
