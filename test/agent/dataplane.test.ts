// Real frames through vpfd's flows: a rule that pushes a VLAN tag delivers
// tagged frames (VID and PCP as asked) to the other pod; a drop rule drops.
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

const PODS = ['dpt0', 'dpt1'];
let ovs: PrivateOvs;
let d: Vpfd;
let state: string;
const sh = (...a: string[]) => execa(a[0]!, a.slice(1));
const mac = async (ns: string) => JSON.parse((await sh('ip', '-n', ns, '-j', 'link', 'show', 'eth0')).stdout)[0].address as string;

beforeAll(async () => {
  ovs = await startOvs();
  state = mkdtempSync(join(tmpdir(), 'vpf-dp-'));
  for (const [i, p] of PODS.entries()) await addPod(ovs, p, { ip: `10.0.9.${10 + i}/24` });
  await sh('ip', '-n', PODS[0]!, 'neigh', 'replace', '10.0.9.11', 'lladdr', await mac(PODS[1]!), 'dev', 'eth0', 'nud', 'permanent');
  d = await Vpfd.start({ ...DEFAULT_CONFIG, stateDir: state, ovsdb: `unix:${ovs.dbSock}`, ovsRundir: ovs.rundir, datapathType: 'netdev' }, pino({ level: 'silent' }));
  await d.addVm({ name: 'dp', vfs: 2, attach: { vf0: `${PODS[0]}-dp`, vf1: `${PODS[1]}-dp` } });
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await delPods(PODS);
  await ovs?.stop();
  rmSync(state, { recursive: true, force: true });
});

async function add(line: string): Promise<void> {
  const r = (parseFilter(splitArgs(line)) as { value: FlowerRule }).value;
  const replies = await talk(d.channelPath('dp'), encodeFilterRequest(r));
  expect(parseError(replies.at(-1)!).errno).toBe(0);
}

/** Sends UDP from pod 0 to pod 1 on each port and returns what pod 1's wire saw. */
async function sendAndCapture(ports: number[]): Promise<{ vid: number | null; pcp: number | null; dport: number }[]> {
  const cap = execa('ip', ['netns', 'exec', PODS[1]!, 'python3', 'test/helpers/capture.py', 'eth0', '3']);
  await new Promise<void>((resolve) => cap.stdout!.once('data', () => resolve()));
  for (const port of ports) {
    await execa('ip', ['netns', 'exec', PODS[0]!, 'node', '-e', `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>{if(n++>=5)return s.close();s.send('x',${port},'10.0.9.11',()=>setTimeout(go,20))};go()`]);
  }
  const out = (await cap).stdout;
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((x) => !x.ready);
}

describe('data plane through vpfd', () => {
  it('vlan push delivers frames tagged with the VID and PCP asked for; a drop rule drops', async () => {
    await add('dev vf0 ingress prio 1 protocol ip flower ip_proto udp dst_port 7001 action drop');
    await add('dev vf0 ingress prio 2 protocol ip flower dst_ip 10.0.9.11 action vlan push id 7 priority 3 action mirred egress redirect dev vf1');
    const frames = await sendAndCapture([7000, 7001]);
    const to7000 = frames.filter((f) => f.dport === 7000);
    expect(to7000.length).toBe(5);
    expect(to7000.every((f) => f.vid === 7 && f.pcp === 3)).toBe(true);
    expect(frames.filter((f) => f.dport === 7001)).toHaveLength(0);
  }, 60_000);
});
