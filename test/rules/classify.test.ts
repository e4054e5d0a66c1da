// tc flower semantics, one user-visible rule at a time, then totality over random input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify } from '../../rules/classify.js';
import { ConntrackTable, firstPacketState } from '../../rules/classify/conntrack.js';
import { CtState } from '../../rules/model.js';
import type { FlowerRule } from '../../rules/model.js';
import type { Packet } from '../../rules/packet.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { arbPacket } from '../gen/packet.js';
import { arbRule } from '../gen/rule.js';

const rule = (line: string): FlowerRule => {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(`${line}: ${r.error.message}`);
  return r.value;
};
const rules = (...lines: string[]) => lines.map(rule);

const udp = (over: Partial<Packet> = {}, dport = 5000, sport = 1234): Packet => ({
  inDev: 'vf0',
  dstMac: '02:00:00:00:00:02',
  srcMac: '02:00:00:00:00:01',
  vlans: [],
  ethType: 0x0800,
  ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, tos: 0, ttl: 64, frag: 'no' },
  l4: { src: sport, dst: dport },
  ct: { state: 0, zone: 0, mark: 0, label: '0'.repeat(32) },
  mark: 0,
  priority: 0,
  ...over,
});
const where = (o: ReturnType<typeof classify>) => o.emits.map((e) => `${e.to.kind}:${e.to.dev}`);

