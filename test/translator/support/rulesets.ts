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
const rewriteLine = fc
  .tuple(dev, dev, fc.integer({ min: 1, max: 4 }), fc.nat(12))
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
    ][k]!;
  });

/** `base` rule sets with up to three of the extra shapes mixed in (one protocol per prio, as cls_api.c insists). */
export function arbExtraRuleset(base: fc.Arbitrary<FlowerRule[]>): fc.Arbitrary<FlowerRule[]> {
  return fc.tuple(base, fc.array(extraLine, { maxLength: 3 }), fc.array(rewriteLine, { maxLength: 4 }), fc.nat()).map(([rules, extra, rewrites, at]) => {
    const out = [...rules];
    const lines = [...extra, ...rewrites];
    const protoAt = new Map(out.map((r) => [`${r.dev}|${r.chain}|${r.prio}`, r.protocol]));
    for (const l of lines) {
      const r = parseFilter(splitArgs(l));
      if (!r.ok) throw new Error(`bad extra rule ${l}: ${r.error.message}`);
      const k = `${r.value.dev}|${r.value.chain}|${r.value.prio}`;
      if ((protoAt.get(k) ?? r.value.protocol) !== r.value.protocol) continue;
      protoAt.set(k, r.value.protocol);
      out.splice(at % (out.length + 1), 0, r.value);
    }
    return out;
  });
}
