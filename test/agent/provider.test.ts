// A provider bridge: vpfd patches each VM's uplink to the operator's bridge, both
// ends in one OVSDB transaction, and takes its end away with the VM. Real frames
// go from a VF through the VM's bridge and the patch pair to the wire.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../agent/config.js';
import { Vpfd } from '../../agent/daemon.js';
import { talk } from '../../agent/ctl/channel.js';
import { parseError } from '../../rules/netlink/nlmsg.js';
import { encodeFilterRequest } from '../../rules/netlink/tc.js';
import type { FlowerRule } from '../../rules/model.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { addPod, delPods } from '../helpers/pods.js';

let pods: string[] = [];
let ovs: PrivateOvs;
let d: Vpfd;
let state: string;

beforeAll(async () => {
  ovs = await startOvs();
  state = mkdtempSync(join(tmpdir(), 'vpf-prov-'));
  pods = [await addPod(ovs, 'pvpod'), await addPod(ovs, 'pvwire')];
  // The operator's bridge: a plain learning switch with the wire on it.
  await ovs.vsctl('add-br', 'prov', '--', 'set', 'bridge', 'prov', 'datapath_type=netdev', '--', 'add-port', 'prov', 'pvwire-dp');
  d = await Vpfd.start({ ...DEFAULT_CONFIG, stateDir: state, ovsdb: `unix:${ovs.dbSock}`, ovsRundir: ovs.rundir, datapathType: 'netdev', providerBridge: 'prov' }, pino({ level: 'silent' }));
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await delPods(pods);
  await ovs?.stop();
  rmSync(state, { recursive: true, force: true });
});

const portsOf = async (br: string) => (await ovs.vsctl('list-ports', br)).split('\n').filter(Boolean);

describe('provider bridge', () => {
  it("patches the VM's uplink to the provider bridge and carries its traffic to the wire", async () => {
    await d.addVm({ name: 'pv', vfs: 1, attach: { vf0: 'pvpod-dp' } });
    expect(await portsOf('prov')).toContain('vpf-pv-pv');
    expect(await ovs.vsctl('get', 'Interface', 'vpf-pv-up', 'type', 'options')).toBe('patch\n{peer=vpf-pv-pv}');
    const r = (parseFilter(splitArgs('dev vf0 ingress prio 1 protocol all flower action mirred egress redirect dev uplink')) as { value: FlowerRule }).value;
    expect(parseError((await talk(d.channelPath('pv'), encodeFilterRequest(r))).at(-1)!).errno).toBe(0);
    const cap = execa('ip', ['netns', 'exec', pods[1]!, 'python3', 'test/helpers/frames.py', 'capture', 'eth0', '1.5']);
    await new Promise<void>((resolve) => cap.stdout!.once('data', () => resolve()));
    await execa('ip', ['netns', 'exec', pods[0]!, 'python3', 'test/helpers/frames.py', 'send', 'eth0', '02:00:00:00:00:99', '02:00:00:00:00:01', '', 'prov', '3']);
    const got = (await cap).stdout.split('\n').filter((l) => l.includes('"marker": "prov"'));
    expect(got).toHaveLength(3);
  }, 30_000);

  it("removes the provider bridge's end with the VM", async () => {
    await d.delVm('pv');
    expect(await portsOf('prov')).toEqual(['pvwire-dp']);
  });
});