describe('reference classifier: order', () => {
  it('prio 1 drop beats prio 2 redirect, whatever the install order', () => {
    const rs = rules('dev vf0 ingress prio 2 protocol ip flower action mirred egress redirect dev vf1', 'dev vf0 ingress prio 1 protocol ip flower ip_proto udp action drop');
    expect(classify(rs, udp()).final).toBe('dropped');
  });

  it('within one prio, the mask inserted first is tried first', () => {
    const rs = rules(
      'dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.0/8 action mirred egress redirect dev vf1',
      'dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.2 action mirred egress redirect dev vf2',
    );
    expect(where(classify(rs, udp()))).toEqual(['port:vf1']);
    expect(where(classify([rs[1]!, rs[0]!], udp()))).toEqual(['port:vf2']);
  });

  it('a lone IP fragment reaching ct is held for reassembly and goes nowhere (act_ct.c: TC_ACT_STOLEN)', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol ip flower action ct zone 5 pipe action mirred egress redirect dev vf1');
    expect(where(classify(rs, udp()))).toEqual(['port:vf1']);
    const first = udp({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 17, tos: 0, ttl: 64, frag: 'first' }, l4: undefined });
    expect(classify(rs, first).emits).toEqual([]);
    // ct clear does not track: the fragment goes on.
    expect(where(classify(rules('dev vf0 ingress prio 1 protocol ip flower action ct clear pipe action mirred egress redirect dev vf1'), first))).toEqual(['port:vf1']);
  });

  it('a NAT on a connection a ct commit of the same zone confirmed earlier in the pass sets nothing up (nf_nat_setup_info)', () => {
    const nat = (zone: number) =>
      rules(
        'dev vf0 ingress prio 1 protocol ip flower action ct commit zone 5 pipe action goto chain 1',
        `dev vf0 ingress chain 1 prio 1 protocol ip flower action ct commit zone ${zone} nat src addr 10.9.9.9 pipe action mirred egress redirect dev vf1`,
      );
    expect(classify(nat(5), udp()).emits[0]!.packet.ip!.src).toBe('10.0.0.1');
    // Another zone is another, unconfirmed connection: NATed.
    expect(classify(nat(6), udp()).emits[0]!.packet.ip!.src).toBe('10.9.9.9');
    // Without the earlier commit the connection is unconfirmed: NATed.
    const once = rules('dev vf0 ingress prio 1 protocol ip flower action ct zone 5 pipe action ct commit zone 5 nat src addr 10.9.9.9 pipe action mirred egress redirect dev vf1');
    expect(classify(once, udp()).emits[0]!.packet.ip!.src).toBe('10.9.9.9');
  });

  it('an invalid packet gets no connection: +trk+inv, nothing committed or NATed, and a +trk+new rule misses it', () => {
    const rs = rules(
      'dev vf0 ingress prio 1 protocol ip flower action ct commit zone 5 mark 7 nat src addr 10.9.9.9 pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol ip flower ct_state +trk+new action mirred egress redirect dev vf1',
      'dev vf0 ingress chain 1 prio 2 protocol ip flower ct_state +trk+inv action mirred egress redirect dev vf2',
    );
    const inv = classify(rs, udp(), { conntrack: { lookup: () => ({ state: CtState.TRACKED | CtState.INVALID }) } });
    expect(where(inv)).toEqual(['port:vf2']);
    expect(inv.emits[0]!.packet.ip!.src).toBe('10.0.0.1');
    expect(inv.emits[0]!.packet.ct).toMatchObject({ state: CtState.TRACKED | CtState.INVALID, zone: 5, mark: 0 });
    expect(where(classify(rs, udp()))).toEqual(['port:vf1']);
  });

  it('no match goes up the representor (slow path)', () => {
    const o = classify(rules('dev vf0 ingress prio 1 protocol ip flower ip_proto tcp action drop'), udp());
    expect(o.final).toBe('slowpath');
    expect(where(o)).toEqual(['rep:vf0']);
  });

  it('rules of another representor do not apply', () => {
    expect(classify(rules('dev vf1 ingress prio 1 protocol ip flower action drop'), udp()).final).toBe('slowpath');
  });

  it('continue tries the next filter; goto chain jumps; a miss in chain 1 is the slow path with changes applied', () => {
    const rs = rules(
      'dev vf0 ingress prio 1 protocol ip flower action continue',
      'dev vf0 ingress prio 2 protocol ip flower action pedit ex munge ip ttl dec pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action drop',
    );
    const o = classify(rs, udp());
    expect(o.final).toBe('slowpath');
    expect(o.emits[0]!.packet.ip!.ttl).toBe(63);
    expect(o.trace.map((t) => t.verdict)).toEqual(['continue', 'goto chain 1']);
  });

  it('continue skips the rest of its prio: the next filter is the next prio\'s (a 6.1 kernel\'s flower hit prio 10 then prio 20, not prio 10\'s drop)', () => {
    const rs = rules(
      'dev vf0 ingress prio 10 handle 1 protocol ip flower dst_ip 10.0.0.1 action continue',
      'dev vf0 ingress prio 10 handle 2 protocol ip flower src_ip 10.0.0.2 action drop',
      'dev vf0 ingress prio 20 handle 3 protocol ip flower action pass',
    );
    const o = classify(rs, udp({ ip: { version: 4, src: '10.0.0.2', dst: '10.0.0.1', proto: 17, tos: 0, ttl: 64, frag: 'no' } }));
    expect(o.trace.map((t) => [t.prio, t.handle, t.verdict])).toEqual([[10, 1, 'continue'], [20, 3, 'pass']]);
    expect(o.final).toBe('slowpath');
  });

  it('reclassify loops end in a drop after 16 rounds, as cls_api.c bounds them', () => {
    expect(classify(rules('dev vf0 ingress prio 1 protocol ip flower action reclassify'), udp()).final).toBe('dropped');
  });

  it('gotos count toward the same bound: a loop of chains sends what the kernel sends in 16 restarts, then drops', () => {
    const rs = rules(
      'dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol ip flower action goto chain 0',
    );
    const o = classify(rs, udp());
    // Chain 0 runs before goto 1 and after each even goto up to the 16th: 9 copies; its 17th goto is the drop.
    // (A 6.1 kernel's flower, skip_hw on veth, counted 9 hits in chain 0 and 8 in chain 1 for one such packet.)
    expect({ final: o.final, looped: o.looped, copies: o.emits.length }).toEqual({ final: 'dropped', looped: true, copies: 9 });
  });

  it('jump N lands on action N of the list wherever it jumps from (act_api.c walks again from the start, skipping N)', () => {
    const o = classify(rules('dev vf0 ingress prio 1 protocol ip flower action skbedit mark 5 pipe action gact jump 3 action drop action mirred egress redirect dev vf1'), udp());
    expect(o.final).toBe('redirected');
    expect(where(o)).toEqual(['port:vf1']);
  });

  it('a jump back onto itself ends, at the 32nd jump, with TC_ACT_OK: the packet goes on up the representor', () => {
    const o = classify(rules('dev vf0 ingress prio 1 protocol ip flower action skbedit mark 5 pipe action gact jump 1 action drop'), udp());
    expect(o.final).toBe('slowpath');
  });
});

