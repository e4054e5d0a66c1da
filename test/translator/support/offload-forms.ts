// The hand-written forms of docs/mapping.md (one rule or a chain pair each,
// frames that meet it) as input for an OVS tc-offload check, and a per-form
// summary of its answer: the evidence of the mapping's "offloadable" column,
// and whether the frames came out where and as the reference classifier says.
//   npx vite-node test/translator/support/offload-forms.ts make IN.json
//   npx vite-node test/translator/support/offload-forms.ts score OUT.json
import { readFileSync, writeFileSync } from 'node:fs';
import type { Packet } from '../../../rules/packet.js';
import { parseFilter, splitArgs } from '../../../rules/tcsyntax/index.js';
import { flowLine, meterLine } from '../../../ovs/openflow/flow.js';
import { translate } from '../../../translator/index.js';
import { defaultPortMap } from '../../../translator/portmap.js';
import { frameView, packetToHex, packetView } from '../../offload/frame.js';
import { classify } from '../../../rules/classify.js';

const base: Packet = {
  inDev: 'vf0', dstMac: '02:00:00:00:00:02', srcMac: '02:00:00:00:00:01', vlans: [], ethType: 0x0800,
  ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, tos: 0, ttl: 64, frag: 'no' }, l4: { src: 1000, dst: 80 },
  ct: { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) }, mark: 0, priority: 0,
};
const pkt = (f: (p: Packet) => void): Packet => {
  const p = structuredClone(base);
  f(p);
  return p;
};
const udp = pkt(() => {});
const tcp = pkt((p) => { p.ip!.proto = 6; p.tcpFlags = 0x02; });
const sctp = pkt((p) => { p.ip!.proto = 132; });
const icmp = pkt((p) => { p.ip!.proto = 1; delete p.l4; p.icmp = { type: 8, code: 0 }; });
const v6 = pkt((p) => { p.ethType = 0x86dd; p.ip = { version: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: 17, tos: 0, ttl: 64, frag: 'no' }; });
const icmp6 = pkt((p) => { p.ethType = 0x86dd; p.ip = { version: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: 58, tos: 0, ttl: 64, frag: 'no' }; delete p.l4; p.icmp = { type: 128, code: 0 }; });
const arp = pkt((p) => { p.ethType = 0x0806; delete p.ip; delete p.l4; p.arp = { op: 1, sip: '10.0.0.1', tip: '10.0.0.2', sha: '02:00:00:00:00:01', tha: '00:00:00:00:00:00' }; });
const lldp = pkt((p) => { p.ethType = 0x88cc; delete p.ip; delete p.l4; });
const mpls = pkt((p) => { p.ethType = 0x8847; p.mpls = [{ label: 100, tc: 0, bos: 1, ttl: 64 }]; delete p.l4; p.ip = undefined; });
const tag = (p: Packet, tpid = 0x8100, vid = 5, pcp = 3) => pkt((q) => { Object.assign(q, structuredClone(p)); q.vlans = [{ tpid, vid, pcp }]; });
const frag = (p: Packet, k: 'first' | 'later') => pkt((q) => { Object.assign(q, structuredClone(p)); q.ip!.frag = k; });
const mix = [udp, tag(udp), tag(udp, 0x88a8, 100, 6), arp, lldp];

