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

