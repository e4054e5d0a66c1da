// The translator's algorithms and mapping rows, each stated as what an operator would see.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Errno } from '../../rules/errors.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { cookieKind, cookieOf, cookieRuleId, FlowKind } from '../../translator/cookie.js';
import { enumerateMasked, rangeToPrefixes } from '../../translator/expand.js';
import { translate, translateGroup, type TranslateMemo } from '../../translator/index.js';
import type { FlowerRule, PoliceAction } from '../../rules/model.js';
import { actionsText, flowLine, flowText, matchText, type OfFlow } from '../../ovs/openflow/flow.js';
import { parseActions, parseMatch } from '../../ovs/openflow/parse.js';
import { arbRule } from '../gen/rule.js';
import { defaultPortMap } from '../../translator/portmap.js';

/** Flows as ovs-ofctl prints them, cookies left out (they hash the flow's content; the tests read the rest). */
const uncookied = (flows: OfFlow[]) => flows.map(flowLine).map((l) => l.replace(/cookie=0x[0-9a-f]+,/, ''));

const ports = defaultPortMap(2);
const one = (line: string, id = 1) => {
  const r = parseFilter(splitArgs(line));
  if (!r.ok) throw new Error(r.error.message);
  return translate({ rules: [{ id, rule: r.value }], ports });
};
const ruleFlows = (t: ReturnType<typeof translate>) => t.flows.filter((f) => cookieKind(f.cookie) !== FlowKind.DEFAULT);

describe('port range expansion', () => {
  it('covers exactly [min, max] and nothing else', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
        const [min, max] = a <= b ? [a, b] : [b, a];
        const ps = rangeToPrefixes(min, max);
        const hit = (x: number) => ps.some((p) => (x & p.mask) === p.value);
        for (const x of [min, max, min - 1, max + 1, (min + max) >> 1]) if (x >= 0 && x <= 65535) expect(hit(x)).toBe(x >= min && x <= max);
        // Prefixes are disjoint, so their sizes add up to the range.
        expect(ps.reduce((s, p) => s + (65536 - p.mask), 0)).toBe(max - min + 1);
      }),
      { numRuns: 2000 },
    );
  });

  it('is minimal: no two prefixes could merge into one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
        const [min, max] = a <= b ? [a, b] : [b, a];
        const ps = rangeToPrefixes(min, max);
        for (let i = 0; i + 1 < ps.length; i++) {
          const x = ps[i]!, y = ps[i + 1]!;
          const size = 65536 - x.mask;
          const mergeable = x.mask === y.mask && x.value % (2 * size) === 0 && y.value === x.value + size;
          expect(mergeable).toBe(false);
        }
        expect(ps.length).toBeLessThanOrEqual(30);
      }),
      { numRuns: 2000 },
    );
  });

  it('1000-1999 is the 7 prefixes tc users expect', () => {
    expect(rangeToPrefixes(1000, 1999)).toHaveLength(7);
  });
});

describe('unmaskable fields', () => {
  it('enumerates the values a mask selects', () => {
    expect(enumerateMasked(0x40, 0xc0, 8, 256)).toHaveLength(64);
    expect(enumerateMasked(5, 0xff, 8, 256)).toEqual([5]);
    expect(enumerateMasked(0, 0, 16, 100)).toBeUndefined();
  });

  it('ip_ttl 0x40/0xc0 becomes 64 exact nw_ttl flows', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower ip_ttl 0x40/0xc0 action drop');
    expect(ruleFlows(t)).toHaveLength(64);
    expect(ruleFlows(t).map((f) => /nw_ttl=(\d+)/.exec(matchText(f.match))![1]).map(Number).sort((a, b) => a - b)[0]).toBe(64);
  });
});

