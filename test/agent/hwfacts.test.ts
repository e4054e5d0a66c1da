// in_hw from facts: datapath flows are traced back to the guest rules whose
// OpenFlow flows made them, on a real ovs-vswitchd over its control socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { UnixctlClient } from '../../ovs/unixctl.js';
import { DatapathLedger, hardwareByRule, type TracedFlow } from '../../agent/hwfacts.js';
import { cookieOf, FlowKind } from '../../translator/cookie.js';
import { parseActions, parseMatch } from '../../ovs/openflow/parse.js';

const cookie = (kind: number, id: number, table: number, prio: number, match: string, actions: string) => cookieOf(kind, id, table, prio, parseMatch(match), parseActions(actions));
const RULE7 = cookie(FlowKind.RULE, 7, 0, 10, 'in_port=100', 'resubmit(,3)');
const RULE8 = cookie(FlowKind.RULE, 8, 3, 10, 'dl_type=0x0800', 'output:101');
const TRAP9 = cookie(FlowKind.TRAP, 9, 3, 5, 'dl_type=0x0806', 'output:200');
const DEFAULT = cookie(FlowKind.DEFAULT, 0, 3, 0, '', 'drop');

describe('datapath flows traced to guest rules', () => {
  let ovs: PrivateOvs;
  let ctl: UnixctlClient;
  const inNs = (...a: string[]) => execa('ip', ['netns', 'exec', ovs.netns, ...a]);

  beforeAll(async () => {
    ovs = await startOvs();
    ctl = new UnixctlClient(() => ovs.vswitchdCtl);
    await ovs.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail_mode=secure');
    // No IPv6 on the veths: their router solicitations would be datapath flows too.
    for (const k of ['all', 'default']) await inNs('sysctl', '-qw', `net.ipv6.conf.${k}.disable_ipv6=1`);
    for (const [a, b] of [['p100', 'x100'], ['p101', 'x101']]) {
      await inNs('ip', 'link', 'add', a!, 'type', 'veth', 'peer', 'name', b!);
      await inNs('ip', 'link', 'set', a!, 'up');
      await inNs('ip', 'link', 'set', b!, 'up');
    }
    await ovs.vsctl('add-port', 'br0', 'p100', '--', 'set', 'interface', 'p100', 'ofport_request=100');
    await ovs.vsctl('add-port', 'br0', 'p101', '--', 'set', 'interface', 'p101', 'ofport_request=101');
    const flows = [
      `table=0,cookie=0x${RULE7.toString(16)},priority=10,in_port=100,actions=resubmit(,3)`,
      `table=3,cookie=0x${RULE8.toString(16)},priority=10,ip,actions=output:101`,
      `table=3,cookie=0x${TRAP9.toString(16)},priority=5,arp,actions=output:101`,
      `table=3,cookie=0x${DEFAULT.toString(16)},priority=0,actions=drop`,
    ];
    for (const f of flows) await ovs.ofctl('add-flow', 'br0', f);
    // One IPv4/UDP frame and one ARP frame from port 100.
    await inNs('python3', '-c', [
      'import socket',
      's=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(("x100",0))',
      's.send(bytes.fromhex("020000000002020000000001080045000030000100004011000a0000010a000002")+bytes(28))',
      's.send(bytes.fromhex("ffffffffffff0200000000010806000108000604000102000000000100000000000000000000000000000000000000000000000000000000"))',
    ].join('\n'));
    for (let i = 0; i < 50 && !/0x0806/.test(await ovs.appctl('dpctl/dump-flows')); i++) await new Promise((r) => setTimeout(r, 100));
  }, 120_000);
  afterAll(async () => {
    ctl?.close();
    await ovs?.stop();
  });

  it('each datapath flow names the rules its packets went through, over one control connection', async () => {
    const ledger = new DatapathLedger(ctl);
    const flows = await ledger.read();
    const ip = flows.find((f) => f.match.includes('eth_type(0x0800)'))!;
    const arp = flows.find((f) => f.match.includes('eth_type(0x0806)'))!;
    expect(ip.steps.map((s) => [s.bridge, s.table, s.cookie])).toEqual([
      ['br0', 0, RULE7],
      ['br0', 3, RULE8],
    ]);
    expect(arp.steps.map((s) => s.cookie)).toEqual([RULE7, TRAP9]);
    // The userspace datapath offloads nothing: every rule's flows are software.
    const hw = hardwareByRule(flows, 'br0');
    expect(hw.get(7)).toMatchObject({ tcFlows: 0, softwareFlows: 2 });
    expect(hw.get(8)).toMatchObject({ tcFlows: 0, softwareFlows: 1 });
    expect(hw.get(9)).toMatchObject({ tcFlows: 0, softwareFlows: 1 });
    expect(hardwareByRule(flows, 'other-bridge').size).toBe(0);
  });

  it('a rule is in hardware only through tc flows; a trap never is, even where its output was offloaded', () => {
    const step = (cookie: bigint) => ({ bridge: 'br0', table: 0, cookie });
    const flows: TracedFlow[] = [
      { ufid: 'a', match: '', actions: '3', packets: 10, bytes: 600, offloaded: true, dp: 'tc', steps: [step(RULE7), step(RULE8)] },
      { ufid: 'b', match: '', actions: '3', packets: 4, bytes: 240, offloaded: true, dp: 'tc', steps: [step(RULE7), step(TRAP9)] },
      { ufid: 'c', match: '', actions: '3', packets: 1, bytes: 60, offloaded: false, dp: 'ovs', steps: [step(RULE8), step(DEFAULT)] },
    ];
    const hw = hardwareByRule(flows, 'br0');
    expect(hw.get(7)).toEqual({ tcFlows: 2, softwareFlows: 0, packets: 14, bytes: 840, tcPackets: 14 });
    expect(hw.get(8)).toEqual({ tcFlows: 1, softwareFlows: 1, packets: 10, bytes: 600, tcPackets: 10 });
    expect(hw.get(9)).toEqual({ tcFlows: 0, softwareFlows: 1, packets: 0, bytes: 0, tcPackets: 4 });
    expect(hw.has(0)).toBe(false);
  });
});
