// One run of a guest's own Open vSwitch in the offload tier's VM
// (scripts/kernelvm/guestovs-guest.sh): its bridge on the VM's representors,
// its rtnetlink through nlshim to vpfd's channel, its flows, then the frames
// sent once (to make the guest install and offload its flows) and `passes`
// more times. The guest-OVS tests share it.
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Packet } from '../../rules/packet.js';
import { defaultPortMap } from '../../translator/portmap.js';
import { frameView, packetToHex, packetView } from './frame.js';
import { bootKernelVm, bridgePorts, ensureKernelVm, parseProbe, writeGuest, type KernelFlavor, type Pass } from './harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The run directory as the VM mounts it (init.sh). */
const VM_RUN = '/tmp/vpf';

export interface GuestOvsRun {
  /** A file the guest left in the run directory ('' if none). */
  txt: (p: string) => string;
  /** The probe's passes per frame, after the guest's flows were offloaded. */
  frames: Pass[][];
  /** Removes the run directory unless VPF_KEEP is set. */
  done: () => void;
}

export async function runGuestOvs(o: {
  flavor: KernelFlavor;
  flows: string[];
  meters?: string[];
  frames: Packet[];
  passes: number;
  timeoutMs: number;
  /** The guest's kernel keeps a software copy of its filters (nlshim VPF_NL_SWCOPY); true unless said. */
  swcopy?: boolean;
}): Promise<GuestOvsRun> {
  const run = mkdtempSync('/tmp/vpf-offload-guestovs-');
  const cache = await ensureKernelVm(o.flavor);
  await execa('gcc', ['-shared', '-fPIC', '-O2', '-o', join(run, 'nlshim.so'), join(ROOT, 'agent/guest/nlshim.c'), '-ldl']);
  writeGuest(run, 'guestovs-guest.sh', bridgePorts(defaultPortMap(2)));
  const dist = process.env.VPF_OFFLOAD_DIST ?? join(ROOT, 'dist');
  writeFileSync(
    join(run, 'config'),
    [`PROBE=${join(cache, 'probe')}`, 'VM=t', 'VFS=2', 'MODE=vpfd', `PASSES=${o.passes}`, `DIST=${dist}`, `NLSHIM=${VM_RUN}/nlshim.so`, `SWCOPY=${o.swcopy === false ? 0 : 1}`].join('\n') + '\n',
    { flag: 'a' },
  );
  writeFileSync(join(run, 'flows'), o.flows.join('\n') + '\n');
  if (o.meters) writeFileSync(join(run, 'meters'), o.meters.join('\n') + '\n');
  writeFileSync(join(run, 'frames'), o.frames.map((p) => `${p.inDev} ${packetToHex(p)}\n`).join(''));
  const txt = await bootKernelVm(cache, run, o.timeoutMs);
  const done = () => (process.env.VPF_KEEP ? console.error(`kept ${run}`) : rmSync(run, { recursive: true, force: true }));
  return { txt, frames: parseProbe(txt('probe')), done };
}

/** `lookups: hit:N missed:M` of a dpctl/show: every packet the guest's kernel datapath saw. */
export function lookups(dpshow: string): number {
  const m = /lookups: hit:(\d+) missed:(\d+)/.exec(dpshow);
  if (!m) throw new Error(`no lookups in dpctl/show:\n${dpshow}`);
  return Number(m[1]) + Number(m[2]);
}

/** The guest OVS's log lines that say a tc request or an offload failed. */
export const tcErrors = (log: string): string[] =>
  log.split('\n').filter((l) => /failed to offload|\|(netdev_offload_tc|tc|netdev_offload)(\([^)]*\))?\|(WARN|ERR|EMER)\||\|EMER\|/.test(l));

/** What `tc -j filter show` prints of a filter, the parts the tests read. */
export interface ShownFilter {
  protocol?: string;
  pref?: number;
  chain?: number;
  options?: { handle?: number; in_hw?: boolean; not_in_hw?: boolean; keys?: { ct_state?: string }; actions?: { kind: string; stats?: { packets?: number; bytes?: number; hw_packets?: number }; installed?: number; last_used?: number; first_used?: number }[] };
}

/** A frame the probe sends, the ports its last pass must come out of, and as what (as sent unless `as`). */
export interface ExpectedFrame {
  packet: Packet;
  out: string[];
  as?: Packet;
}

/** Each frame's last pass came out where and as it should, the passes named in a failure. */
export function expectLastPasses(frames: Pass[][], want: ExpectedFrame[]): void {
  expect(frames).toHaveLength(want.length);
  frames.forEach((passes, n) => {
    const last = passes.at(-1)!, w = want[n]!;
    expect(last.out.map((o) => o.port), `frame ${n + 1}: ${JSON.stringify(passes.map((p) => [p.path, p.out.map((o) => o.port)]))}`).toEqual(w.out);
    for (const o of last.out) expect(frameView(o.port, o.hex), `frame ${n + 1}`).toEqual(packetView(o.port, w.as ?? w.packet));
  });
}
