// The operator's hardware view: dpctl/dump-flows lines, as OVS prints them for tc-offloaded and software flows.
import { describe, expect, it } from 'vitest';
import { parseDpctlFlows, parseTraceSteps } from '../../ovs/ctl/offload.js';

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

describe('ofproto/trace of a datapath flow', () => {
  // OVS 3.1's trace of a recirc_id(0) flow whose ct() recirculates: it goes on into recirc(0x1), which is another
  // datapath flow (its own ufid and counters). Counting table 3 here would count chain 1's packets twice (in_hw stats).
  const text = [
    'Flow: udp,in_port=100,vlan_tci=0x0000,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_frag=no,tp_src=1,tp_dst=2',
    '',
    'bridge("br0")',
    '-------------',
    ' 0. ip,in_port=100, priority 10, cookie 0x1111',
    '    ct(table=3,zone=3)',
    '    drop',
    '     -> A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table 3.',
    '',
    'Final flow: unchanged',
    'Megaflow: recirc_id=0,eth,ip,in_port=100,nw_frag=no',
    'Datapath actions: ct(zone=3),recirc(0x1)',
    '',
    '===============================================================================',
    'recirc(0x1) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)',
    '===============================================================================',
    '',
    'bridge("br0")',
    '-------------',
    '    thaw',
    '        Resuming from table 3',
    ' 3. ct_state=+new+trk,ip, priority 10, cookie 0x3333',
    '    output:101',
    '',
    'Datapath actions: 3',
  ].join('\n');

  it('names the OpenFlow flows of its own pass only, not those after a recirculation', () => {
    expect(parseTraceSteps(text)).toEqual([{ bridge: 'br0', table: 0, cookie: 0x1111n }]);
  });
});