/** name (the mapping row) -> rules (after `tc filter add dev vf0 ingress`), frames sent on vf0. */
export const FORMS: [string, string[], Packet[]][] = [
  ['protocol ip', ['prio 1 protocol ip flower action drop'], mix],
  ['protocol all', ['prio 1 protocol all flower action mirred egress redirect dev vf1'], mix],
  ['num_of_vlans 0', ['prio 1 protocol all flower num_of_vlans 0 action drop'], mix],
  ['dst_mac src_mac masked', ['prio 1 protocol all flower dst_mac 02:00:00:00:00:02 src_mac 02:00:00:00:00:00/ff:ff:ff:ff:ff:00 action drop'], mix],
  ['ipv4 addresses, ip_proto', ['prio 1 protocol ip flower ip_proto udp src_ip 10.0.0.0/24 dst_ip 10.0.0.2 action drop'], [udp, tcp]],
  ['ipv6 addresses', ['prio 1 protocol ipv6 flower src_ip 2001:db8::/64 dst_ip 2001:db8::2 action drop'], [v6, icmp6]],
  ['ports masked', ['prio 1 protocol ip flower ip_proto udp src_port 1000 dst_port 80/0xfff0 action drop'], [udp]],
  ['port range', ['prio 1 protocol ip flower ip_proto tcp dst_port 70-90 action drop'], [tcp]],
  ['sctp ports', ['prio 1 protocol ip flower ip_proto sctp dst_port 80 action drop'], [sctp]],
  ['tcp_flags', ['prio 1 protocol ip flower ip_proto tcp tcp_flags 0x2/0x2 action drop'], [tcp]],
  ['ip_tos dscp+ecn', ['prio 1 protocol ip flower ip_tos 0x0/0xff action drop'], [udp]],
  ['ip_tos enumerated', ['prio 1 protocol ip flower ip_tos 0x0/0xf0 action drop'], [udp]],
  ['ip_ttl', ['prio 1 protocol ip flower ip_ttl 64 action drop'], [udp]],
  ['icmp type/code', ['prio 1 protocol ip flower ip_proto icmp type 8 code 0 action drop'], [icmp]],
  ['icmpv6 type', ['prio 1 protocol ipv6 flower ip_proto icmpv6 type 128 action drop'], [icmp6]],
  ['ip_flags frag (IPv4)', ['prio 1 protocol ip flower ip_flags frag action drop'], [frag(udp, 'first'), frag(udp, 'later'), udp]],
  ['ip_flags nofirstfrag (IPv4)', ['prio 1 protocol ip flower ip_flags nofirstfrag action drop'], [frag(udp, 'first'), frag(udp, 'later'), udp]],
  ['IPv6 fragments', ['prio 1 protocol ipv6 flower ip_proto udp action drop'], [frag(v6, 'first'), frag(v6, 'later')]],
  ['arp keys', ['prio 1 protocol arp flower arp_op request arp_sip 10.0.0.1 arp_tip 10.0.0.0/24 arp_sha 02:00:00:00:00:01 action drop'], [arp]],
  ['mpls keys', ['prio 1 protocol mpls_uc flower mpls_label 100 mpls_ttl 64 action drop'], [mpls]],
  ['ct_state -trk', ['prio 1 protocol ip flower ct_state -trk action drop'], [udp]],
  ['trap: 802.1Q (8 PCP flows)', ['prio 1 protocol 802.1Q flower action drop'], mix],
  ['trap: 802.1ad vid+prio', ['prio 1 protocol 802.1ad flower vlan_id 100 vlan_prio 6 action drop'], mix],
  ['trap: num_of_vlans 1', ['prio 1 protocol all flower num_of_vlans 1 vlan_id 5 action drop'], mix],
  ['trap: enc_key_id', ['prio 1 protocol ip flower enc_key_id 7 dst_ip 10.0.0.2 action drop'], mix],
  ['trap: skip_hw', ['prio 1 protocol ip flower skip_hw dst_ip 10.0.0.2 action drop'], mix],
  ['miss (no rule matches)', ['prio 1 protocol ip flower dst_ip 10.9.9.9 action drop'], mix],
  ['mirred egress mirror+redirect', ['prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action mirred egress redirect dev uplink'], [udp]],
  ['mirred ingress redirect', ['prio 1 protocol ip flower action mirred ingress redirect dev vf1'], [udp]],
  ['pass', ['prio 1 protocol ip flower action pass'], [udp]],
  ['goto chain (resubmit)', ['prio 1 protocol ip flower action goto chain 1', 'chain 1 prio 1 protocol ip flower dst_ip 10.0.0.2 action drop'], [udp]],
  ['vlan push', ['prio 1 protocol ip flower action vlan push id 7 priority 3 pipe action mirred egress redirect dev vf1'], [udp]],
  ['vlan pop (protocol all)', ['prio 1 protocol all flower action vlan pop pipe action mirred egress redirect dev vf1'], mix],
  ['vlan modify, PCP kept (protocol all)', ['prio 1 protocol all flower action vlan modify id 9 pipe action mirred egress redirect dev vf1'], mix],
  ['vlan modify 802.1ad priority (protocol all)', ['prio 1 protocol all flower action vlan modify id 9 protocol 802.1ad priority 5 pipe action mirred egress redirect dev vf1'], mix],
  ['vlan push 802.1ad', ['prio 1 protocol ip flower action vlan push protocol 802.1ad id 7 pipe action mirred egress redirect dev vf1'], [udp]],
  ['pedit eth + ipv4 addrs', ['prio 1 protocol ip flower action pedit ex munge eth src set 02:00:00:00:00:99 munge ip dst set 10.9.9.9 pipe action mirred egress redirect dev vf1'], [udp]],
  ['pedit ipv6 addr', ['prio 1 protocol ipv6 flower action pedit ex munge ip6 dst set 2001:db8::9 pipe action mirred egress redirect dev vf1'], [v6]],
  ['pedit ip tos', ['prio 1 protocol ip flower action pedit ex munge ip tos set 0x28 pipe action mirred egress redirect dev vf1'], [udp]],
  ['pedit udp/tcp port', ['prio 1 protocol ip flower ip_proto udp action pedit ex munge udp dport set 53 pipe action mirred egress redirect dev vf1'], [udp]],
  ['pedit ttl set', ['prio 1 protocol ip flower action pedit ex munge ip ttl set 9 pipe action mirred egress redirect dev vf1'], [udp]],
  ['pedit ttl dec (3 flows)', ['prio 1 protocol ip flower action pedit ex munge ip ttl dec pipe action mirred egress redirect dev vf1'], [udp, pkt((p) => { p.ip!.ttl = 1; }), pkt((p) => { p.ip!.ttl = 0; })]],
  ['pedit ip6 hoplimit dec', ['prio 1 protocol ipv6 flower action pedit ex munge ip6 hoplimit dec pipe action mirred egress redirect dev vf1'], [v6]],
  ['ct commit (no goto)', ['prio 1 protocol ip flower action ct commit zone 3 mark 0x10/0xff pipe action mirred egress redirect dev vf1'], [udp]],
  ['ct + goto chain (recirculation)', ['prio 1 protocol ip flower action ct zone 3 pipe action goto chain 1', 'chain 1 prio 1 protocol ip flower ct_state +trk+new action mirred egress redirect dev vf1'], [udp]],
  ['ct clear', ['prio 1 protocol ip flower action ct clear pipe action mirred egress redirect dev vf1'], [udp]],
  ['police kbps (meter)', ['prio 1 protocol ip flower action police rate 8mbit burst 100k conform-exceed drop/pipe action mirred egress redirect dev vf1'], [udp]],
  ['police pps (meter)', ['prio 1 protocol ip flower action police pkts_rate 1000 pkts_burst 100 conform-exceed drop/pipe action mirred egress redirect dev vf1'], [udp]],
  ['mpls push', ['prio 1 protocol ip flower action mpls push label 100 ttl 64 pipe action mirred egress redirect dev vf1'], [udp]],
  ['mpls pop', ['prio 1 protocol mpls_uc flower action mpls pop protocol ip pipe action mirred egress redirect dev vf1'], [mpls]],
  ['mpls modify', ['prio 1 protocol mpls_uc flower action mpls modify label 200 pipe action mirred egress redirect dev vf1'], [mpls]],
  ['skbedit mark, then redirect (the mark left out)', ['prio 1 protocol ip flower action skbedit mark 5 pipe action mirred egress redirect dev vf1'], [udp, tcp]],
  ['skbedit mark, then mirred ingress (trapped)', ['prio 1 protocol ip flower action skbedit mark 5 pipe action mirred ingress redirect dev vf1'], [udp, tcp]],
  ['sample (trapped)', ['prio 1 protocol ip flower action sample rate 10 group 5 pipe action mirred egress redirect dev vf1'], [udp]],
  ['rewrite, goto, hit in chain 1', ['prio 1 protocol ip flower src_ip 10.0.0.1 ip_proto udp dst_port 80 action pedit ex munge ip src set 192.168.1.1 munge udp dport set 53 pipe csum ip udp pipe action goto chain 1', 'chain 1 prio 1 protocol ip flower src_ip 192.168.1.1 action mirred egress redirect dev vf1'], [udp, tcp]],
  ['rewrite, goto, miss in chain 1 (restored)', ['prio 1 protocol all flower dst_mac 02:00:00:00:00:02 action pedit ex munge eth dst set 02:00:00:00:00:77 pipe action goto chain 1', 'chain 1 prio 1 protocol ip flower dst_ip 10.9.9.9 action drop'], [udp, arp]],
  ['rewrite, goto, trap in chain 1 (restored)', ['prio 1 protocol ip flower ip_ttl 64 action pedit ex munge ip ttl dec pipe action goto chain 1', 'chain 1 prio 1 protocol ip flower skip_hw ip_ttl 63 action drop'], [udp]],
  ['mirror then goto (trapped)', ['prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action goto chain 1', 'chain 1 prio 1 protocol ip flower action drop'], [udp, arp]],
];

