// The shared rule-set generator (test/gen/ruleset.ts) plus the shapes the
// translator's own proofs need more of: side effects (mirror copies, meters)
// followed by a hand-off to software, and tagged-frame rules, so that the
// software re-run after a hand-off and VLAN traps are exercised.
import fc from 'fast-check';
import type { FlowerRule } from '../../../rules/model.js';
import { parseFilter, splitArgs } from '../../../rules/tcsyntax/index.js';
import { DEVS } from '../../gen/ruleset.js';

const dev = fc.constantFrom(...DEVS);

const extraLine = fc
  .tuple(dev, dev, fc.constantFrom(0, 0, 1), fc.integer({ min: 1, max: 4 }), fc.nat(16))
  .map(([d, to, chain, prio, k]) => {
    const head = `dev ${d} ingress${chain ? ' chain 1' : ''} prio ${prio}`;
    const goto = chain === 0 ? 'goto chain 1' : 'pass';
    return [
      `${head} protocol ip flower ip_proto udp action mirred egress mirror dev ${to} pipe action ${goto}`,
      `${head} protocol all flower action mirred egress mirror dev ${to}`,
      `${head} protocol ip flower dst_ip 10.0.0.2 action mirred ingress mirror dev ${to} pipe action pass`,
      `${head} protocol ip flower ip_proto tcp action police rate 8mbit burst 100k conform-exceed drop/pipe action ${goto}`,
      `${head} protocol 802.1Q flower vlan_id 5 action drop`,
      `${head} protocol 802.1ad flower vlan_id 100 vlan_prio 3 action mirred egress redirect dev ${to}`,
      `${head} protocol 802.1Q flower vlan_prio 2 action pass`,
      `${head} protocol all flower num_of_vlans 1 action drop`,
      `${head} protocol ip flower ip_proto udp dst_port 80 action skbedit mark 7 pipe action mirred egress redirect dev ${to}`,
      `${head} protocol ip flower src_ip 10.0.0.1 action sample rate 10 group 5 pipe action mirred egress redirect dev ${to}`,
      `${head} protocol ipv6 flower ip_proto udp action mirred egress mirror dev ${to} pipe action drop`,
      `${head} protocol arp flower arp_op request action mirred egress mirror dev ${to} pipe action ${goto}`,
      `${head} protocol ip flower skip_hw dst_ip 10.0.0.2 action mirred egress redirect dev ${to}`,
      `${head} protocol all flower action vlan pop pipe action mirred egress redirect dev ${to}`,
      `${head} protocol all flower dst_mac 02:00:00:00:00:02 action vlan modify id 9 pipe action mirred egress redirect dev ${to}`,
      `${head} protocol all flower action vlan modify id 9 protocol 802.1ad priority 5 pipe action mirred egress redirect dev ${to}`,
      `${head} protocol ip flower action vlan push protocol 802.1ad id 7 pipe action vlan modify id 8 pipe action mirred egress redirect dev ${to}`,
    ][k]!;
  });