describe('reference classifier: keys', () => {
  it('protocol ip does not see VLAN-tagged frames (skb_protocol is the TPID)', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol ip flower action drop');
    expect(classify(rs, udp({ vlans: [{ tpid: 0x8100, vid: 5, pcp: 0 }] })).final).toBe('slowpath');
    expect(classify(rs, udp()).final).toBe('dropped');
  });

  it('protocol 802.1Q with vlan_id matches the outer tag', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 5 vlan_ethtype ip action drop');
    expect(classify(rs, udp({ vlans: [{ tpid: 0x8100, vid: 5, pcp: 0 }] })).final).toBe('dropped');
    expect(classify(rs, udp({ vlans: [{ tpid: 0x8100, vid: 6, pcp: 0 }] })).final).toBe('slowpath');
    expect(classify(rs, udp({ vlans: [{ tpid: 0x88a8, vid: 5, pcp: 0 }] })).final).toBe('slowpath');
  });

  it('protocol all with num_of_vlans: vlan_ethtype is the type after the tag, and takes IP keys (is_vlan_key)', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol all flower num_of_vlans 1 vlan_ethtype ip dst_ip 10.0.0.2 action drop');
    expect(classify(rs, udp({ vlans: [{ tpid: 0x88a8, vid: 5, pcp: 0 }] })).final).toBe('dropped');
    expect(classify(rs, udp({ vlans: [{ tpid: 0x8100, vid: 5, pcp: 0 }], ethType: 0x86dd, ip: { version: 6, src: '2001:db8::1', dst: '2001:db8::2', proto: 17, tos: 0, ttl: 64, frag: 'no' } })).final).toBe('slowpath');
    expect(classify(rs, udp({ vlans: [{ tpid: 0x8100, vid: 5, pcp: 0 }, { tpid: 0x8100, vid: 6, pcp: 0 }] })).final).toBe('slowpath');
    // Without num_of_vlans there is no tag to speak of (tc and the kernel refuse it).
    expect(parseFilter(splitArgs('dev vf0 ingress prio 1 protocol all flower vlan_ethtype ip action drop')).ok).toBe(false);
  });

  it('port ranges are inclusive', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 1000-1999 action drop');
    expect(classify(rs, udp({}, 1000)).final).toBe('dropped');
    expect(classify(rs, udp({}, 1999)).final).toBe('dropped');
    expect(classify(rs, udp({}, 2000)).final).toBe('slowpath');
  });

  it('ports of any fragment dissect as 0', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 5000 action drop');
    const frag = udp();
    frag.ip!.frag = 'first';
    expect(classify(rs, frag).final).toBe('slowpath');
    const zero = rules('dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 0/0xffff action drop');
    expect(classify(zero, frag).final).toBe('dropped');
  });

  it('ip_flags nofirstfrag matches non-fragments and later fragments', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol ip flower ip_flags nofirstfrag action drop');
    const p = udp();
    expect(classify(rs, p).final).toBe('dropped');
    p.ip!.frag = 'later';
    expect(classify(rs, p).final).toBe('dropped');
    p.ip!.frag = 'first';
    expect(classify(rs, p).final).toBe('slowpath');
  });

  it('ct_state compares flower bits', () => {
    const rs = rules('dev vf0 ingress prio 1 protocol ip flower ct_state +trk+est action drop');
    expect(classify(rs, udp({ ct: { state: 0x0a, zone: 0, mark: 0, label: '0'.repeat(32) } })).final).toBe('dropped');
    expect(classify(rs, udp({ ct: { state: 0x09, zone: 0, mark: 0, label: '0'.repeat(32) } })).final).toBe('slowpath');
  });
});