describe('mapping rows', () => {
  const match = (line: string) => ruleFlows(one(line)).map((f) => matchText(f.match));
  const actions = (line: string) => ruleFlows(one(line)).map((f) => actionsText(f.actions));

  it('protocol ip matches untagged IPv4 only', () => {
    expect(match('dev vf0 ingress prio 1 protocol ip flower action drop')).toEqual(['in_port=100,dl_type=0x800,vlan_tci=0x0000/0xffff']);
  });
  it('ct_state trk and rpl swap bits between flower and OVS', () => {
    expect(match('dev vf0 ingress prio 1 protocol ip flower ct_state +trk+est-rpl action drop')[0]).toContain('ct_state=+est-rpl+trk');
  });
  it('every ct_state flag keeps its meaning across the bit swap', () => {
    const flags: [string, string][] = [['+trk', '+trk'], ['-trk', '-trk'], ['+trk+new', '+new+trk'], ['+trk+est', '+est+trk'], ['+trk+rel', '+rel+trk'], ['+trk+inv', '+inv+trk'], ['+trk+rpl', '+rpl+trk'], ['+trk+est-rpl', '+est-rpl+trk'], ['+trk-new-est', '-new-est+trk']];
    for (const [tc, ovs] of flags) expect(match(`dev vf0 ingress prio 1 protocol ip flower ct_state ${tc} action drop`)[0]).toContain(`ct_state=${ovs}`);
  });
  it('ip_flags nofirstfrag is non-fragments plus later fragments', () => {
    expect(match('dev vf0 ingress prio 1 protocol ip flower ip_flags nofirstfrag action drop').map((m) => /nw_frag=\w+/.exec(m)![0])).toEqual(['nw_frag=no', 'nw_frag=later']);
  });
  it('ip_tos with the DSCP mask is ip_dscp only', () => {
    expect(match('dev vf0 ingress prio 1 protocol ip flower ip_tos 0x28/0xfc action drop')[0]).toContain('ip_dscp=10');
  });
  it('mirror then redirect are two outputs in order; redirect to itself is in_port', () => {
    expect(actions('dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf1 action mirred egress redirect dev vf0')).toEqual(['output:101,in_port']);
  });
  it('pass hands the packet to the representor backend', () => {
    expect(actions('dev vf1 ingress prio 1 protocol ip flower action pass')).toEqual(['output:201']);
  });
  it('vlan push sets VID and PCP', () => {
    expect(actions('dev vf0 ingress prio 1 protocol ip flower action vlan push id 7 priority 3 action mirred egress redirect dev uplink')).toEqual([
      'push_vlan:0x8100,set_field:4103->vlan_vid,set_field:3->vlan_pcp,output:1',
    ]);
  });
  it('ttl dec is exact at 0 and 1 where dec_ttl would stop', () => {
    expect(actions('dev vf0 ingress prio 1 protocol ip flower action pedit ex munge ip ttl dec pipe action mirred egress redirect dev vf1')).toEqual([
      'mod_nw_ttl:255,output:101',
      'mod_nw_ttl:0,output:101',
      'dec_ttl,output:101',
    ]);
  });
  it('ct then goto chain recirculates into that chain\'s table, in the VM\'s zone', () => {
    const r = parseFilter(splitArgs('dev vf0 ingress prio 1 protocol ip flower action ct zone 3 pipe action goto chain 1')).value!;
    const c1 = parseFilter(splitArgs('dev vf0 ingress chain 1 prio 1 protocol ip flower ct_state +trk+new action drop')).value!;
    const t = translate({ rules: [{ id: 1, rule: r }, { id: 2, rule: c1 }], ports, zone: (z) => 1000 + z });
    expect(actionsText(t.flows.find((f) => cookieRuleId(f.cookie) === 1)!.actions)).toBe(`ct(zone=1003,table=${t.tables.get('1/entry')})`);
  });
  it('a goto on a loop of chains stays in software (the kernel ends the loop at its 17th goto; OVS at its own limit, sending nothing)', () => {
    const rules = (...lines: string[]) => lines.map((l, i) => ({ id: i + 1, rule: parseFilter(splitArgs(l)).value! }));
    const rs = rules(
      'dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol ip flower dst_ip 10.0.0.1 action goto chain 2',
      'dev vf0 ingress chain 1 prio 2 protocol ip flower action drop',
      'dev vf0 ingress chain 2 prio 1 protocol ip flower ip_proto udp action ct zone 3 pipe action goto chain 1',
      'dev vf0 ingress chain 2 prio 2 protocol ip flower action police rate 1mbit burst 10k conform-exceed drop/pipe action drop',
      // The same gotos on another representor: its chains are its own, and none of them comes back.
      'dev vf1 ingress prio 1 protocol ip flower action goto chain 1',
      'dev vf1 ingress chain 1 prio 1 protocol ip flower action goto chain 2',
      // A goto after a redirect (verdict stolen) is never taken (act_api.c goes on only past pipe): no loop.
      'dev vf1 ingress chain 2 prio 1 protocol ip flower action mirred egress redirect dev uplink action goto chain 1',
    );
    // A police's exceed verdict may be a goto too (netlink only: tc's conform-exceed slash form has no goto).
    rs[4]!.rule.actions[0] = { ...(rs[4]!.rule.actions[0] as PoliceAction), exceed: { kind: 'goto', chain: 2 } };
    const t = translate({ rules: rs, ports });
    const why = (id: number) => t.perRule.get(id)!.error?.message.match(/^goto chain \d+ closes a loop/)?.[0];
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(why)).toEqual([undefined, 'goto chain 2 closes a loop', undefined, 'goto chain 1 closes a loop', 'goto chain 2 closes a loop', undefined, undefined, undefined]);
    expect(t.perRule.get(8)!.offloaded).toBe(true);
    expect(t.perRule.get(2)!.offloaded).toBe(false);
  });
  it('ct nat without a goto is ct(nat) in place, then the rest of the list (the datapath NATs the packet its outputs carry)', () => {
    expect(actions('dev vf0 ingress prio 1 protocol ip flower ip_proto tcp action ct commit zone 4 nat src addr 10.9.9.9-10.9.9.20 port 4000-4100 pipe action mirred egress redirect dev vf1')).toEqual([
      'ct(commit,zone=4,nat(src=10.9.9.9-10.9.9.20:4000-4100)),output:101',
    ]);
    expect(actions('dev vf0 ingress prio 1 protocol ip flower action ct commit zone 5 nat dst addr 10.8.8.8 port 8080 pipe action pedit ex munge ip src set 10.7.7.7 pipe action mirred egress mirror dev vf1 pipe action drop')).toEqual([
      'ct(commit,zone=5,nat(dst=10.8.8.8:8080)),mod_nw_src:10.7.7.7,output:101',
    ]);
    // OVS's pipeline keeps the pre-NAT value and drops a set it takes for a no-op; a hand-off would repeat the NAT;
    // a plain goto would continue without the ct state and NAT: all three stay in the guest's software.
    for (const [act, why] of [
      ['ct commit zone 4 nat src addr 10.9.9.9 pipe action pedit ex munge ip src set 10.0.0.1 pipe action mirred egress redirect dev vf1', /pedit ip src after ct nat/],
      ['ct commit zone 4 nat dst addr 10.9.9.9 pipe action pass', /rewrites the packet/],
      ['ct zone 4 pipe action pedit ex munge ip ttl set 9 pipe action goto chain 1', /goto chain after ct with other actions between/],
      // OVS refuses the flow (OFPBAC_MATCH_INCONSISTENT), which would fail the VM's whole bundle.
      ['ct commit zone 4 nat src addr 2001:db8::9 pipe action goto chain 1', /IPv6 address on a protocol ip filter/],
    ] as const) {
      const t = translate({ rules: [`prio 1 protocol ip flower action ${act}`, 'chain 1 prio 1 protocol ip flower action drop'].map((l, i) => ({ id: i + 1, rule: parseFilter(splitArgs(`dev vf0 ingress ${l}`)).value! })), ports });
      expect(t.perRule.get(1)).toMatchObject({ offloaded: false });
      expect(t.perRule.get(1)!.error!.message).toMatch(why);
    }
  });
  it('ct commit under a zero label or mark mask sets nothing (act_ct.c; OVS refuses a zero-mask set_field)', () => {
    expect(actions('dev vf0 ingress prio 1 protocol ip flower action ct commit label 1 action ct commit label 102/f mark 5/0 action pass')).toEqual([
      'ct(commit,zone=0,exec(set_field:0x00000000000000000000000000000000/0xffffffffffffffffffffffffffffffff->ct_label)),ct(commit,zone=0),output:200',
    ]);
  });
  it('police is a meter in front of the rest', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower action police rate 8mbit burst 100k conform-exceed drop/pipe action mirred egress redirect dev vf1');
    expect(t.meters).toEqual([{ id: 1, spec: 'kbps burst stats bands=type=drop rate=8000 burst_size=820' }]);
    expect(actionsText(ruleFlows(t)[0]!.actions)).toBe('meter:1,output:101');
  });
  it('police after a rewrite meters first (OVS 3.1 takes a meter only before the other actions); after a copy out it is trapped', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower action pedit ex munge ip tos set 0x28 retain 0xfc pipe action police rate 8mbit burst 100k index 3 conform-exceed drop/pipe action mirred egress redirect dev vf1');
    expect(ruleFlows(t).map((f) => actionsText(f.actions))).toEqual(['meter:1,set_field:10->ip_dscp,output:101']);
    const m = one('dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action police rate 8mbit burst 100k conform-exceed drop/pipe action mirred egress redirect dev uplink');
    expect(m.perRule.get(1)!.offloaded).toBe(false);
    expect(m.perRule.get(1)!.error!.message).toMatch(/only before every other action/);
  });
  it('one meter per police index: filters naming one index share a bucket, equal rates under two indexes or unnamed are two', () => {
    const police = (i: string) => `action police rate 8mbit burst 100k ${i} conform-exceed drop/pipe action mirred egress redirect dev vf1`;
    const rules = [
      `dev vf0 ingress prio 1 protocol ip flower ${police('index 5')}`,
      `dev vf1 ingress prio 1 protocol ip flower ${police('index 5')}`,
      `dev vf0 ingress prio 2 protocol ip flower ${police('index 6')}`,
      `dev vf0 ingress prio 3 protocol ip flower ${police('')}`,
      `dev vf1 ingress prio 3 protocol ip flower ${police('')}`,
    ].map((l, i) => ({ id: i + 1, rule: parseFilter(splitArgs(l)).ok ? (parseFilter(splitArgs(l)) as { value: FlowerRule }).value : (undefined as never) }));
    const t = translate({ rules, ports: defaultPortMap(2) });
    const meterOf = (id: number) => /meter:(\d+)/.exec(t.flows.filter((f) => cookieRuleId(f.cookie) === id && cookieKind(f.cookie) === FlowKind.RULE).map((f) => actionsText(f.actions)).join(' '))![1];
    expect(meterOf(1)).toBe(meterOf(2));
    expect(new Set([meterOf(1), meterOf(3), meterOf(4), meterOf(5)]).size).toBe(4);
    expect(t.meters).toHaveLength(4);
  });
  it('a police without a rate (the one 6.1 creates for an index no action had) meters nothing and passes its conform verdict on', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower action police index 9 conform-exceed drop/pipe action mirred egress redirect dev vf1');
    expect(t.meters).toEqual([]);
    expect(ruleFlows(t).map((f) => actionsText(f.actions))).toEqual(['output:101']);
  });
});