// Rewrites with a goto after them (chain 0 -> 1), over matches that pin the rewritten fields (as a guest OVS's
// megaflows do), and chain 1 rules that meet the rewritten packet, miss it or trap it: the hand-off must restore.
const rewriteLineOn = (devs: fc.Arbitrary<string>) => fc
  .tuple(devs, dev, fc.integer({ min: 1, max: 4 }), fc.nat(26))
  .map(([d, to, prio, k]) => {
    const c0 = `dev ${d} ingress prio ${prio}`, c1 = `dev ${d} ingress chain 1 prio ${prio}`;
    return [
      `${c0} protocol ip flower src_ip 10.0.0.1 ip_proto udp dst_port 80 action pedit ex munge ip src set 192.168.1.1 munge udp dport set 53 pipe csum ip udp pipe action goto chain 1`,
      `${c0} protocol all flower dst_mac 02:00:00:00:00:02 src_mac 02:00:00:00:00:01 action pedit ex munge eth dst set 02:00:00:00:00:01 munge eth src set 02:00:00:00:00:02 pipe action goto chain 1`,
      `${c0} protocol ip flower ip_ttl 64 ip_tos 0x10/0xff action pedit ex munge ip ttl dec munge ip tos set 0x28 pipe action goto chain 1`,
      `${c0} protocol ipv6 flower dst_ip 2001:db8::2 action pedit ex munge ip6 dst set 2001:db8::1 pipe action goto chain 1`,
      `${c0} protocol ip flower ip_proto tcp src_port 1000 action pedit ex munge tcp sport set 2000 pipe action ct zone 1 pipe action goto chain 1`,
      `${c0} protocol ip flower dst_ip 10.0.0.2 action pedit ex munge ip dst set 10.0.0.1 pipe action mirred egress mirror dev ${to} pipe action goto chain 1`,
      `${c1} protocol ip flower src_ip 192.168.1.1 action mirred egress redirect dev ${to}`,
      `${c1} protocol ip flower ip_proto udp dst_port 53 action drop`,
      `${c1} protocol all flower skip_hw dst_mac 02:00:00:00:00:01 action drop`,
      `${c1} protocol ip flower ip_ttl 63 action pass`,
      `${c1} protocol ipv6 flower dst_ip 2001:db8::1 action pedit ex munge ip6 src set 2001:db8::2 pipe action mirred egress redirect dev ${to}`,
      `${c1} protocol ip flower src_ip 192.168.1.1 ip_proto udp action pedit ex munge ip src set 10.0.0.2 pipe action goto chain 2`,
      `${c1} protocol all flower dst_mac 02:00:00:00:00:01 action goto chain 0`,
      // Unpinned fields of up to 32 bits: saved in their registers before the rewrite (move), moved back on a miss.
      `${c0} protocol ip flower ip_proto udp action pedit ex munge ip src set 192.168.1.1 munge udp dport set 53 pipe action goto chain 1`,
      `${c0} protocol ip flower action pedit ex munge ip ttl dec munge ip tos set 0x28 retain 0xfc pipe action goto chain 1`,
      `${c0} protocol ip flower ip_proto tcp dst_port 70-90 action pedit ex munge tcp dport set 443 munge ip dst set 10.0.0.1 pipe action goto chain 1`,
      `${c1} protocol ip flower ip_proto tcp dst_port 443 action mirred egress redirect dev ${to}`,
      `${c1} protocol ip flower ip_proto udp action pedit ex munge ip dst set 10.0.0.9 munge ip ttl set 3 pipe action goto chain 2`,
      // Mirror copies before a goto are deferred to where the path ends in hardware, and never sent before a hand-off.
      `${c0} protocol ip flower action mirred egress mirror dev ${to} pipe action goto chain 1`,
      `${c1} protocol ip flower ip_proto tcp action mirred egress mirror dev ${to} pipe action drop`,
      `${c1} protocol ip flower action mirred ingress mirror dev ${to} pipe action goto chain 2`,
      `${c1} protocol ip flower ip_proto tcp action police rate 8mbit burst 100k conform-exceed drop/pipe action mirred egress redirect dev ${to}`,
      `dev ${d} ingress chain 2 prio ${prio} protocol ip flower action mirred egress redirect dev ${to}`,
      // A masked restore (the match pins only the DSCP it writes), then a later rule writing the ECN bits and a miss.
      `${c0} protocol ip flower ip_tos 0x10/0xfc action pedit ex munge ip tos set 0x28 retain 0xfc pipe action goto chain 1`,
      `${c1} protocol ip flower action pedit ex munge ip tos set 0x1 retain 0x3 pipe action goto chain 2`,
      `dev ${d} ingress chain 2 prio ${prio} protocol ip flower ip_proto tcp action drop`,
      // Unpinned MACs: saved whole (the low 32 bits in a register, the high 16 in metadata) and moved back on a miss.
      `${c0} protocol all flower action pedit ex munge eth dst set 0a:bb:00:00:00:09 munge eth src set 0e:cc:00:00:00:0a pipe action goto chain 1`,
    ][k]!;
  });
const rewriteLine = rewriteLineOn(dev);

