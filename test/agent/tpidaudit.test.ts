// The declared-TPID audit (agent/tpidaudit.ts) reads real dpctl key text.
import { describe, expect, it } from 'vitest';
import { keyEthTypes, tpidViolations, TPID_8021Q } from '../../agent/tpidaudit.js';
import type { TracedFlow } from '../../agent/hwfacts.js';

// Keys as ovs-dpctl prints them (odp-util.c format_odp_key_attr): each tag's encapsulated type inside encap().
const q = 'recirc_id(0),in_port(2),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x8100),vlan(vid=5,pcp=3),encap(eth_type(0x0800),ipv4(frag=no))';
const ad = 'recirc_id(0),in_port(2),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x88a8),vlan(vid=100,pcp=6),encap(eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0800)))';
const untagged = 'recirc_id(0),in_port(2),eth(),eth_type(0x0800),ipv4(frag=no)';
const flow = (match: string, tables: number[], bridge = 'vpf-a'): TracedFlow => ({
  match, packets: 1, bytes: 60, offloaded: true, dp: 'tc', actions: '3',
  steps: tables.map((table) => ({ bridge, table, cookie: 0x1000000100000000n })),
});

describe('TPID audit', () => {
  it('reads the ethertypes of a key outermost first', () => {
    expect(keyEthTypes(ad)).toEqual([0x88a8, 0x8100, 0x0800]);
    expect(keyEthTypes('eth_type(0x8100/0xffff),vlan(vid=5)')).toEqual([0x8100]);
  });

  it('flags an 802.1ad frame that reached the rules of a VM declared 802.1Q, with the key', () => {
    const v = tpidViolations([flow(q, [0, 1]), flow(ad, [0, 1]), flow(untagged, [0, 1])], 'vpf-a', TPID_8021Q);
    expect(v).toEqual([{ match: ad, reason: 'outer TPID 0x88a8 where 0x8100 was declared' }]);
  });

  it('ignores frames that met no rule table (a guest sending on its representor) and other bridges', () => {
    expect(tpidViolations([flow(ad, [0]), flow(ad, [0, 1], 'vpf-b')], 'vpf-a', TPID_8021Q)).toEqual([]);
  });
});