export function formSets() {
  const ports = defaultPortMap(2);
  return FORMS.map(([name, lines, frames]) => {
    const rules = lines.map((l, i) => {
      const r = parseFilter(splitArgs(`dev vf0 ingress ${l}`));
      if (!r.ok) throw new Error(`${name}: ${r.error.message}`);
      return { id: i + 1, rule: r.value };
    });
    const t = translate({ rules, ports });
    const status = rules.map((r) => t.perRule.get(r.id)!).map((r) => (r.refused ? `refused: ${r.error!.message}` : r.offloaded ? 'offloaded' : `trapped: ${r.error!.message}`));
    // Where software alone puts each frame; `handed` is the frame as the representor would get it if hardware hands it
    // over untouched (a trap, a miss, pass), after which the guest's software does exactly that.
    const expected = frames.map((p) => ({
      alone: classify(rules.map((r) => r.rule), p).emits.map((e) => packetView(e.to.kind === 'port' ? e.to.dev : `${e.to.dev}rep`, e.packet)),
      handed: packetView(`${p.inDev}rep`, p),
      // test/offload/frame.ts writes no MPLS label stack: those frames cannot be compared yet.
      comparable: p.ethType !== 0x8847 && !lines.some((l) => l.includes('mpls')),
    }));
    return { name, status, expected, flows: t.flows.map(flowLine), meters: t.meters.map(meterLine), packets: frames.map((p) => ({ port: p.inDev, hex: packetToHex(p) })) };
  });
}

