// The offload tier: vpf's translated flows on a real Open vSwitch kernel
// datapath with tc offload (stock Debian kernel under qemu, harness.ts). Per
// frame: (a) it comes out where tc flower would send it, and nowhere else;
// (b) if it meets only offloaded rules (or no rule), a tc-offloaded datapath
// flow (dp:tc) handled its last pass. One VM boot for every set.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowerRule } from '../../rules/model.js';
import type { Packet } from '../../rules/packet.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { arbPacket } from '../gen/packet.js';
import { arbRuleset, DEVS } from '../gen/ruleset.js';
import { arbExtraRuleset } from '../translator/support/rulesets.js';
import { arbGuestSwitchSet } from '../gen/guestswitch.js';
import { Share } from '../helpers/met.js';
import { judge, prepare, type Case, type Prepared, type Verdict } from './check.js';
import { runOffload, type OffloadRun } from './harness.js';

const ports = defaultPortMap(2);
const RULESETS = Number(process.env.VPF_OFFLOAD_RULESETS ?? 12);
const PACKETS = 12;
const GUEST_RULESETS = Number(process.env.VPF_OFFLOAD_GUEST_RULESETS ?? 12);
// A fixed seed by default, so CI judges the same sets every run; VPF_SEED=random (or a number) explores others.
const SEED = process.env.VPF_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.VPF_SEED ?? 20261202);

const rule = (line: string): FlowerRule => {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(`${line}: ${r.error.message}`);
  return r.value;
};

/** Untagged, 802.1Q and 802.1ad+802.1Q copies of a packet entering on vf0. */
const tagged = (p: Packet, pcp = 3): Packet[] => [
  p,
  { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp }] },
  { ...p, vlans: [{ tpid: 0x88a8, vid: 100, pcp }, { tpid: 0x8100, vid: 5, pcp: 0 }] },
];
const ct0 = { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) };
const base = { inDev: 'vf0', dstMac: '02:00:00:00:00:02', srcMac: '02:00:00:00:00:01', vlans: [], mark: 0, priority: 0, ct: ct0 };
const udp: Packet = { ...base, ethType: 0x0800, ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, tos: 0x10, ttl: 64, frag: 'no' }, l4: { src: 1000, dst: 80 } };
const tcp: Packet = { ...base, ethType: 0x0800, ip: { version: 4, src: '10.0.0.1', dst: '192.168.1.1', proto: 6, tos: 0, ttl: 64, frag: 'no' }, l4: { src: 53, dst: 80 }, tcpFlags: 0x02 };
const v6: Packet = { ...base, ethType: 0x86dd, ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: 17, tos: 0, ttl: 64, frag: 'no' }, l4: { src: 1000, dst: 80 } };
const arp: Packet = { ...base, dstMac: 'ff:ff:ff:ff:ff:ff', ethType: 0x0806, arp: { op: 1, sip: '10.0.0.1', tip: '10.0.0.2', sha: '02:00:00:00:00:01', tha: '00:00:00:00:00:00' } };
const FRAMES = [...tagged(udp), ...tagged(tcp), ...tagged(v6), ...tagged(arp)];

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
  ['port and ttl unpinned, goto, miss restored', 'protocol ip flower ip_proto udp action pedit ex munge udp dport set 4789 munge ip ttl dec pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto udp src_port 2000 action drop'],
  // A copy before a goto is deferred: sent with chain 1's redirect (udp), never before the hand-off of a miss.
  ['mirror, goto: the copy where the path ends in hardware', 'protocol ip flower action mirred egress mirror dev uplink pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto udp action mirred egress redirect dev vf1'],
  ['vlan pop on protocol all', 'protocol all flower action vlan pop pipe action mirred egress redirect dev vf1'],
  ['vlan modify on protocol all', 'protocol all flower action vlan modify id 9 pipe action mirred egress redirect dev vf1'],
  ['police after a rewrite', 'protocol ip flower action pedit ex munge ip tos set 0x28 retain 0xfc pipe action police rate 8mbit burst 100k index 8 conform-exceed drop/pipe action mirred egress redirect dev vf1'],
  // Every frame dropped, conforming or not: a meter-only flow, which OVS 3.1 leaves unfinished in tc (trapped).
  ['police, then drop', 'protocol ip flower action police rate 8mbit burst 100k conform-exceed drop/pipe action drop'],
  ['shared police index', 'protocol ip flower action police rate 8mbit burst 100k index 7 conform-exceed drop/pipe action mirred egress redirect dev vf1'],
];

