import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { startOvs, addTestBridge, type PrivateOvs } from './harness/ovs.js';

describe('private OVS harness', () => {
  let ovs: PrivateOvs;
  beforeAll(async () => {
    ovs = await startOvs();
  });
  afterAll(async () => {
    await ovs?.stop();
  });

  it('runs a netdev bridge that accepts flows and traces packets', async () => {
    await addTestBridge(ovs, 'br0');
    await ovs.vsctl('add-port', 'br0', 'p1', '--', 'set', 'interface', 'p1', 'type=internal', 'ofport_request=1');
    await ovs.ofctl('add-flow', 'br0', 'table=0,priority=10,in_port=1,actions=drop');
    const flows = await ovs.ofctl('dump-flows', 'br0');
    expect(flows).toContain('in_port=1 actions=drop');
    const trace = await ovs.appctl('ofproto/trace', 'br0', 'in_port=1');
    expect(trace).toMatch(/Datapath actions: drop/);
  });

  it('loses flows when ovs-vswitchd restarts and keeps the database', async () => {
    await ovs.restartVswitchd();
    expect(await ovs.vsctl('list-br')).toContain('br0');
    expect(await ovs.ofctl('dump-flows', 'br0')).not.toContain('actions=drop');
  });
});