// Masked rewrites as a guest OVS emits them (issue 11 section 5): `retain`, DSCP-only/ECN-only tos, and partial
// MAC/IPv4/IPv6 words (tc syntax has no retain for addresses, so `keep` masks bits of a key word afterwards).
// Some redirect, some jump over a pinned field (restored on a miss), some trap (a partial DSCP, pass at the end).
const maskedRule = fc
  .tuple(dev, dev, fc.integer({ min: 1, max: 4 }), fc.nat(11))
  .map(([d, to, prio, k]) => {
    const c0 = `dev ${d} ingress prio ${prio}`, c1 = `dev ${d} ingress chain 1 prio ${prio}`;
    const out = `pipe action mirred egress redirect dev ${to}`;
    const shapes: [string, [string, number, number]?][] = [
      [`${c0} protocol ip flower ip_proto tcp action pedit ex munge ip tos set 0x28 retain 0xfc ${out}`],
      [`${c0} protocol ip flower action pedit ex munge ip tos set 0x3 retain 0x3 pipe action pedit ex munge ip ttl dec ${out}`],
      [`${c0} protocol ip flower ip_proto udp action pedit ex munge udp dport set 0x1234 retain 0xff00 munge udp sport set 7 retain 0xf ${out}`],
      [`${c0} protocol all flower action pedit ex munge eth dst set 02:00:00:00:00:09 ${out}`, ['eth', 0, 0xffffff00]],
      [`${c0} protocol all flower src_mac 02:00:00:00:00:01 action pedit ex munge eth src set 02:00:00:00:00:0a ${out}`, ['eth', 8, 0xff000000]],
      [`${c0} protocol ip flower action pedit ex munge ip dst set 10.9.9.9 ${out}`, ['ip4', 16, 0xff000000]],
      [`${c0} protocol ipv6 flower action pedit ex munge ip6 src set 2001:db8::9 ${out}`, ['ip6', 8, 0xffffffff]],
      [`${c0} protocol ip flower ip_tos 0x10/0xff action pedit ex munge ip tos set 0x28 retain 0xfc pipe action goto chain 1`],
      [`${c0} protocol ip flower dst_ip 10.0.0.2 action pedit ex munge ip dst set 192.168.0.0 pipe action goto chain 1`, ['ip4', 16, 0x0000ffff]],
      [`${c0} protocol ip flower action pedit ex munge ip tos set 0x20 retain 0xf0 ${out}`],
      [`${c1} protocol ip flower ip_tos 0x28/0xfc action pedit ex munge tcp dport set 0x50 retain 0xff pipe action drop`],
      [`${c1} protocol ip flower dst_ip 192.168.0.2 action pedit ex munge ip tos set 0x1 retain 0x3 pipe action pass`],
    ];
    const [line, keep] = shapes[k]!;
    const r = parseFilter(splitArgs(line));
    if (!r.ok) throw new Error(`bad masked rule ${line}: ${r.error.message}`);
    if (!keep) return r.value;
    const [htype, offset, bits] = keep;
    const actions = r.value.actions.map((a) => (a.kind === 'pedit' ? { ...a, keys: a.keys.map((x) => (x.htype === htype && x.offset === offset ? { ...x, mask: (x.mask | bits) >>> 0, value: (x.value & ~bits) >>> 0 } : x)) } : a));
    return { ...r.value, actions };
  });

// ct nat without a goto (issue 11 section 3), as a guest OVS emits it before an output: src and dst, single
// addresses and ranges, with and without ports, IPv4 and IPv6, then redirect, mirror, drop, a rewrite of the
// other side, a vlan push. Trapped: a rewrite of the NATed side, a hand-off after the NAT. One with a goto.
const natLine = fc
  .tuple(dev, dev, fc.constantFrom(0, 0, 1), fc.integer({ min: 1, max: 4 }), fc.nat(11))
  .map(([d, to, chain, prio, k]) => {
    const head = `dev ${d} ingress${chain ? ' chain 1' : ''} prio ${prio}`;
    const out = `pipe action mirred egress redirect dev ${to}`;
    return [
      `${head} protocol ip flower ip_proto udp action ct commit zone 4 nat src addr 10.9.9.9 ${out}`,
      `${head} protocol ip flower ip_proto tcp action ct commit zone 4 nat src addr 10.9.9.9-10.9.9.20 port 4000-4100 ${out}`,
      `${head} protocol ip flower dst_ip 10.0.0.2 action ct commit zone 5 nat dst addr 10.8.8.8 port 8080 pipe action mirred egress mirror dev ${to} pipe action mirred egress redirect dev ${d}`,
      `${head} protocol ip flower action ct commit zone 5 mark 0x10/0xff nat dst addr 10.8.8.1-10.8.8.9 pipe action drop`,
      `${head} protocol ipv6 flower ip_proto udp action ct commit zone 6 nat src addr 2001:db8::9 port 5353 ${out}`,
      `${head} protocol ip flower ip_proto udp action ct commit zone 4 nat src addr 10.9.9.9 pipe action pedit ex munge ip dst set 10.7.7.7 ${out}`,
      `${head} protocol ip flower ip_proto tcp action ct commit zone 5 nat dst addr 10.8.8.8 port 80-90 pipe action csum ip tcp ${out}`,
      `${head} protocol ip flower ip_proto udp action ct commit zone 4 nat src addr 10.9.9.9 pipe action vlan push id 5 ${out}`,
      `${head} protocol ip flower action ct zone 5 nat ${out}`,
      `${head} protocol ip flower ip_proto udp action ct commit zone 7 nat src addr 10.9.9.9 pipe action pedit ex munge ip src set 10.0.0.1 ${out}`,
      `${head} protocol ip flower dst_ip 10.0.0.2 action ct commit zone 7 nat dst addr 10.8.8.8 pipe action pass`,
      `${head} protocol ip flower ip_proto udp action ct commit zone 4 nat src addr 10.9.9.9 pipe action goto chain 1`,
    ][k]!;
  });