describe('reference classifier: actions', () => {
  it('mirror then redirect emits two copies, the mirror first', () => {
    const o = classify(rules('dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf2 action mirred egress redirect dev vf1'), udp());
    expect(where(o)).toEqual(['port:vf2', 'port:vf1']);
    expect(o.final).toBe('redirected');
  });

  it('a mirror copy has the rewrites made before it, not after', () => {
    const o = classify(
      rules('dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf2 action vlan push id 7 priority 3 action mirred egress redirect dev uplink'),
      udp(),
    );
    expect(o.emits[0]!.packet.vlans).toEqual([]);
    expect(o.emits[1]!.packet.vlans).toEqual([{ tpid: 0x8100, vid: 7, pcp: 3 }]);
  });

  it('pedit rewrites addresses, ports and MACs', () => {
    const o = classify(
      rules('dev vf0 ingress prio 1 protocol ip flower ip_proto udp action pedit ex munge ip dst set 10.9.9.9 munge udp dport set 53 munge eth dst set 02:00:00:00:00:99 pipe action mirred egress redirect dev vf1'),
      udp(),
    );
    const p = o.emits[0]!.packet;
    expect([p.ip!.dst, p.l4!.dst, p.dstMac]).toEqual(['10.9.9.9', 53, '02:00:00:00:00:99']);
  });

  it('ttl dec wraps 0 to 255 like the kernel\'s add, unlike OVS dec_ttl', () => {
    const p = udp();
    p.ip!.ttl = 0;
    const o = classify(rules('dev vf0 ingress prio 1 protocol ip flower action pedit ex munge ip ttl dec pipe action mirred egress redirect dev vf1'), p);
    expect(o.emits[0]!.packet.ip!.ttl).toBe(255);
  });

  it('ct sets the state chain 1 then sees; ct clear resets it', () => {
    const rs = rules(
      'dev vf0 ingress prio 1 protocol ip flower ct_state -trk action ct zone 3 pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol ip flower ct_state +trk+new ct_zone 3 action mirred egress redirect dev vf1',
    );
    expect(where(classify(rs, udp()))).toEqual(['port:vf1']);
    const est = classify(rs, udp(), { conntrack: { lookup: () => ({ state: 0x0a }) } });
    expect(est.final).toBe('slowpath');
  });

  it('police conforms (no token bucket per packet) and takes its conform verdict', () => {
    const o = classify(rules('dev vf0 ingress prio 1 protocol ip flower action police rate 1mbit burst 10k conform-exceed drop/pipe action mirred egress redirect dev vf1'), udp());
    expect(where(o)).toEqual(['port:vf1']);
  });
});

describe('reference classifier: totality', () => {
  it('never throws and is deterministic on random rule sets and packets', () => {
    fc.assert(
      fc.property(fc.array(arbRule(), { maxLength: 8 }), arbPacket(), (rs, p) => {
        const a = classify(rs, p);
        expect(classify(rs, p)).toEqual(a);
        expect(['redirected', 'dropped', 'slowpath']).toContain(a.final);
        if (a.final === 'slowpath') expect(a.emits.at(-1)!.to).toEqual({ kind: 'rep', dev: p.inDev });
      }),
      { numRuns: 2000 },
    );
  });
});