/** Forms on a VM declaring outer TPID 802.1Q: its frames are untagged, 802.1Q, or 802.1Q over another tag. */
const QFRAMES = [udp, tcp, v6, arp].flatMap((p) => [p, { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp: 3 }] }, { ...p, vlans: [{ tpid: 0x8100, vid: 5, pcp: 3 }, { tpid: 0x8100, vid: 7, pcp: 0 }] }]);
const DECLARED_FORMS: [string, string][] = [
  ['declared 802.1Q: vlan_id', 'protocol 802.1Q flower vlan_id 5 action mirred egress redirect dev vf1'],
  ['declared 802.1Q: vlan_id, vlan_prio, vlan_ethtype ip, dst_ip', 'protocol 802.1Q flower vlan_id 5 vlan_prio 3 vlan_ethtype ip dst_ip 10.0.0.2 action mirred egress redirect dev vf1'],
  ['declared 802.1Q: inner 802.1Q tag (vlan_ethtype 802.1Q)', 'protocol 802.1Q flower vlan_ethtype 802.1Q action drop'],
  ['declared 802.1Q: any tag, pop and redirect', 'protocol 802.1Q flower action vlan pop pipe action mirred egress redirect dev vf1'],
  // OVN's localnet shape without its ct (no recirculation offload on this kernel): a pinned tag popped, then a chain that misses for udp.
  ['declared 802.1Q: pinned tag popped, goto, miss puts it back', 'protocol 802.1Q flower vlan_id 5 vlan_prio 3 vlan_ethtype ip action vlan pop pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action mirred egress redirect dev vf1'],
  ['declared 802.1Q: vlan push, goto, miss pops it', 'protocol ip flower action vlan push id 9 pipe action goto chain 1\ndev vf0 ingress chain 1 prio 1 protocol 802.1Q flower vlan_ethtype ip ip_proto tcp action drop'],
];

function formCases(): Case[] {
  const one = (text: string) => (text ? text.split('\n').map((l) => rule(l.startsWith('dev ') ? l : `dev vf0 ingress prio 1 ${l}`)) : []);
  return [
    ...FORMS.map(([name, text]) => ({ name: `form: ${name}`, rules: one(text), packets: FRAMES })),
    ...DECLARED_FORMS.map(([name, text]) => ({ name: `form: ${name}`, rules: one(text), packets: QFRAMES, outerTpid: 0x8100 })),
  ];
}