// Tag changes with a goto after them (issue 11 section 2): push, pop and modify of a pinned tag (OVN's localnet
// pop then ct), of the declared TPID and of the other one, and later chains whose VLAN filters meet, miss or change
// the tag again: the hand-off must put the tag stack back, and later chains must see the TPID the frame has.
const vlanGotoLine = (devs: fc.Arbitrary<string>) => fc
  .tuple(devs, devs, fc.integer({ min: 1, max: 4 }), fc.nat(10))
  .map(([d, to, prio, k]) => {
    const c0 = `dev ${d} ingress prio ${prio}`, c1 = `dev ${d} ingress chain 1 prio ${prio}`;
    return [
      `${c0} protocol ip flower action vlan push id 5 priority 3 pipe action goto chain 1`,
      `${c0} protocol ip flower ip_proto udp action vlan push id 5 protocol 802.1ad pipe action goto chain 1`,
      `${c0} protocol 802.1Q flower vlan_id 5 vlan_prio 3 action vlan pop pipe action goto chain 1`,
      `${c0} protocol 802.1ad flower vlan_id 100 vlan_prio 3 vlan_ethtype ip action vlan pop pipe action goto chain 1`,
      `${c0} protocol 802.1Q flower vlan_id 5 vlan_prio 3 action vlan modify id 6 pipe action goto chain 1`,
      `${c0} protocol 802.1Q flower vlan_id 5 vlan_prio 3 vlan_ethtype ip action vlan pop pipe action ct zone 3 pipe action goto chain 1`,
      `${c1} protocol 802.1Q flower vlan_id 5 action drop`,
      `${c1} protocol 802.1ad flower vlan_id 5 action mirred egress redirect dev ${to}`,
      `${c1} protocol ip flower ip_proto udp action mirred egress redirect dev ${to}`,
      `${c1} protocol all flower action vlan push id 6 pipe action goto chain 2`,
      `dev ${d} ingress chain 2 prio ${prio} protocol ip flower ip_proto tcp action drop`,
    ][k]!;
  });

/** Rule sets of 2 to 6 lines of one shape, on one representor, so that they meet each other often (one protocol per prio). */
function oneRepresentorSet(line: (devs: fc.Arbitrary<string>) => fc.Arbitrary<string>, d: string): fc.Arbitrary<FlowerRule[]> {
  return fc.array(line(fc.constant(d)), { minLength: 2, maxLength: 6 }).map((lines) => {
    const protoAt = new Map<string, number>();
    return lines.flatMap((l) => {
      const r = parseFilter(splitArgs(l));
      if (!r.ok) throw new Error(`bad rule ${l}: ${r.error.message}`);
      const k = `${r.value.chain}|${r.value.prio}`;
      if ((protoAt.get(k) ?? r.value.protocol) !== r.value.protocol) return [];
      protoAt.set(k, r.value.protocol);
      return [r.value];
    });
  });
}

/** Tag changes then goto alone. */
export const arbVlanGotoRuleset = (d: string) => oneRepresentorSet(vlanGotoLine, d);
/** Rewrites then goto alone: a rewrite and a later miss meet often. */
export const arbRewriteGotoRuleset = (d: string) => oneRepresentorSet(rewriteLineOn, d);

/** `base` rule sets with up to three of the extra shapes mixed in (one protocol per prio, as cls_api.c insists). */
export function arbExtraRuleset(base: fc.Arbitrary<FlowerRule[]>): fc.Arbitrary<FlowerRule[]> {
  return fc.tuple(base, fc.array(extraLine, { maxLength: 3 }), fc.array(rewriteLine, { maxLength: 4 }), fc.array(maskedRule, { maxLength: 3 }), fc.array(natLine, { maxLength: 3 }), fc.array(vlanGotoLine(dev), { maxLength: 3 }), fc.nat()).map(([rules, extra, rewrites, masked, nats, vlans, at]) => {
    const out = [...rules];
    const parsed = [...extra, ...rewrites, ...nats, ...vlans].map((l) => {
      const r = parseFilter(splitArgs(l));
      if (!r.ok) throw new Error(`bad extra rule ${l}: ${r.error.message}`);
      return r.value;
    });
    const protoAt = new Map(out.map((r) => [`${r.dev}|${r.chain}|${r.prio}`, r.protocol]));
    for (const r of [...parsed, ...masked]) {
      const k = `${r.dev}|${r.chain}|${r.prio}`;
      if ((protoAt.get(k) ?? r.protocol) !== r.protocol) continue;
      protoAt.set(k, r.protocol);
      out.splice(at % (out.length + 1), 0, r);
    }
    return out;
  });
}