describe('conntrack: a real kernel\'s answer for a connection\'s first packet', () => {
  const NEW = CtState.TRACKED | CtState.NEW, INV = CtState.TRACKED | CtState.INVALID;
  const tcp = (flags: number): Packet => udp({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 6, tos: 0, ttl: 64, frag: 'no' }, tcpFlags: flags });
  const icmp = (version: 4 | 6, type: number): Packet =>
    udp({ ethType: version === 4 ? 0x0800 : 0x86dd, ip: { version, src: version === 4 ? '10.0.0.1' : '2001:db8::1', dst: version === 4 ? '10.0.0.2' : '2001:db8::2', proto: version === 4 ? 1 : 58, tos: 0, ttl: 64, frag: 'no' }, l4: undefined, icmp: { type, code: 0 } });

  it('TCP: a SYN or a bare ACK (loose pick-up) opens one, ECE/CWR/PSH aside; SYN+ACK, FIN, RST, no flag are invalid (tcp_valid_flags, tcp_new)', () => {
    const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04, PSH = 0x08, URG = 0x20, ECE = 0x40, CWR = 0x80;
    for (const f of [SYN, SYN | ECE | CWR, SYN | URG, ACK, ACK | PSH, ACK | URG]) expect(firstPacketState(tcp(f)), `flags ${f}`).toBe(NEW);
    for (const f of [SYN | ACK, FIN | ACK, RST, RST | ACK, 0, FIN, SYN | FIN, SYN | RST]) expect(firstPacketState(tcp(f)), `flags ${f}`).toBe(INV);
  });

  it('ICMP: requests open one (echo, timestamp, info, address mask), replies and errors are invalid; ICMPv6 likewise, neighbour discovery untracked', () => {
    for (const t of [8, 13, 15, 17]) expect(firstPacketState(icmp(4, t))).toBe(NEW);
    for (const t of [0, 3, 11, 14]) expect(firstPacketState(icmp(4, t))).toBe(INV);
    for (const t of [128, 139]) expect(firstPacketState(icmp(6, t))).toBe(NEW);
    for (const t of [129, 1, 135, 136, 8]) expect(firstPacketState(icmp(6, t))).toBe(INV);
  });

  it('UDP opens one, SCTP without an INIT does not, a bad checksum never does, and what is not IP is not tracked', () => {
    expect(firstPacketState(udp())).toBe(NEW);
    expect(firstPacketState(udp({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 132, tos: 0, ttl: 64, frag: 'no' } }))).toBe(INV);
    expect(firstPacketState(udp(), false)).toBe(INV);
    expect(firstPacketState(udp({ ethType: 0x0806, ip: undefined, l4: undefined }))).toBe(0);
  });
});