describe('VLAN filters under a declared outer TPID (docs/mapping.md, VLAN matches)', () => {
  const under = (line: string, outerTpid?: number) => {
    const r = parseFilter(splitArgs(line));
    if (!r.ok) throw new Error(r.error.message);
    return translate({ rules: [{ id: 1, rule: r.value }], ports: defaultPortMap(2), ...(outerTpid ? { outerTpid } : {}) });
  };
  const head = 'dev vf0 ingress prio 1';
  it('the declared protocol is a tag test; vlan_ethtype is dl_type for one tag, and frames of two tags go to software', () => {
    const t = under(`${head} protocol 802.1Q flower vlan_id 100 vlan_ethtype ip dst_ip 10.0.0.2 action drop`, 0x8100);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    const text = (kind: number) => ruleFlows(t).filter((f) => cookieKind(f.cookie) === kind).map((f) => `${matchText(f.match)} ${actionsText(f.actions)}`);
    expect(text(FlowKind.RULE)).toEqual(['in_port=100,vlan_tci=0x1064/0x1fff,dl_type=0x800,nw_dst=10.0.0.2 drop']);
    // flower's vlan_ethtype is the type after every tag (n_proto); OpenFlow sees the second tag's TPID instead.
    expect(text(FlowKind.TRAP)).toEqual(['in_port=100,vlan_tci=0x1064/0x1fff,dl_type=0x8100 output:200', 'in_port=100,vlan_tci=0x1064/0x1fff,dl_type=0x88a8 output:200']);
    const qinq = under(`${head} protocol 802.1ad flower vlan_id 20 vlan_prio 5 vlan_ethtype 802.1Q action drop`, 0x88a8);
    expect(ruleFlows(qinq).map((f) => matchText(f.match))).toEqual(['in_port=100,vlan_tci=0xb014/0xffff,dl_type=0x8100']);
  });
  it('a trapped one (no declaration) also traps frames of two tags: its L3 keys cannot take them, and a lower rule would', () => {
    const t = under(`${head} protocol 802.1Q flower vlan_id 100 vlan_ethtype ip dst_ip 10.0.0.2 action drop`);
    expect(t.perRule.get(1)!.offloaded).toBe(false);
    const traps = ruleFlows(t).filter((f) => cookieKind(f.cookie) === FlowKind.TRAP).map((f) => `${matchText(f.match)} ${actionsText(f.actions)}`);
    expect(traps).toEqual(expect.arrayContaining(['in_port=100,vlan_tci=0x1064/0x1fff,dl_type=0x8100 output:200', 'in_port=100,vlan_tci=0x1064/0x1fff,dl_type=0x88a8 output:200']));
  });
  it('the other protocol can match no frame of the VM: offloaded, with no flow', () => {
    const t = under(`${head} protocol 802.1ad flower vlan_id 100 action drop`, 0x8100);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    expect(ruleFlows(t)).toEqual([]);
  });
  it('stays trapped without a declaration, for inner-tag keys and for tag counts OpenFlow cannot tell apart', () => {
    const reason = (line: string, tpid?: number) => under(line, tpid).perRule.get(1)!;
    expect(reason(`${head} protocol 802.1Q flower vlan_id 100 action drop`).offloaded).toBe(false);
    expect(reason(`${head} protocol 802.1Q flower vlan_id 100 action drop`).error!.message).toMatch(/declares no outer TPID/);
    expect(reason(`${head} protocol 802.1ad flower vlan_id 20 vlan_ethtype 802.1Q cvlan_id 5 action drop`, 0x88a8).error!.message).toMatch(/inner tag/);
    expect(reason(`${head} protocol 802.1Q flower num_of_vlans 2 vlan_ethtype 802.1Q action drop`, 0x8100).error!.message).toMatch(/two VLAN tags and three/);
    expect(reason(`${head} protocol 802.1Q flower num_of_vlans 1 vlan_ethtype ip action drop`, 0x8100).offloaded).toBe(true);
    expect(reason(`${head} protocol all flower num_of_vlans 2 action drop`).error!.message).toMatch(/two VLAN tags and three/);
  });
  it('protocol all with num_of_vlans 1 is offloaded on any VM: a tag of either TPID, deeper-tagged frames trapped', () => {
    // flower counts 802.1Q and 802.1ad tags alike and OVS parses both; with vlan-limit 1 a second tag shows as dl_type.
    const t = under(`${head} protocol all flower num_of_vlans 1 vlan_id 5 action drop`);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    const flows = ruleFlows(t).map((f) => [f.priority, cookieKind(f.cookie), matchText(f.match), actionsText(f.actions)]);
    expect(flows).toEqual([
      [59999, FlowKind.RULE, 'in_port=100,vlan_tci=0x1005/0x1fff', 'drop'],
      [60000, FlowKind.TRAP, 'in_port=100,vlan_tci=0x1005/0x1fff,dl_type=0x8100', 'output:200'],
      [60000, FlowKind.TRAP, 'in_port=100,vlan_tci=0x1005/0x1fff,dl_type=0x88a8', 'output:200'],
    ]);
    // A vlan_ethtype other than a TPID already excludes them: no trap.
    expect(ruleFlows(under(`${head} protocol all flower num_of_vlans 1 vlan_ethtype ip action drop`)).every((f) => cookieKind(f.cookie) === FlowKind.RULE)).toBe(true);
  });
});

describe('a conntrack zone is offloaded whole or not at all', () => {
  const rulesOf = (...lines: string[]) => lines.map((l, i) => ({ id: i + 1, rule: (parseFilter(splitArgs(l)) as { value: FlowerRule }).value }));
  it('a filter of zone 5 left to software takes the zone\'s other filters with it; zone 6 stays offloaded', () => {
    const t = translate({
      ports: defaultPortMap(2),
      rules: rulesOf(
        'dev vf0 ingress prio 1 protocol ip flower ip_proto tcp action ct zone 5 commit pipe action mirred egress redirect dev vf1',
        'dev vf1 ingress prio 1 protocol ip flower skip_hw ip_proto tcp action ct zone 5 pipe action mirred egress redirect dev vf0',
        'dev vf0 ingress prio 2 protocol ip flower ip_proto udp action ct zone 6 commit pipe action mirred egress redirect dev vf1',
      ),
    });
    expect([1, 2, 3].map((id) => t.perRule.get(id)!.offloaded)).toEqual([false, false, true]);
    expect(t.perRule.get(1)!.error!.message).toMatch(/ct zone 5 is not offloaded: another filter naming it \(rule 2\)/);
    // The trapped rule keeps its place with trap flows, as any rule left to software.
    expect(t.flows.filter((f) => cookieRuleId(f.cookie) === 1).every((f) => cookieKind(f.cookie) === FlowKind.TRAP)).toBe(true);
  });
  it('a one-group change touching a zone is translated with the whole rule set', () => {
    const [a] = rulesOf('dev vf0 ingress prio 1 protocol ip flower ip_proto tcp action ct zone 5 commit pipe action mirred egress redirect dev vf1');
    expect(translateGroup([a!], 1, { ports: defaultPortMap(2) })).toBeUndefined();
  });
});

