// Rule sets that are hard on a translator: overlapping matches over small value
// pools (the same pools test/gen/packet.ts draws packets from), several prios,
// chains and goto, mirrors, rewrites, ct, and rules that cannot be offloaded.
import fc from 'fast-check';
import type { FlowerRule } from '../../rules/model.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';

export const DEVS = ['uplink', 'vf0', 'vf1'];
const dev = fc.constantFrom(...DEVS);

const ipKeys = fc.subarray(['ip_proto udp', 'dst_ip 10.0.0.2', 'dst_ip 10.0.0.0/24', 'src_ip 10.0.0.1', 'dst_mac 02:00:00:00:00:02', 'ip_flags nofrag', 'ip_flags nofirstfrag', 'ip_flags frag/firstfrag', 'ip_ttl 64', 'ip_tos 0x10', 'ip_ttl 0x40/0xc0'], { maxLength: 3 });
const l4Keys = fc.constantFrom('', 'dst_port 80', 'dst_port 1000-1999', 'src_port 53', 'dst_port 0x3e8/0xfff8');

const matchText = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(ipKeys, fc.constantFrom('udp', 'tcp'), l4Keys).map(([keys, proto, l4]) => {
    const k = keys.filter((x) => !x.startsWith('ip_proto'));
    return `protocol ip flower ${l4 ? `ip_proto ${proto} ${l4} ` : keys.includes('ip_proto udp') ? 'ip_proto udp ' : ''}${k.join(' ')}`;
  }) },
  { weight: 2, arbitrary: fc.constantFrom('protocol ipv6 flower', 'protocol ipv6 flower ip_proto udp', 'protocol ipv6 flower dst_ip 2001:db8::2', 'protocol ipv6 flower ip_proto tcp dst_port 80', 'protocol ipv6 flower ip_proto icmpv6 type 8', 'protocol ipv6 flower src_ip 2001:db8::/64 ip_tos 0x28/0xfc') },
  { weight: 2, arbitrary: fc.constantFrom('protocol ip flower ip_proto tcp tcp_flags 0x2/0x2', 'protocol ip flower ip_proto tcp tcp_flags 0x12', 'protocol ip flower ip_proto icmp type 8 code 0', 'protocol ip flower ip_proto icmp type 8/0xf8', 'protocol ip flower ip_proto udp dst_port 1000-1999 src_port 50-60') },
  { weight: 1, arbitrary: fc.constantFrom('protocol arp flower', 'protocol arp flower arp_op request', 'protocol arp flower arp_tip 10.0.0.2', 'protocol arp flower arp_sip 10.0.0.0/24 arp_sha 02:00:00:00:00:01', 'protocol arp flower arp_op 0x1/0x3') },
  { weight: 1, arbitrary: fc.constantFrom('protocol all flower num_of_vlans 0', 'protocol all flower num_of_vlans 0 dst_mac ff:ff:ff:ff:ff:ff') },
  { weight: 2, arbitrary: fc.constantFrom('protocol all flower', 'protocol all flower dst_mac 02:00:00:00:00:02', 'protocol all flower src_mac 02:00:00:00:00:01/ff:ff:ff:ff:ff:00') },
  { weight: 1, arbitrary: fc.constantFrom('protocol 802.1Q flower vlan_id 5', 'protocol ip flower enc_key_id 7') },
);

const actionText = (ip: boolean, chain: number) =>
  fc.oneof(
    fc.constantFrom('action drop', 'action pass', 'action trap', 'action continue'),
    dev.map((d) => `action mirred egress redirect dev ${d}`),
    fc.tuple(dev, dev).map(([a, b]) => `action mirred egress mirror dev ${a} action mirred egress redirect dev ${b}`),
    dev.map((d) => `action vlan push id 7 priority 3 action mirred egress redirect dev ${d}`),
    dev.map((d) => `action mirred ingress redirect dev ${d}`),
    dev.map((d) => `action police rate 8mbit burst 100k conform-exceed drop/pipe action mirred egress redirect dev ${d}`),
    dev.map((d) => `action sample rate 10 group 5 action mirred egress redirect dev ${d}`),
    dev.map((d) => `action skbedit mark 5/0xff action mirred egress redirect dev ${d}`),
    dev.map((d) => `action csum ip4h pipe action mirred egress mirror dev ${d} action drop`),
    ...(ip
      ? [
          dev.map((d) => `action pedit ex munge ip dst set 10.9.9.9 munge eth src set 02:00:00:00:00:99 pipe action mirred egress redirect dev ${d}`),
          dev.map((d) => `action pedit ex munge ip ttl dec pipe action mirred egress redirect dev ${d}`),
          fc.constant('action pedit ex munge ip ttl set 9 pipe action pass'),
        ]
      : []),
    ...(chain === 0
      ? [
          fc.constant('action goto chain 1'),
          ...(ip
            ? [
                fc.constant('action ct zone 3 pipe action goto chain 1'),
                fc.constant('action ct commit zone 3 mark 0x10 pipe action goto chain 1'),
                // Rewrites then goto, whether or not the match pins what they write: a miss in chain 1 puts it back.
                fc.constantFrom(
                  'action pedit ex munge ip dst set 10.9.9.9 pipe action goto chain 1',
                  'action pedit ex munge ip src set 10.0.0.9 munge ip ttl dec pipe action goto chain 1',
                  'action pedit ex munge ip tos set 0x28 retain 0xfc pipe action goto chain 1',
                  'action pedit ex munge udp dport set 4789 pipe action goto chain 1',
                  'action pedit ex munge ip ttl set 9 munge tcp sport set 1024 pipe action goto chain 1',
                ),
              ]
            : []),
        ]
      : ip
        ? [dev.map((d) => `action ct commit zone 3 mark 0x10/0xff pipe action mirred egress redirect dev ${d}`), fc.constant('action ct clear pipe action drop')]
        : []),
  );

export const arbRuleLine = fc
  .tuple(dev, fc.constantFrom(0, 0, 0, 1), fc.integer({ min: 1, max: 4 }), matchText, fc.boolean(), fc.nat(99))
  .chain(([d, chain, prio, match, skipSw, pick]) =>
    actionText(match.startsWith('protocol ip ') && !match.includes('enc_key_id'), chain).map((act) => {
      const m = match.replace(/ flower/, ` flower${skipSw && pick < 20 ? ' skip_sw' : ''}`);
      const ct = chain === 1 && pick < 30 && m.startsWith('protocol ip ') ? (pick < 15 ? ' ct_state +trk+new' : ' ct_state +trk-est ct_zone 3') : '';
      return `dev ${d} ingress${chain ? ' chain 1' : ''} prio ${prio} ${m}${ct} ${act}`;
    }),
  );

export function arbRuleset(): fc.Arbitrary<FlowerRule[]> {
  return fc.array(arbRuleLine, { minLength: 1, maxLength: 8 }).map((lines) => {
    const out: FlowerRule[] = [];
    const protoAt = new Map<string, number>();
    for (const l of lines) {
      const r = parseFilter(splitArgs(l));
      if (!r.ok) throw new Error(`generator made a bad rule: ${l}: ${r.error.message}`);
      // cls_api.c: one prio of a chain holds one protocol; a second protocol there is refused (EINVAL).
      const k = `${r.value.dev}|${r.value.chain}|${r.value.prio}`;
      if ((protoAt.get(k) ?? r.value.protocol) !== r.value.protocol) continue;
      protoAt.set(k, r.value.protocol);
      out.push(r.value);
    }
    return out;
  });
}
