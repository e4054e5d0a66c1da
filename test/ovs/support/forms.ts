// Flow forms the translators emit that random rules rarely reach (pedit rewrites,
// NAT, mpls, sample, ...): the native encoder's tests install and compare them.
import type { OfFlow } from '../../../ovs/openflow/flow.js';
import { parseFlow } from '../../../ovs/openflow/parse.js';

/** A hand-written flow in ovs-ofctl text, as the flow value it reads as. */
export const flow = parseFlow;

export const RARE_FORMS: OfFlow[] = [
  // Rewrite-then-goto's restore path (docs/mapping.md, "Misses after rewrites"): registers name the rewriting rule, table 253 restores.
  flow(253, 10, 0x10000007000000a1n, 'reg14=3,reg2=1,dl_type=0x800', 'set_field:10.0.0.1->ip_src'),
  flow(2, 59999, 0x10000007000000a2n, 'in_port=100,dl_type=0x800,vlan_tci=0x0000/0xffff,reg15=0x0/0x884', 'set_field:1->reg2,set_field:0x884/0x884->reg15,set_field:10.0.0.9->ip_src,resubmit(,5)'),
  flow(253, 1, 0x30000000000000a3n, 'in_port=100,reg14=0', 'set_field:3->reg14,resubmit(,253),output:200'),
  flow(3, 10, 0x501n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_proto=6', 'mod_dl_dst:02:00:00:00:00:09,mod_dl_src:02:00:00:00:00:0a,mod_nw_src:10.1.1.1,mod_nw_dst:10.2.2.2,set_field:5->tcp_src,set_field:80->tcp_dst,output:2'),
  flow(3, 11, 0x502n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_proto=17', 'set_field:53->udp_src,set_field:5353->udp_dst,set_field:10->ip_dscp,set_field:2->nw_ecn,mod_nw_ttl:9,output:2'),
  flow(3, 12, 0x503n, 'in_port=1,dl_type=0x86dd,vlan_tci=0x0000/0x1000', 'set_field:2001:db8::9->ipv6_src,set_field:2001:db8::10->ipv6_dst,dec_ttl,output:2'),
  flow(3, 13, 0x504n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_ttl=0', 'mod_nw_ttl:255,in_port'),
  flow(3, 14, 0x505n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct(commit,zone=5,nat(src=10.0.0.1-10.0.0.9:1000-2000),table=4)'),
  flow(3, 15, 0x506n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000,nw_proto=6', 'ct(commit,zone=5,nat(dst=10.0.0.1:80),table=4)'),
  flow(3, 16, 0x507n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct(zone=5,nat,table=4)'),
  flow(3, 17, 0x508n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct(commit,force,zone=5,nat(src),exec(set_field:0x1/0xff->ct_mark,set_field:0x5/0xff->ct_label),table=4)'),
  flow(3, 18, 0x509n, 'in_port=1,dl_type=0x86dd,vlan_tci=0x0000/0x1000', 'ct(commit,zone=6,nat(src=2001:db8::1-2001:db8::5),table=4)'),
  flow(3, 19, 0x50an, 'in_port=1', 'sample(probability=100,collector_set_id=7),output:2'),
  flow(3, 20, 0x50bn, 'in_port=1,dl_type=0x8847,mpls_label=5,mpls_tc=1,mpls_bos=1,mpls_ttl=64', 'pop_mpls:0x800,output:2'),
  flow(3, 21, 0x50cn, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'push_mpls:0x8847,set_field:7->mpls_label,set_field:1->mpls_tc,set_field:9->mpls_ttl,output:2'),
  flow(3, 22, 0x50dn, 'in_port=1,vlan_tci=0x1000/0x1000', 'pop_vlan,push_vlan:0x88a8,set_field:4196->vlan_vid,set_field:3->vlan_pcp,output:2'),
  flow(3, 23, 0x50en, 'reg0=5,reg1=0x10/0xf0', 'set_field:9->reg0,set_field:0x5/0xff->pkt_mark,resubmit(,4)'),
  flow(3, 24, 0x50fn, 'ct_state=+trk+new-inv,ct_zone=5,ct_mark=0x10/0xf0,ct_label=0x1/0x1', 'goto_table:5'),
  flow(3, 25, 0x510n, 'in_port=1', 'meter:5,push_vlan:0x8100,set_field:4106->vlan_vid,goto_table:4'),
  flow(3, 26, 0x511n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0x1000', 'ct_clear,clone(pop_vlan,output:3),output:2'),
  // Masked pedit (retain, partial MAC/IP masks) as OpenFlow 1.5 masked set_field (docs/mapping.md, pedit rows).
  flow(3, 27, 0x512n, 'in_port=1', 'set_field:00:00:00:00:00:09/00:00:00:ff:ff:ff->eth_dst,set_field:02:00:00:00:00:00/ff:ff:ff:00:00:00->eth_src,output:2'),
  flow(3, 28, 0x513n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0xffff', 'set_field:0.0.1.1/0.0.255.255->ip_src,set_field:10.0.0.0/255.0.0.0->ip_dst,set_field:10->ip_dscp,output:2'),
  flow(3, 29, 0x514n, 'in_port=1,dl_type=0x86dd,vlan_tci=0x0000/0xffff', 'set_field:::9/::ffff->ipv6_src,set_field:2001:db8::/ffff:ffff::->ipv6_dst,output:2'),
  // Part of DSCP, ECN or ttl: load: to a bit range, a masked Set-Field on fields with no masked match.
  flow(3, 45, 0x52fn, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0xffff', 'load:0x2->OXM_OF_IP_DSCP[2..5],load:0x1->OXM_OF_IP_ECN[0],load:0x5->NXM_NX_IP_TTL[0..3],output:2'),
  flow(3, 30, 0x515n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0xffff,nw_proto=6', 'set_field:0x1200/0xff00->tcp_src,set_field:0x5/0xff->tcp_dst,set_field:2->nw_ecn,output:2'),
  flow(3, 31, 0x516n, 'in_port=1,dl_type=0x800,vlan_tci=0x0000/0xffff,nw_proto=17', 'set_field:0x3500/0xff00->udp_src,set_field:0x35/0xff->udp_dst,resubmit(,4)'),
];