describe('refusals and partial offload', () => {
  it('skip_sw that cannot be offloaded is refused with EOPNOTSUPP and a reason', () => {
    const t = one('dev vf0 ingress prio 1 protocol 802.1Q flower skip_sw vlan_id 5 action drop');
    const r = t.perRule.get(1)!;
    expect(r.refused).toBe(true);
    expect(r.error!.errno).toBe(Errno.EOPNOTSUPP);
    expect(r.error!.message).toMatch(/TPID/);
    expect(ruleFlows(t)).toHaveLength(0);
  });
  it('without skip_sw the rule keeps its place with a trap to the representor', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower enc_key_id 5 action drop');
    expect(t.perRule.get(1)).toMatchObject({ offloaded: false, flows: 1 });
    expect(ruleFlows(t).map(flowText)).toEqual([expect.objectContaining({ match: 'in_port=100,dl_type=0x800,vlan_tci=0x0000/0xffff', actions: 'output:200' })]);
    expect(cookieKind(ruleFlows(t)[0]!.cookie)).toBe(FlowKind.TRAP);
  });
  it('a rewrite before a certain hand-off is not offloaded: software runs chain 0 again and makes it (the trap is the same flow, reported not_in_hw)', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower action pedit ex munge ip ttl set 9 pipe action pass');
    expect(t.perRule.get(1)!.error!.message).toMatch(/rewrites the packet.*chain 0 again/);
  });
  it('a rewrite that may reach software after a later chain is not offloaded unless the hand-off can put it back', () => {
    // An IPv6 address is 128 bits, more than a register and a quarter of metadata hold: an unpinned one cannot be saved.
    const t = translate({ rules: ['dev vf0 ingress prio 1 protocol ipv6 flower action pedit ex munge ip6 src set 2001:db8::99 pipe action goto chain 1', 'dev vf0 ingress chain 1 prio 1 protocol all flower action drop'].map((l, i) => ({ id: i + 1, rule: parseFilter(splitArgs(l)).value! })), ports });
    expect(t.perRule.get(1)!.error!.message).toMatch(/rewrites the packet.*chain 0 again/);
  });
  it('a mirror copy or a meter followed by a possible hand-off to software is not offloaded (software would repeat it)', () => {
    for (const [line, what] of [
      ['protocol ip flower action mirred egress mirror dev vf1 pipe action goto chain 1', 'mirror copy'],
      ['protocol all flower action mirred egress mirror dev vf1', 'mirror copy'],
      ['protocol ip flower action mirred ingress mirror dev vf1 pipe action pass', 'mirror copy'],
      ['protocol ip flower action police rate 8mbit burst 100k conform-exceed drop/pipe action goto chain 1', 'meters'],
    ]) {
      const t = one(`dev vf0 ingress prio 1 ${line}`);
      expect(t.perRule.get(1)).toMatchObject({ offloaded: false });
      expect(t.perRule.get(1)!.error!.message).toContain(what);
      expect(ruleFlows(t).every((f) => actionsText(f.actions) === 'output:200')).toBe(true);
    }
    // A copy and then a redirect never reaches software: offloaded.
    expect(one('dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action mirred egress redirect dev uplink').perRule.get(1)!.offloaded).toBe(true);
  });
  it('actions OVS cannot offload (pkt_mark, sample) are trapped, or refused with skip_sw, with the reason', () => {
    for (const [act, why] of [['skbedit mark 5 pipe action mirred ingress redirect dev vf1', /pkt_mark/], ['skbedit mark 5 pipe action goto chain 1', /pkt_mark/], ['sample rate 10 group 5 pipe action mirred egress redirect dev vf1', /IPFIX collector/]] as const) {
      const t = one(`dev vf0 ingress prio 1 protocol ip flower action ${act}`);
      expect(t.perRule.get(1)).toMatchObject({ offloaded: false, flows: 1 });
      expect(t.perRule.get(1)!.error!.message).toMatch(why);
      const s = one(`dev vf0 ingress prio 1 protocol ip flower skip_sw action ${act}`);
      expect(s.perRule.get(1)).toMatchObject({ refused: true });
      expect(s.perRule.get(1)!.error!.errno).toBe(Errno.EOPNOTSUPP);
    }
  });
  it('a mark that only a VF, the wire or a software re-run would carry is left out, and the rule offloaded', () => {
    for (const tail of ['mirred egress redirect dev vf1', 'mirred egress mirror dev vf1 pipe action drop', 'pass', 'mirred ingress mirror dev vf1 pipe action pipe']) {
      const line = `dev vf0 ingress prio 1 protocol ip flower action ${tail.startsWith('mirred ingress') ? `${tail.replace(' pipe action pipe', '')} pipe action skbedit mark 5 pipe action drop` : `skbedit mark 5 pipe action ${tail}`}`;
      const t = one(line);
      expect(t.perRule.get(1), line).toMatchObject({ offloaded: true });
      expect(ruleFlows(t).some((f) => f.actions.some((x) => x.a === 'set_field' && x.field === 'pkt_mark'))).toBe(false);
    }
  });
  it("a trap covers the rule's own match, not all traffic of its protocol", () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 80 action skbedit mark 7 pipe action mirred ingress redirect dev vf1');
    expect(ruleFlows(t).map((f) => matchText(f.match))).toEqual(['in_port=100,dl_type=0x800,vlan_tci=0x0000/0xffff,nw_proto=17,udp_dst=80']);
  });
  it('a trapped VLAN rule takes only tags with its VID/PCP, in forms OVS offloads (no CFI-only mask)', () => {
    const m = (line: string) => ruleFlows(one(`dev vf0 ingress prio 1 ${line}`)).map((f) => matchText(f.match).replace('in_port=100,', ''));
    expect(m('protocol 802.1Q flower vlan_id 5 action drop')).toEqual(['vlan_tci=0x1005/0x1fff']);
    // vlan_ethtype ip is flower's type after every tag: two-tag frames too, where OpenFlow sees the inner TPID (deeperTags).
    expect(m('protocol 802.1ad flower vlan_id 100 vlan_prio 3 vlan_ethtype ip action drop')).toEqual(['vlan_tci=0x7064/0xffff,dl_type=0x800', 'vlan_tci=0x7064/0xffff,dl_type=0x8100', 'vlan_tci=0x7064/0xffff,dl_type=0x88a8']);
    expect(m('protocol 802.1Q flower vlan_prio 2 action drop')).toEqual(['vlan_tci=0x5000/0xf000']);
    expect(m('protocol 802.1Q flower action drop')).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((p) => `vlan_tci=0x${((p << 13) | 0x1000).toString(16)}/0xf000`));
    for (const l of ['protocol 802.1Q flower action drop', 'protocol all flower num_of_vlans 1 action drop', 'protocol ip flower action drop']) {
      expect(one(`dev vf0 ingress prio 1 ${l}`).flows.map((f) => matchText(f.match)).join(' ')).not.toMatch(/vlan_tci=0x[01]000\/0x1000/);
    }
  });
  it('every frame from a VF un-wildcards its whole TCI in table 0, so datapath flows carry an offloadable VLAN mask', () => {
    const t0 = one('dev vf0 ingress prio 1 protocol ip flower action drop').flows.filter((f) => f.table === 0 && matchText(f.match).startsWith('in_port=100'));
    expect(t0.map((f) => [f.priority, matchText(f.match), actionsText(f.actions)])).toEqual([[101, 'in_port=100,vlan_tci=0x0000/0xffff', actionsText(t0[1]!.actions)], [100, 'in_port=100', actionsText(t0[1]!.actions)]]);
  });
  it('vlan pop/modify on protocol all: untagged frames get their own no-op flow, tagged ones the action (act_vlan.c)', () => {
    const pop = ruleFlows(one('dev vf0 ingress prio 1 protocol all flower action vlan pop pipe action mirred egress redirect dev vf1'));
    // OpenFlow 1.5 takes pop_vlan only under a match that says a tag is there: one flow per PCP.
    expect(pop.map((f) => [matchText(f.match), actionsText(f.actions)])).toEqual([
      ['in_port=100,vlan_tci=0x0000/0xffff', 'output:101'],
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((p) => [`in_port=100,vlan_tci=0x${((p << 13) | 0x1000).toString(16)}/0xf000`, 'pop_vlan,output:101']),
    ]);
    // modify sets the TPID to its protocol (802.1Q by default) and keeps the PCP: a pop and a push per PCP value.
    const mod = ruleFlows(one('dev vf0 ingress prio 1 protocol all flower action vlan modify id 9 pipe action mirred egress redirect dev vf1'));
    expect(mod).toHaveLength(9);
    expect(matchText(mod[3]!.match)).toBe('in_port=100,vlan_tci=0x5000/0xf000');
    expect(actionsText(mod[3]!.actions)).toBe('pop_vlan,push_vlan:0x8100,set_field:4105->vlan_vid,set_field:2->vlan_pcp,output:101');
    // With a priority, one flow for tagged frames; a push's known TPID and PCP make a later modify exact too.
    expect(actionsText(ruleFlows(one('dev vf0 ingress prio 1 protocol all flower action vlan modify id 9 protocol 802.1ad priority 5 pipe action mirred egress redirect dev vf1'))[8]!.actions)).toBe('pop_vlan,push_vlan:0x88a8,set_field:4105->vlan_vid,set_field:5->vlan_pcp,output:101');
    expect(actionsText(ruleFlows(one('dev vf0 ingress prio 1 protocol ip flower action vlan push protocol 802.1ad id 7 priority 2 pipe action vlan modify id 8 pipe action mirred egress redirect dev vf1'))[0]!.actions)).toBe(
      'push_vlan:0x88a8,set_field:4103->vlan_vid,set_field:2->vlan_pcp,pop_vlan,push_vlan:0x8100,set_field:4104->vlan_vid,set_field:2->vlan_pcp,output:101',
    );
  });
  it('skip_hw keeps its place with a trap and is reported not offloaded, never refused (C5)', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower skip_hw dst_ip 10.0.0.2 action drop');
    expect(t.perRule.get(1)).toMatchObject({ offloaded: false, flows: 1 });
    expect(t.perRule.get(1)!.refused).toBeFalsy();
    expect(ruleFlows(t).map(flowText)).toEqual([expect.objectContaining({ match: 'in_port=100,dl_type=0x800,vlan_tci=0x0000/0xffff,nw_dst=10.0.0.2', actions: 'output:200' })]);
  });
  it('continue goes on at the next prio\'s table (the rest of its prio skipped); past the chain\'s last prio it is a miss', () => {
    const rules = (...lines: string[]) => translate({ rules: lines.map((l, i) => ({ id: i + 1, rule: parseFilter(splitArgs(l)).value! })), ports });
    const t = rules(
      'dev vf0 ingress prio 10 protocol ip flower dst_ip 10.0.0.1 action continue',
      'dev vf0 ingress prio 10 protocol ip flower src_ip 10.0.0.2 action drop',
      'dev vf0 ingress prio 20 protocol ip flower action continue',
    );
    const at = (p: number) => t.tables.get(`0/${p}`)!;
    const mine = (id: number) => t.flows.filter((f) => f.cookie === t.flows.find((g) => g.table === at(id === 3 ? 20 : 10) && flowText(g).match.includes(id === 1 ? 'nw_dst=10.0.0.1' : id === 3 ? 'in_port=100' : 'nw_src'))?.cookie);
    expect([1, 3].map((id) => t.perRule.get(id)!.offloaded)).toEqual([true, true]);
    expect(mine(1).map((f) => flowText(f).actions)).toEqual([`resubmit(,${at(20)})`]);
    expect(mine(3).map((f) => flowText(f).actions)).toEqual(['output:200']);
    // A rewrite or a copy before a continue in chain 0 would be repeated by software after a miss: trapped.
    expect(rules('dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action continue').perRule.get(1)!.offloaded).toBe(false);
  });
  it('reclassify and jump have no OpenFlow equivalent', () => {
    expect(one('dev vf0 ingress prio 1 protocol ip flower skip_sw action reclassify').perRule.get(1)!.error!.message).toMatch(/reclassify/);
  });
  it('egress filters are refused', () => {
    expect(one('dev vf0 egress prio 1 protocol ip flower action drop').perRule.get(1)!.refused).toBe(true);
  });
});