function randomCases(): Case[] {
  // The property test's sets: random rules mixed with what guest switches emit (rewrite-then-goto, masked pedit, ...).
  const arb = fc.tuple(arbExtraRuleset(arbRuleset()), fc.array(arbPacket(), { minLength: PACKETS, maxLength: PACKETS }));
  const plain = fc.sample(arb, { seed: SEED, numRuns: RULESETS }).map(([rules, packets], i) => ({
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
  const declared = fc.sample(q, { seed: SEED + 1, numRuns: Math.ceil(RULESETS / 2) }).map(([rules, packets], i) => ({
    name: `random declared 802.1Q ${i}`,
    rules,
    outerTpid: 0x8100,
    packets: packets.map((raw): Packet => ({ ...raw, inDev: DEVS.includes(raw.inDev) ? raw.inDev : 'vf0', ct: ct0 })),
  }));
  return [...plain, ...declared];
}

/** Sets a guest OVS's tc offload emits (test/gen/guestswitch.ts): two thirds on an undeclared VM, a third declaring 802.1Q. */
function guestSwitchCases(): Case[] {
  const declared = Math.floor(GUEST_RULESETS / 3);
  const one = (outerTpid: number | undefined, n: number, seed: number) =>
    fc.sample(arbGuestSwitchSet({ packets: PACKETS, ...(outerTpid !== undefined ? { outerTpid } : {}) }), { seed, numRuns: n }).map(({ rules, packets }, i) => ({
      name: `guest-switch${outerTpid !== undefined ? ' declared 802.1Q' : ''} ${i}`,
      rules,
      packets,
      ...(outerTpid !== undefined ? { outerTpid } : {}),
    }));
  return [...one(undefined, GUEST_RULESETS - declared, SEED + 2), ...one(0x8100, declared, SEED + 3)];
}

let prepared: Prepared[];
let run: OffloadRun;
const verdicts = new Map<string, Verdict[]>();

beforeAll(async () => {
  prepared = [...formCases(), ...randomCases(), ...guestSwitchCases()].map((c) => prepare(c, ports));
  run = await runOffload(prepared.map((p) => p.set), { ports });
  prepared.forEach((p, i) => verdicts.set(p.c.name, p.c.packets.map((_, n) => judge(p, run.sets[i]!, n))));
  summary('forms', (n) => n.startsWith('form'));
  summary(`random (seed ${SEED})`, (n) => n.startsWith('random'));
  summary(`guest-switch (seed ${SEED + 2}, ${SEED + 3})`, (n) => n.startsWith('guest-switch'));
  guestShare = metShare((n) => n.startsWith('guest-switch'));
  console.log(guestShare.line(`offload guest-switch, ${GUEST_RULESETS} sets x ${PACKETS} frames, on dp:tc`));
  // The same apart: a VM that declares its outer TPID gets its VLAN filters offloaded (docs/mapping.md).
  console.log(metShare((n) => n.startsWith('guest-switch declared')).line('  of which on a VM declaring outer TPID 802.1Q'));
  console.log(metShare((n) => n.startsWith('guest-switch') && !n.startsWith('guest-switch declared')).line('  of which on VMs declaring none'));
  console.log(`offload tier: ${run.kernel}, ${run.ovsVersion}; ${prepared.length} sets, timing ${JSON.stringify(run.timing)}`);
}, 900_000);

let guestShare: Share;

/**
 * Issue 11's figure on the datapath: of the frames that meet a rule (trapped
 * rules included), those a tc-offloaded datapath flow handled without a trap
 * to the guest's software; the others by cause (the translator's reason for
 * a trap, else what the datapath flow shows, marked when OVS 3.1 never
 * offloads such a frame).
 */
function metShare(pick: (name: string) => boolean): Share {
  const share = new Share();
  for (const v of [...verdicts].filter(([n]) => pick(n)).flatMap(([, x]) => x)) {
    if (!v.metRule) continue;
    const handled = v.offloaded && !v.trappedBy;
    share.add(handled, v.trappedBy ? `trapped: ${v.trappedBy}` : v.beyondOvs ? `OVS 3.1 never offloads: ${v.beyondOvs}` : v.cause);
  }
  return share;
}

/** One line: frames, the fraction dp:tc among frames that must be offloaded, the causes of the others. */
function summary(what: string, pick: (name: string) => boolean): void {
  const all = [...verdicts].filter(([n]) => pick(n)).flatMap(([, v]) => v);
  const must = all.filter((v) => v.mustOffload && !v.skipped && !v.beyondOvs);
  const beyond = all.filter((v) => v.mustOffload && !v.skipped && v.beyondOvs);
  const off = must.filter((v) => v.offloaded).length;
  const causes = new Map<string, number>();
  for (const v of must) if (!v.offloaded) causes.set(v.cause, (causes.get(v.cause) ?? 0) + 1);
  const wrong = all.filter((v) => !v.skipped && !v.outputOk).length;
  const wrongWhere = [...verdicts].filter(([n]) => pick(n)).flatMap(([n, v]) => v.flatMap((x, i) => (!x.skipped && !x.outputOk ? [`${n} #${i + 1}`] : [])));
  console.log(
    `offload ${what}: ${all.length} frames, ${off}/${must.length} (${must.length ? ((100 * off) / must.length).toFixed(1) : '-'}%) of those meeting offloaded rules or misses handled by dp:tc; ` +
      `${all.filter((v) => v.skipped).length} conntrack or NAT-to-a-range frames not compared; ${beyond.length} frames OVS 3.1 never offloads (${[...new Set(beyond.map((v) => v.beyondOvs))].join(', ') || 'none'}); ${wrong} wrong outputs${wrong ? ` (${wrongWhere.join(', ')})` : ''}; not offloaded: ` +
      ([...causes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${n} ${c}`).join('; ') || 'none'),
  );
}

describe('offload tier: translated flows on OVS tc offload (kernel datapath, skip_hw)', () => {
  it('loads every set', () => {
    const bad = run.sets.filter((s) => s.loadError).map((s) => `${s.name}: ${s.loadError}`);
    expect(bad).toEqual([]);
  });
  for (const kind of ['form', 'random', 'guest-switch'] as const) {
    it(`${kind} sets: each frame comes out where flower sends it`, () => {
      const bad = [...verdicts].filter(([n]) => n.startsWith(kind)).flatMap(([, v]) => v.filter((x) => !x.skipped && !x.outputOk));
      if (bad.length) expect.fail(`${bad.length} frames came out wrong; the first ones:\n${bad.slice(0, 3).map((b) => b.report).join('\n\n')}\n(VPF_SEED=${SEED})`);
    });
    it(`${kind} sets: each frame that meets offloaded rules or a miss is handled by dp:tc`, () => {
      const bad = [...verdicts].filter(([n]) => n.startsWith(kind)).flatMap(([, v]) => v.filter((x) => !x.skipped && !x.beyondOvs && x.mustOffload && !x.offloaded));
      if (bad.length) expect.fail(`${bad.length} frames not offloaded; the first:\n${bad[0]!.report}\n(VPF_SEED=${SEED})`);
    });
  }
});
