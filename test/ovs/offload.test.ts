// The operator's hardware view: dpctl/dump-flows lines, as OVS prints them for tc-offloaded and software flows.
import { describe, expect, it } from 'vitest';
import { parseDpctlFlows } from '../../ovs/ctl/offload.js';

describe('dpctl/dump-flows -m', () => {
  it('tells offloaded datapath flows from software ones', () => {
    const text = [
      'ufid:a4c4f9b3-1111-4f0e-9d3c-5d6e7f8091a2, skb_priority(0/0),in_port(2),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),ipv4(frag=no), packets:120, bytes:11760, used:0.540s, offloaded:yes, dp:tc, actions:3',
      'ufid:b5d5fab4-2222-4f0e-9d3c-5d6e7f8091a2, recirc_id(0),in_port(3),eth_type(0x0806), packets:2, bytes:84, used:1.2s, dp:ovs, actions:userspace(pid=0,slow_path(action))',
    ].join('\n');
    const flows = parseDpctlFlows(text);
    expect(flows.map((f) => [f.offloaded, f.dp, f.packets])).toEqual([
      [true, 'tc', 120],
      [false, 'ovs', 2],
    ]);
    expect(flows[0]!.match).toMatch(/^skb_priority/);
  });
});