describe('incremental changes', () => {
  const rules = [1, 2, 3, 5].map((prio, i) => ({ id: i + 1, rule: parseFilter(splitArgs(`dev vf0 ingress prio ${prio} protocol ip flower dst_ip 10.0.0.${i} action drop`)).value! }));
  const diff = (a: ReturnType<typeof translate>, b: ReturnType<typeof translate>) => {
    const x = new Set(a.flows.map((f) => f.cookie)), y = new Set(b.flows.map((f) => f.cookie));
    return { added: [...y].filter((c) => !x.has(c)).length, removed: [...x].filter((c) => !y.has(c)).length };
  };
  it('a rule at a new prio adds its flows and rewires one fall-through, nothing else', () => {
    const before = translate({ rules, ports });
    const extra = { id: 9, rule: parseFilter(splitArgs('dev vf0 ingress prio 4 protocol ip flower dst_ip 10.0.0.9 action drop')).value! };
    const after = translate({ rules: [...rules, extra], ports, layout: before.tables });
    // + the rule's flow, + its table's fall-through to prio 5, and prio 3's fall-through now pointing at it (-1 old).
    expect(diff(before, after)).toEqual({ added: 3, removed: 1 });
  });
  it('deleting a rule removes its flows and, when its prio empties, unlinks that table', () => {
    const before = translate({ rules, ports });
    const after = translate({ rules: rules.filter((r) => r.id !== 2), ports, layout: before.tables });
    expect(diff(before, after)).toEqual({ added: 1, removed: 3 });
  });
});

describe('cookies', () => {
  it('carry kind and rule id, and change with the flow', () => {
    const c = cookieOf(FlowKind.RULE, 12345, 3, 59999, parseMatch('in_port=100'), []);
    expect(cookieKind(c)).toBe(FlowKind.RULE);
    expect(cookieRuleId(c)).toBe(12345);
    expect(cookieOf(FlowKind.RULE, 12345, 3, 59999, parseMatch('in_port=100'), parseActions('output:1'))).not.toBe(c);
  });
  it('hash the flow content: any change of table, priority, field, value, mask or action argument changes them; a spelling does not', () => {
    const base = (): Parameters<typeof cookieOf> => [FlowKind.RULE, 7, 3, 100, parseMatch('in_port=100,dl_type=0x800,nw_dst=10.0.0.0/255.255.255.0,ct_label=0x1/0x3'), parseActions('ct(commit,zone=5,nat(src=10.0.0.1-10.0.0.9:1000-2000),exec(set_field:0x1/0xff->ct_mark),table=4),set_field:0x1200/0xff00->tcp_src,output:2')];
    const c = cookieOf(...base());
    expect(cookieOf(...base())).toBe(c);
    const changed: ((a: Parameters<typeof cookieOf>) => void)[] = [
      (a) => (a[2] = 4),
      (a) => (a[3] = 101),
      (a) => (a[4][2]!.field = 'ip_src'),
      (a) => (a[4][2]!.value = 0x0a000100),
      (a) => (a[4][2]!.mask = 0xffff0000),
      (a) => delete a[4][2]!.mask,
      (a) => (a[4][3]!.mask = Uint8Array.of(7)),
      (a) => a[4].reverse(),
      (a) => a[5].pop(),
      (a) => ((a[5][0] as { zone: number }).zone = 6),
      (a) => ((a[5][0] as { nat: { portMax?: number } }).nat.portMax = 2001),
      (a) => ((a[5][0] as { exec: { value: number }[] }).exec[0]!.value = 2),
      (a) => ((a[5][1] as { mask: number }).mask = 0xf000),
    ];
    for (const change of changed) {
      const a = base();
      change(a);
      expect(cookieOf(...a), String(change)).not.toBe(c);
    }
    // mod_dl_dst:X and set_field:X->eth_dst are one Set-Field on the wire: one cookie, whatever the printer says.
    expect(cookieOf(FlowKind.RULE, 7, 3, 100, [], parseActions('mod_dl_dst:02:00:00:00:00:01'))).toBe(cookieOf(FlowKind.RULE, 7, 3, 100, [], parseActions('set_field:02:00:00:00:00:01->eth_dst')));
  });
  it('are stable across runs: the same rules give the same flows', () => {
    const a = one('dev vf0 ingress prio 1 protocol ip flower ip_proto tcp dst_port 1000-1999 action drop', 7);
    const b = one('dev vf0 ingress prio 1 protocol ip flower ip_proto tcp dst_port 1000-1999 action drop', 7);
    expect(a.flows).toEqual(b.flows);
    const cookies = a.flows.map((f) => f.cookie);
    expect(new Set(cookies).size).toBe(cookies.length);
  });
});