const [cmd, file] = process.argv.slice(2);
if (cmd === 'make') {
  const sets = formSets();
  writeFileSync(file!, JSON.stringify({ passes: 2, sets: sets.map(({ name, flows, meters, packets }) => ({ name, flows, meters, packets, tc_dump: 'none' })) }, null, 1));
  for (const s of sets) console.log(`${s.name}: ${s.status.join('; ')}`);
} else if (cmd === 'score') {
  const want = new Map(formSets().map((s) => [s.name, s.expected]));
  const out = JSON.parse(readFileSync(file!, 'utf8')) as { sets: { name: string; packets: { path: string; passes: { rx: { port: string; hex: string }[] }[] }[]; offload_failures: { reasons: string[] }[] }[] };
  for (const s of out.sets) {
    const tc = s.packets.filter((p) => p.path === 'tc').length;
    const why = [...new Set(s.offload_failures.flatMap((f) => (f.reasons.length ? f.reasons : ['silent'])))].join(' | ');
    // The last pass's frames out against software alone (order-free: copies leave through different ports).
    const key = (v: object) => JSON.stringify(v);
    const exp = want.get(s.name)!;
    const wrong = s.packets.filter((p, i) => {
      const e = exp[i]!;
      if (!e.comparable) return false;
      const got = p.passes[p.passes.length - 1]!.rx.map((r) => key(frameView(r.port, r.hex))).sort();
      if (got.length === 1 && got[0] === key(e.handed)) return false;
      return key(got) !== key(e.alone.map(key).sort());
    }).length;
    console.log(`${tc === s.packets.length ? 'yes' : tc ? 'PART' : 'NO'}\t${tc}/${s.packets.length}\tout ${wrong ? `${wrong} WRONG` : 'ok'}\t${s.name}\t${why}`);
  }
}