describe('conntrack across packets: a committed connection, its reply, then established (resolve_normal_ct)', () => {
  const acl = rules(
    'dev vf0 ingress prio 1 protocol ip flower action ct zone 3 pipe action goto chain 1',
    'dev vf0 ingress chain 1 prio 1 protocol ip flower ct_state +trk+new action ct commit zone 3 mark 9 pipe action mirred egress redirect dev vf1',
    'dev vf0 ingress chain 1 prio 2 protocol ip flower ct_state +trk+est-rpl ct_mark 9 action mirred egress redirect dev vf2',
    'dev vf1 ingress prio 1 protocol ip flower action ct zone 3 pipe action goto chain 1',
    'dev vf1 ingress chain 1 prio 1 protocol ip flower ct_state +trk+est+rpl ct_mark 9 action mirred egress redirect dev vf0',
    'dev vf1 ingress chain 1 prio 2 protocol ip flower action drop',
  );
  const reply = udp({ inDev: 'vf1', ip: { version: 4, src: '10.0.0.2', dst: '10.0.0.1', proto: 17, tos: 0, ttl: 64, frag: 'no' } }, 1234, 5000);

  it('UDP: new and committed, then the reply +est+rpl with the mark, then the original direction +est', () => {
    const ct = new ConntrackTable();
    expect(where(classify(acl, udp(), { conntrack: ct }))).toEqual(['port:vf1']);
    expect(where(classify(acl, reply, { conntrack: ct }))).toEqual(['port:vf0']);
    expect(where(classify(acl, udp(), { conntrack: ct }))).toEqual(['port:vf2']);
  });

  it('a reply with nothing committed before it is a new connection of its own', () => {
    expect(where(classify(acl, reply, { conntrack: new ConntrackTable() }))).toEqual([]);
    // ct without commit records nothing
    const ct = new ConntrackTable();
    classify(rules('dev vf0 ingress prio 1 protocol ip flower action ct zone 3 pipe action drop'), udp(), { conntrack: ct });
    expect(where(classify(acl, reply, { conntrack: ct }))).toEqual([]);
  });

  it('a NAT binding: the reply is found by the NATed tuple and ct nat puts it back; the next request is NATed the same', () => {
    const lb = rules(
      // OVN's load balancer shape: DNAT to a backend on the way in, un-DNAT of its replies by a bare ct nat
      'dev vf0 ingress prio 1 protocol ip flower action ct commit zone 3 nat dst addr 10.0.0.9 port 6000 pipe action mirred egress redirect dev vf1',
      'dev vf1 ingress prio 1 protocol ip flower action ct zone 3 nat pipe action goto chain 1',
      'dev vf1 ingress chain 1 prio 1 protocol ip flower ct_state +trk+est+rpl action mirred egress redirect dev vf0',
    );
    const ct = new ConntrackTable();
    const out = classify(lb, udp(), { conntrack: ct }).emits[0]!.packet;
    expect([out.ip!.dst, out.l4!.dst]).toEqual(['10.0.0.9', 6000]);
    const back = udp({ inDev: 'vf1', ip: { version: 4, src: '10.0.0.9', dst: '10.0.0.1', proto: 17, tos: 0, ttl: 64, frag: 'no' } }, 1234, 6000);
    const r = classify(lb, back, { conntrack: ct });
    expect(where(r)).toEqual(['port:vf0']);
    expect([r.emits[0]!.packet.ip!.src, r.emits[0]!.packet.l4!.src]).toEqual(['10.0.0.2', 5000]);
    // The request again: the binding, whatever the action's range says now.
    const again = classify(lb, udp(), { conntrack: ct }).emits[0]!.packet;
    expect([again.ip!.dst, again.l4!.dst]).toEqual(['10.0.0.9', 6000]);
    // A reply to the address before NAT is no reply: a connection of its own.
    expect(ct.lookup(udp({ inDev: 'vf1', ip: { version: 4, src: '10.0.0.2', dst: '10.0.0.1', proto: 17, tos: 0, ttl: 64, frag: 'no' } }, 1234, 5000), 3).state).toBe(CtState.TRACKED | CtState.NEW);
  });

  it('an ICMP error carrying a committed connection\'s packet is related to it (+trk+rel+rpl); carrying another, invalid', () => {
    const ct = new ConntrackTable();
    ct.commit(udp(), 3, { state: 0, zone: 3, mark: 4, label: '0'.repeat(32) });
    const err = (sport: number) =>
      udp({ inDev: 'vf1', ip: { version: 4, src: '10.0.0.2', dst: '10.0.0.1', proto: 1, tos: 0, ttl: 64, frag: 'no' }, l4: undefined, icmp: { type: 3, code: 3, inner: { src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport, dport: 5000 } } });
    expect(ct.lookup(err(1234), 3)).toMatchObject({ state: CtState.TRACKED | CtState.RELATED | CtState.REPLY, mark: 4 });
    expect(ct.lookup(err(1235), 3).state).toBe(CtState.TRACKED | CtState.INVALID);
    expect(ct.lookup(err(1234), 4).state).toBe(CtState.TRACKED | CtState.INVALID);
  });

  it('another zone is another table; an ICMP echo reply finds its request, and without one is invalid', () => {
    const ct = new ConntrackTable();
    ct.commit(udp(), 4, { state: 0, zone: 4, mark: 9, label: '0'.repeat(32) });
    expect(ct.lookup(reply, 3).state).toBe(CtState.TRACKED | CtState.NEW);
    expect(ct.lookup(reply, 4)).toMatchObject({ state: CtState.TRACKED | CtState.ESTABLISHED | CtState.REPLY, mark: 9 });
    const echo = (type: number, src: string, dst: string) => udp({ ip: { version: 4, src, dst, proto: 1, tos: 0, ttl: 64, frag: 'no' }, l4: undefined, icmp: { type, code: 0 } });
    ct.commit(echo(8, '10.0.0.1', '10.0.0.2'), 3, { state: 0, zone: 3, mark: 0, label: '0'.repeat(32) });
    expect(ct.lookup(echo(0, '10.0.0.2', '10.0.0.1'), 3).state).toBe(CtState.TRACKED | CtState.ESTABLISHED | CtState.REPLY);
    expect(ct.lookup(echo(0, '10.0.0.3', '10.0.0.1'), 3).state).toBe(CtState.TRACKED | CtState.INVALID);
  });
});