describe('incremental translation (memo)', () => {
  it('gives exactly the flows of a fresh translation through any sequence of adds and deletes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(arbRule(), fc.boolean(), fc.nat()), { minLength: 1, maxLength: 25 }), (steps) => {
        const memo: TranslateMemo = new WeakMap();
        let rules: { id: number; rule: FlowerRule }[] = [];
        let layout = new Map<string, number>();
        steps.forEach(([rule, del, pick], i) => {
          if (del && rules.length) rules = rules.filter((_, k) => k !== pick % rules.length);
          // Few (dev, chain, prio) groups, so deletes shift the ranks of the rules after them.
          else rules = [...rules, { id: i + 1, rule: { ...rule, dev: 'vf0', chain: 0, prio: 1 + (pick % 2) } }];
          const fresh = translate({ rules, ports: defaultPortMap(4), layout });
          const cached = translate({ rules, ports: defaultPortMap(4), layout, memo });
          expect(cached.flows.map(flowLine)).toEqual(fresh.flows.map(flowLine));
          expect(cached.meters).toEqual(fresh.meters);
          layout = fresh.tables;
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe('what OVS would refuse is refused here first', () => {
  it('ct on a filter that is not ip/ipv6 stays in software (OVS tracks IP only)', () => {
    const t = one('dev vf0 ingress prio 1 protocol arp flower action ct commit zone 1 pipe action mirred egress redirect dev vf1');
    expect(t.perRule.get(1)!.offloaded).toBe(false);
    expect(t.perRule.get(1)!.error!.message).toMatch(/ct needs a filter on protocol ip or ipv6/);
  });

  it('mpls pop on a filter that is not MPLS stays in software', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower action mpls pop protocol ip action mirred egress redirect dev vf1');
    expect(t.perRule.get(1)!.error!.message).toMatch(/mpls pop needs a filter on an MPLS protocol/);
  });

  it('a ct_mark with bit 31 set prints as OVS reads it', () => {
    const t = one('dev vf0 ingress prio 1 protocol ip flower ct_state +trk+est ct_mark 0x80000001/0x80000001 action drop');
    expect(ruleFlows(t).map((f) => matchText(f.match)).join(' ')).toContain('ct_mark=0x80000001/0x80000001');
  });
});

describe('one group at a time (translateGroup)', () => {
  it("gives a (dev, chain, prio) group exactly the flows translate() gives its rules, or declines for rules that name other chains, meters or zones", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(arbRule(), fc.nat()), { minLength: 1, maxLength: 20 }), (xs) => {
        const rules = xs.map(([rule, pick], i) => ({ id: i + 1, rule: { ...rule, dev: `vf${pick % 2}`, chain: 0, prio: 1 + (pick % 3) } }));
        const ports = defaultPortMap(4);
        const whole = translate({ rules, ports });
        const groups = new Map<string, typeof rules>();
        for (const r of rules) {
          const k = `${r.rule.dev}|${r.rule.prio}`;
          groups.set(k, [...(groups.get(k) ?? []), r]);
        }
        for (const members of groups.values()) {
          if (members[0]!.rule.direction !== 'ingress') continue;
          const g = translateGroup(members, whole.tables.get(`0/${members[0]!.rule.prio}`)!, { ports });
          const ids = new Set(members.map((m) => m.id));
          const expected = whole.flows.filter((f) => cookieKind(f.cookie) !== FlowKind.DEFAULT && ids.has(cookieRuleId(f.cookie)));
          // Rules that name other chains or prios (goto, continue), meters or conntrack zones depend on the whole set.
          const dependent = members.some((m) => m.rule.actions.some((a) => a.kind === 'police' || (a.kind === 'ct' && !a.clear) || ('control' in a && (a.control.kind === 'goto' || a.control.kind === 'continue'))) || m.rule.match.ctZone !== undefined);
          if (g === undefined) {
            expect(dependent).toBe(true);
            continue;
          }
          expect(g.flows.map(flowLine).sort()).toEqual(expected.map(flowLine).sort());
          for (const m of members) expect(g.perRule.get(m.id)?.offloaded).toBe(whole.perRule.get(m.id)?.offloaded);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('rewrite, then goto (issue 11 section 2)', () => {
  const tr = (lines: string[]) => translate({ rules: lines.map((l, i) => ({ id: i + 1, rule: parseFilter(splitArgs(l)).value! })), ports });
  const rewrite = 'dev vf0 ingress prio 1 protocol ip flower src_ip 10.0.0.1 action pedit ex munge ip src set 192.168.1.1 pipe action goto chain 1';
  const chain1 = 'dev vf0 ingress chain 1 prio 1 protocol ip flower src_ip 192.168.1.1 action drop';

  it('offloads a rewrite over a pinned field and puts the field back on the hand-off of the chain it jumps to', () => {
    const t = tr([rewrite, chain1]);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    const lines = t.flows.map(flowLine);
    expect(lines.some((l) => l.includes('reg14=3,reg2=1,dl_type=0x800,actions=set_field:10.0.0.1->ip_src'))).toBe(true);
    expect(lines.some((l) => l.includes('in_port=100,reg14=0,actions=set_field:3->reg14,resubmit(,253),output:200'))).toBe(true);
  });

  it('saves an unpinned field of up to 32 bits in its register and moves it back on the hand-off', () => {
    const t = tr([rewrite.replace('src_ip 10.0.0.1', 'src_ip 10.0.0.0/24'), chain1]);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    const lines = uncookied(t.flows);
    // The copy is taken before the rewrite, and reg13 says reg2 holds bits, not a rule id.
    // Chain 0 is entered with every slot free: one flow, no reg15 match.
    expect(lines.filter((l) => l.startsWith('table=2,') && l.includes('nw_src=10.0.0.0/255.255.255.0')).map((l) => l.replace(/.*actions=/, ''))).toEqual([
      'move:NXM_OF_IP_SRC[]->NXM_NX_REG2[],set_field:0x4/0x4->reg13,set_field:0x4/0x4->reg15,mod_nw_src:192.168.1.1,resubmit(,3)',
    ]);
    expect(lines).toContain('table=253,priority=20,reg14=3,reg13=0x4/0x4,dl_type=0x800,actions=move:NXM_NX_REG2[]->NXM_OF_IP_SRC[]');
    expect(lines.some((l) => l.startsWith('table=253,priority=10,'))).toBe(false);
    // Ports (a range too), tos, ttl and MACs (in a register and metadata) fit as well; IPv6 addresses do not.
    const saved = (line: string) => tr([line, chain1]).perRule.get(1)!.offloaded;
    expect(saved('dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 1000-1999 action pedit ex munge udp dport set 4789 pipe action goto chain 1')).toBe(true);
    expect(saved('dev vf0 ingress prio 1 protocol ip flower action pedit ex munge ip tos set 0x28 retain 0xfc munge ip ttl dec pipe action goto chain 1')).toBe(true);
    expect(saved('dev vf0 ingress prio 1 protocol ipv6 flower action pedit ex munge ip6 dst set 2001:db8::9 pipe action goto chain 1')).toBe(false);
    expect(saved('dev vf0 ingress prio 1 protocol ip flower action pedit ex munge eth dst set 02:00:00:00:00:09 pipe action goto chain 1')).toBe(true);
    const mac = uncookied(tr(['dev vf0 ingress prio 1 protocol all flower action pedit ex munge eth src set 02:00:00:00:00:09 pipe action goto chain 1', chain1]).flows);
    expect(mac.find((l) => l.startsWith('table=2,priority=59999'))).toContain('move:NXM_OF_ETH_SRC[0..31]->NXM_NX_REG1[],move:NXM_OF_ETH_SRC[32..47]->OXM_OF_METADATA[16..31]');
    expect(mac).toContain('table=253,priority=20,reg14=2,reg13=0x2/0x2,actions=move:NXM_NX_REG1[]->NXM_OF_ETH_SRC[0..31],move:OXM_OF_METADATA[16..31]->NXM_OF_ETH_SRC[32..47]');
  });

  it('defers a mirror copy to where the path ends in hardware, and hands off without it', () => {
    const t = tr([rewrite.replace('pipe action goto', 'pipe action mirred egress mirror dev vf1 pipe action goto'), chain1]);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    const lines = uncookied(t.flows);
    // The copy leaves the rule's flow: reg13 names the rule (bits 16-31) and says copies are pending (bit 15).
    expect(lines.filter((l) => l.startsWith('table=2,') && l.includes('nw_src=10.0.0.1')).map((l) => l.replace(/.*actions=/, ''))).toEqual([
      'set_field:1->reg2,set_field:0x4/0x4->reg15,set_field:0x18000/0xffff8000->reg13,mod_nw_src:192.168.1.1,resubmit(,3)',
    ]);
    expect(lines).toContain('table=252,priority=10,reg13=0x10000/0xffff0000,actions=output:101');
    // Chain 1's drop ends the path in hardware: the copy goes first, as tc sends it; idle, the drop alone.
    expect(lines.filter((l) => l.includes('priority=59999,') && l.includes('nw_src=192.168.1.1')).map((l) => l.replace(/.*nw_src=192.168.1.1,/, ''))).toEqual([
      'reg13=0x0/0x8000,actions=drop',
      'reg13=0x8000/0x8000,actions=resubmit(,252)',
    ]);
  });

  it('under pending copies, a later ct nat then goto hands off (it may rewrite an established connection), a ct without nat goes on', () => {
    const t = tr([
      'dev vf0 ingress prio 1 protocol ip flower action mirred egress mirror dev vf1 pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action ct zone 3 nat pipe action goto chain 2',
      'dev vf0 ingress chain 1 prio 2 protocol ip flower ip_proto udp action ct zone 4 pipe action goto chain 2',
      'dev vf0 ingress chain 2 prio 1 protocol ip flower action drop',
    ]);
    const pending = (id: number) => t.flows.filter((f) => cookieRuleId(f.cookie) === id && f.match.some((m) => m.field === 'reg13' && m.value === 0x8000)).map((f) => actionsText(f.actions));
    expect(pending(2)).toEqual(['resubmit(,253)']);
    expect(pending(3)).toEqual([]);
    expect(pending(4)).toEqual(['resubmit(,252)']);
  });

  it('traps it when the packet changes after a mirror copy, or a rule jumps back to chain 0', () => {
    expect(tr(['dev vf0 ingress prio 1 protocol ip flower src_ip 10.0.0.1 action mirred egress mirror dev vf1 pipe action pedit ex munge ip src set 192.168.1.1 pipe action goto chain 1', chain1]).perRule.get(1)!.offloaded).toBe(false);
    expect(tr([rewrite, chain1, 'dev vf0 ingress chain 1 prio 2 protocol all flower action goto chain 0']).perRule.get(1)!.offloaded).toBe(false);
  });
});

describe('vlan push, pop or modify, then goto (issue 11 section 2)', () => {
  const tr = (lines: string[]) => translate({ rules: lines.map((l, i) => ({ id: i + 1, rule: parseFilter(splitArgs(l)).value! })), ports, outerTpid: 0x8100 });
  const chain1 = 'dev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action drop';
  const restores = (t: ReturnType<typeof translate>) => uncookied(t.flows.filter((f) => f.table === 253 && f.priority === 10));

  it('a pop of a tag the match pins (VID and PCP) is put back by the hand-off: push_vlan with them', () => {
    const t = tr(['dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 100 vlan_prio 3 vlan_ethtype ip action vlan pop pipe action goto chain 1', chain1]);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    expect(restores(t)).toEqual(['table=253,priority=10,reg14=13,reg12=1,actions=push_vlan:0x8100,set_field:4196->vlan_vid,set_field:3->vlan_pcp']);
    // (Its other flows send frames of two tags to software: deeper tags, docs/mapping.md.)
    expect(ruleFlows(t).filter((f) => cookieRuleId(f.cookie) === 1 && f.table !== 253).map((f) => actionsText(f.actions))).toContain(
      `set_field:1->reg12,set_field:0x1000/0x1000->reg15,pop_vlan,resubmit(,${t.tables.get('1/entry')})`,
    );
  });
  it('a push is undone by a pop; a modify by a pop and a push of the pinned tag', () => {
    expect(restores(tr(['dev vf0 ingress prio 1 protocol ip flower action vlan push id 5 pipe action goto chain 1', chain1]))).toEqual([
      'table=253,priority=10,reg14=13,reg12=1,vlan_tci=0x1000/0x1000,actions=pop_vlan',
    ]);
    expect(restores(tr(['dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 100 vlan_prio 0 vlan_ethtype ip action vlan modify id 7 pipe action goto chain 1', chain1]))).toEqual([
      'table=253,priority=10,reg14=13,reg12=1,vlan_tci=0x1000/0x1000,actions=pop_vlan,push_vlan:0x8100,set_field:4196->vlan_vid,set_field:0->vlan_pcp',
    ]);
  });
  it('stays trapped when the tag it leaves has another TPID than the declared one (later chains assume the declared one)', () => {
    const t = tr([
      'dev vf0 ingress prio 1 protocol ip flower action vlan push id 5 protocol 802.1ad pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol 802.1Q flower vlan_id 5 action drop',
    ]);
    expect(t.perRule.get(1)!.offloaded).toBe(false);
    expect(tr(['dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 100 vlan_prio 0 action vlan modify id 7 protocol 802.1ad pipe action goto chain 1', chain1]).perRule.get(1)!.offloaded).toBe(false);
  });
  it('stays trapped when the tag it took is not pinned, it took two, or a frame of two tags may reach it (OVS would see no tag after the pop)', () => {
    expect(tr(['dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 100 vlan_ethtype ip action vlan pop pipe action goto chain 1', chain1]).perRule.get(1)!.offloaded).toBe(false);
    expect(tr(['dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 100 vlan_prio 3 action vlan pop pipe action goto chain 1', chain1]).perRule.get(1)!.offloaded).toBe(false);
    expect(tr(['dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 100 vlan_prio 0 action vlan pop pipe action vlan pop pipe action goto chain 1', chain1]).perRule.get(1)!.offloaded).toBe(false);
  });
  it('a later rule changing the tag again hands the packet off untouched (tag restores do not stack)', () => {
    const t = tr([
      'dev vf0 ingress prio 1 protocol ip flower action vlan push id 5 pipe action goto chain 1',
      'dev vf0 ingress chain 1 prio 1 protocol all flower action vlan push id 6 pipe action goto chain 2',
      'dev vf0 ingress chain 2 prio 1 protocol ip flower ip_proto tcp action drop',
    ]);
    expect(t.perRule.get(2)!.offloaded).toBe(true);
    const second = ruleFlows(t).filter((f) => cookieRuleId(f.cookie) === 2 && f.table !== 253).map(flowText);
    expect(second).toContainEqual(expect.objectContaining({ match: expect.stringContaining('reg15=0x1000/0x1000'), actions: 'resubmit(,253)' }));
  });
});

describe('masked pedit as masked set_field (issue 11 section 5)', () => {
  const rule = (line: string) => parseFilter(splitArgs(line)).value!;
  const tr = (rules: FlowerRule[]) => translate({ rules: rules.map((r, i) => ({ id: i + 1, rule: r })), ports });
  /** Keeps `keep` bits of the pedit key at `offset` (a partial word, as a guest OVS's masked set emits). */
  const keepBits = (r: FlowerRule, htype: string, offset: number, keep: number): FlowerRule => ({
    ...r,
    actions: r.actions.map((a) => (a.kind === 'pedit' ? { ...a, keys: a.keys.map((k) => (k.htype === htype && k.offset === offset ? { ...k, mask: (k.mask | keep) >>> 0, value: (k.value & ~keep) >>> 0 } : k)) } : a)),
  });
  const head = 'dev vf0 ingress prio 1';
  const redirect = 'pipe action mirred egress redirect dev vf1';
  const acts = (r: FlowerRule) => ruleFlows(tr([r])).map((f) => actionsText(f.actions));

  it('a DSCP-only or ECN-only tos set writes that part alone', () => {
    expect(acts(rule(`${head} protocol ip flower action pedit ex munge ip tos set 0x28 retain 0xfc ${redirect}`))).toEqual(['set_field:10->ip_dscp,output:101']);
    expect(acts(rule(`${head} protocol ip flower action pedit ex munge ip tos set 0x2 retain 0x3 ${redirect}`))).toEqual(['set_field:2->nw_ecn,output:101']);
  });
  it('a port set with retain is a masked set_field', () => {
    expect(acts(rule(`${head} protocol ip flower ip_proto tcp action pedit ex munge tcp sport set 0x1200 retain 0xff00 ${redirect}`))).toEqual(['set_field:0x1200/0xff00->tcp_src,output:101']);
    expect(acts(rule(`${head} protocol ip flower ip_proto udp action pedit ex munge udp dport set 53 retain 0xff ${redirect}`))).toEqual(['set_field:0x35/0xff->udp_dst,output:101']);
  });
  it('a port rewrite on a filter without ip_proto is offloaded for that protocol, its other packets trapped below', () => {
    // act_pedit.c writes a tcp key at the transport header of any packet: the rule's TCP packets are the
    // ip_proto tcp rule's; UDP, ICMP and the rest meet it in the guest's software.
    const t = tr([rule(`${head} protocol ip flower dst_ip 10.0.0.2 action pedit ex munge tcp dport set 8080 ${redirect}`)]);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    const flows = ruleFlows(t);
    expect(flows.map((f) => [cookieKind(f.cookie), flowText(f).match, actionsText(f.actions)])).toEqual([
      [FlowKind.RULE, 'in_port=100,dl_type=0x800,vlan_tci=0x0000/0xffff,nw_proto=6,nw_dst=10.0.0.2', 'set_field:8080->tcp_dst,output:101'],
      [FlowKind.TRAP, 'in_port=100,dl_type=0x800,vlan_tci=0x0000/0xffff,nw_dst=10.0.0.2', 'output:200'],
    ]);
    // The TCP flow must win over the trap: it sits one priority above.
    expect(flows[0]!.priority).toBe(flows[1]!.priority + 1);
    expect(acts(rule(`${head} protocol ipv6 flower action pedit ex munge udp sport set 53 ${redirect}`))).toEqual(['set_field:53->udp_src,output:101', 'output:200']);
    // Two L4 headers, or a ttl dec (its exact flows already take the upper priority): trapped whole, with the reason.
    expect(tr([rule(`${head} protocol ip flower action pedit ex munge tcp dport set 1 munge udp dport set 2 ${redirect}`)]).perRule.get(1)!.offloaded).toBe(false);
    expect(tr([rule(`${head} protocol ip flower action pedit ex munge tcp dport set 1 munge ip ttl dec ${redirect}`)]).perRule.get(1)!.error!.message).toMatch(/ip_proto tcp/);
    // In a conntrack zone: the other protocols' connections would be tracked by the guest, the rest by the host.
    expect(tr([rule(`${head} protocol ip flower action ct commit zone 5 pipe action pedit ex munge tcp dport set 1 ${redirect}`)]).perRule.get(1)!.offloaded).toBe(false);
    // skip_sw: no software copy to take the other protocols, so refused, as a NIC refuses it.
    expect(tr([rule(`${head} protocol ip flower skip_sw action pedit ex munge tcp dport set 1 ${redirect}`)]).perRule.get(1)).toMatchObject({ refused: true });
  });
  it('partial MAC, IPv4 and IPv6 words are masked set_fields', () => {
    // eth dst bytes 0-3 are the word at 0: keeping its first three bytes leaves the last three written.
    expect(acts(keepBits(rule(`${head} protocol all flower action pedit ex munge eth dst set 02:00:00:00:00:09 ${redirect}`), 'eth', 0, 0xffffff00))).toEqual(['set_field:00:00:00:00:00:09/00:00:00:ff:ff:ff->eth_dst,output:101']);
    expect(acts(keepBits(rule(`${head} protocol ip flower action pedit ex munge ip src set 192.168.1.1 ${redirect}`), 'ip4', 12, 0xffff0000))).toEqual(['set_field:0.0.1.1/0.0.255.255->ip_src,output:101']);
    const v6 = keepBits(keepBits(rule(`${head} protocol ipv6 flower action pedit ex munge ip6 dst set 2001:db8::1 ${redirect}`), 'ip6', 32, 0xffffffff), 'ip6', 36, 0xffff0000);
    expect(acts(v6)).toEqual(['set_field:2001:db8::1/ffff:ffff:ffff:ffff::ffff->ipv6_dst,output:101']);
  });
  it('part of DSCP, ECN or ttl is a load to each run of bits it writes (OVS takes masked sets of them, not masked matches)', () => {
    expect(acts(rule(`${head} protocol ip flower action pedit ex munge ip tos set 0x20 retain 0xf0 ${redirect}`))).toEqual(['load:0x2->OXM_OF_IP_DSCP[2..5],output:101']);
    expect(acts(rule(`${head} protocol ip flower action pedit ex munge ip tos set 0x21 retain 0xa9 ${redirect}`))).toEqual(['load:0x0->OXM_OF_IP_DSCP[1],load:0x1->OXM_OF_IP_DSCP[3],load:0x0->OXM_OF_IP_DSCP[5],load:0x1->OXM_OF_IP_ECN[0],output:101']);
    expect(acts(rule(`${head} protocol ip flower action pedit ex munge ip ttl set 5 retain 0xf ${redirect}`))).toEqual(['load:0x5->NXM_NX_IP_TTL[0..3],output:101']);
  });
  it('a ttl dec after a ttl set is a set of the result; after a partial set of an unknown ttl it is trapped', () => {
    expect(acts(rule(`${head} protocol ip flower action pedit ex munge ip ttl set 5 munge ip ttl dec ${redirect}`))).toEqual(['mod_nw_ttl:5,mod_nw_ttl:4,output:101']);
    expect(acts(rule(`${head} protocol ip flower ip_ttl 64 action pedit ex munge ip ttl set 0 retain 0xf0 pipe action pedit ex munge ip ttl dec ${redirect}`))).toEqual(['load:0x0->NXM_NX_IP_TTL[4..7],mod_nw_ttl:255,output:101']);
    expect(tr([rule(`${head} protocol ip flower action pedit ex munge ip ttl set 1 retain 0x1 munge ip ttl dec ${redirect}`)]).perRule.get(1)!.offloaded).toBe(false);
  });
  it('refuses a value with bits under its mask (act_pedit xor)', () => {
    const r = keepBits(rule(`${head} protocol ip flower skip_sw action pedit ex munge ip src set 192.168.1.1 ${redirect}`), 'ip4', 12, 0);
    const t = tr([{ ...r, actions: r.actions.map((a) => (a.kind === 'pedit' ? { ...a, keys: [{ ...a.keys[0]!, mask: 0xff }] } : a)) }]);
    expect(t.perRule.get(1)).toMatchObject({ refused: true });
    expect(t.perRule.get(1)!.error!.errno).toBe(Errno.EOPNOTSUPP);
  });
  it('a masked rewrite of a pinned field, then goto, is offloaded and restored on a miss', () => {
    const t = tr([
      rule('dev vf0 ingress prio 1 protocol ip flower ip_tos 0x10/0xff action pedit ex munge ip tos set 0x28 retain 0xfc pipe action goto chain 1'),
      rule('dev vf0 ingress chain 1 prio 1 protocol ip flower ip_tos 0x28 action drop'),
    ]);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    // Only what the set wrote (the DSCP) is put back.
    expect(uncookied(t.flows).filter((l) => l.startsWith('table=253,priority=10,'))).toEqual([
      'table=253,priority=10,reg14=7,reg6=1,dl_type=0x800,actions=set_field:4->ip_dscp',
    ]);
  });
  it('masked rewrites of bits the match pins (a guest OVS pins only what a masked set writes) are restored bit for bit', () => {
    // set_field:0.0.0.9/0.0.0.255->ip_dst as a guest OVS's tc offload writes it (tc syntax has no retain for addresses).
    const lowByte = (r: FlowerRule): FlowerRule => ({ ...r, actions: r.actions.map((a) => (a.kind === 'pedit' ? { ...a, keys: a.keys.map((k) => (k.htype === 'ip4' && k.offset === 16 ? { ...k, mask: 0xffffff00, value: k.value & 0xff } : k)) } : a)) });
    const chain1 = rule('dev vf0 ingress chain 1 prio 1 protocol ip flower ip_proto tcp action drop');
    const t = tr([lowByte(rule('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.1.7 ip_tos 0x20/0xfc action pedit ex munge ip dst set 0.0.0.9 munge ip tos set 0x28 retain 0xfc pipe action goto chain 1')), chain1]);
    expect(t.perRule.get(1)!.offloaded).toBe(true);
    expect(uncookied(t.flows).filter((l) => l.startsWith('table=253,priority=10,')).sort()).toEqual([
      // dst_ip is pinned whole: put back whole, since a later rule holding the slot may write its other bits
      'table=253,priority=10,reg14=4,reg3=1,dl_type=0x800,actions=set_field:10.0.1.7->ip_dst',
      'table=253,priority=10,reg14=7,reg6=1,dl_type=0x800,actions=set_field:8->ip_dscp',
    ]);
    // A bit the set writes that the match leaves open: the whole field is saved and moved back instead.
    const open = tr([lowByte(rule('dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.1.0/24 action pedit ex munge ip dst set 0.0.0.9 pipe action goto chain 1')), chain1]);
    expect(open.perRule.get(1)!.offloaded).toBe(true);
    expect(open.flows.map(flowLine).some((l) => l.includes('actions=move:NXM_NX_REG3[]->NXM_OF_IP_DST[]'))).toBe(true);
  });
});
