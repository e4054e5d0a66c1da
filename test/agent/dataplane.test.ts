// Real frames through vpfd's flows: a rule that pushes a VLAN tag delivers
// tagged frames (VID and PCP as asked) to the other pod; a drop rule drops.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PodBed } from '../helpers/podbed.js';

// dpt0 behind vf0 sends UDP to dpt1 behind vf1, through the kernel's stack (addresses, a static neighbour).
const MAC = ['02:00:00:00:0d:00', '02:00:00:00:0d:01'];
let bed: PodBed;

beforeAll(async () => {
  bed = await PodBed.start('dpt', MAC, {}, {}, { ips: ['10.0.9.10/24', '10.0.9.11/24'] });
  await execa('ip', ['-n', bed.pods[0]!, 'neigh', 'replace', '10.0.9.11', 'lladdr', MAC[1]!, 'dev', 'eth0', 'nud', 'permanent']);
}, 60_000);

afterAll(async () => {
  await bed?.stop();
});

const add = (line: string) => bed.filter(line);

/** Sends UDP from pod 0 to pod 1 on each port and returns what pod 1's wire saw. */
async function sendAndCapture(ports: number[]): Promise<{ vid: number | null; pcp: number | null; dport: number }[]> {
  // Stopped a second after the last send (not a fixed time after its start): node starting slowly on a loaded machine cannot outlast it.
  const cap = execa('ip', ['netns', 'exec', bed.pods[1]!, 'python3', 'test/helpers/capture.py', 'eth0', '120'], { reject: false });
  await new Promise<void>((resolve) => cap.stdout!.once('data', () => resolve()));
  try {
    for (const port of ports) {
      await execa('ip', ['netns', 'exec', bed.pods[0]!, 'node', '-e', `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>{if(n++>=5)return s.close();s.send('x',${port},'10.0.9.11',()=>setTimeout(go,20))};go()`]);
    }
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    cap.kill('SIGTERM');
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