describe('conntrack of TCP: the handshake and the window (nf_conntrack_proto_tcp.c)', () => {
  const acl = rules(
    'dev vf0 ingress prio 1 protocol ip flower action ct zone 3 pipe action goto chain 1',
    'dev vf0 ingress chain 1 prio 1 protocol ip flower ct_state +trk+new action ct commit zone 3 mark 9 pipe action mirred egress redirect dev vf1',
    'dev vf0 ingress chain 1 prio 2 protocol ip flower ct_state +trk+est-rpl ct_mark 9 action mirred egress redirect dev vf2',
    // vf1 runs its replies through the zone twice, as a guest OVS does before and after its ACL chain
    'dev vf1 ingress prio 1 protocol ip flower action ct zone 3 pipe action goto chain 1',
    'dev vf1 ingress chain 1 prio 1 protocol ip flower action ct zone 3 pipe action goto chain 2',
    'dev vf1 ingress chain 2 prio 1 protocol ip flower ct_state +trk+est+rpl ct_mark 9 action mirred egress redirect dev vf0',
    'dev vf1 ingress chain 2 prio 2 protocol ip flower action drop',
  );
  // 10.0.0.1:1234 (vf0) opens to 10.0.0.2:80 (vf1); every segment carries 8 bytes of data.
  const seg = (fromVf0: boolean, flags: number, seq: number, ack: number): Packet =>
    udp({
      inDev: fromVf0 ? 'vf0' : 'vf1',
      ip: { version: 4, src: fromVf0 ? '10.0.0.1' : '10.0.0.2', dst: fromVf0 ? '10.0.0.2' : '10.0.0.1', proto: 6, tos: 0, ttl: 64, frag: 'no' },
      l4: fromVf0 ? { src: 1234, dst: 80 } : { src: 80, dst: 1234 },
      tcpFlags: flags,
      tcpSeg: { seq, ack, window: 8192, dataLen: 8 },
    });
  const SYN = 0x02, ACK = 0x10;

  it('SYN committed, SYN/ACK +est+rpl, ACK and data +est; acks beyond what was sent are invalid', () => {
    const ct = new ConntrackTable();
    expect(where(classify(acl, seg(true, SYN, 1000, 0), { conntrack: ct }))).toEqual(['port:vf1']);
    // The SYN and its data end at 1009: an ack of 1010 acks what was never sent (tcp_in_window III), dropped.
    expect(where(classify(acl, seg(false, SYN | ACK, 5000, 1010), { conntrack: ct }))).toEqual([]);
    // An ACK from vf0 before any SYN/ACK: tcp_conntracks[ORIGINAL][ack][sSS] is invalid, handed to software.
    expect(where(classify(acl, seg(true, ACK, 1009, 5009), { conntrack: ct }))).toEqual(['rep:vf0']);
    expect(where(classify(acl, seg(false, SYN | ACK, 5000, 1009), { conntrack: ct }))).toEqual(['port:vf0']);
    expect(where(classify(acl, seg(true, ACK, 1009, 5009), { conntrack: ct }))).toEqual(['port:vf2']);
    expect(where(classify(acl, seg(false, ACK, 5009, 1017), { conntrack: ct }))).toEqual(['port:vf0']);
    expect(where(classify(acl, seg(true, ACK, 1017, 5017), { conntrack: ct }))).toEqual(['port:vf2']);
  });

  it('a bare ACK picks a connection up (tcp_loose); a SYN/ACK, or a flag combination tcp_error rejects, opens none', () => {
    expect(firstPacketState(seg(true, ACK, 1, 1))).toBe(CtState.TRACKED | CtState.NEW);
    expect(firstPacketState(seg(true, SYN | ACK, 1, 1))).toBe(CtState.TRACKED | CtState.INVALID);
    expect(firstPacketState(seg(true, SYN | 0x01, 1, 0))).toBe(CtState.TRACKED | CtState.INVALID);
    const ct = new ConntrackTable();
    expect(where(classify(acl, seg(true, ACK, 70000, 123), { conntrack: ct }))).toEqual(['port:vf1']);
    // Picked up mid-stream, the window is not checked (IP_CT_TCP_FLAG_BE_LIBERAL): any reply ack is taken.
    expect(where(classify(acl, seg(false, ACK, 9, 3), { conntrack: ct }))).toEqual(['port:vf0']);
  });

  it('what the model does not follow it refuses, rather than guess', () => {
    const ct = new ConntrackTable();
    classify(acl, seg(true, SYN, 1000, 0), { conntrack: ct });
    // A SYN back from vf1 while the connection is in SYN_SENT: simultaneous open (TCP_CONNTRACK_SYN_SENT2).
    expect(() => classify(acl, seg(false, SYN, 5000, 0), { conntrack: ct })).toThrow(/simultaneous open is not modelled/);
  });
});
