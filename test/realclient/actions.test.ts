// The real-client tier, shared police actions: the host's real iproute2 6.1 `tc
// actions ...` and `tc filter ... action police index N` against vpfd's route
// channel (through nlshim), step by step against what tc printed on a real 6.1
// kernel for the same script (kernel-actions.json, made by actionsOracle.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuestVm, type GuestVm } from './guest.js';
import { normalize, render } from './normalize.js';
import type { Answer, Entry, KernelTranscript } from './transcript.js';

const kernel = JSON.parse(readFileSync(join(import.meta.dirname, 'kernel-actions.json'), 'utf8')) as KernelTranscript;
const groups = new Map<string, Entry[]>();
for (const s of kernel.steps) groups.set(s.group, [...(groups.get(s.group) ?? []), s]);

/**
 * The kernel run has no NIC: act_api.c tcf_action_offload_add finds no driver for a
 * standalone action and warns. vpfd is the NIC, which takes the police (as mlx5 does),
 * so it does not warn; in_hw/not_in_hw are already one token for normalize().
 */
const NO_DRIVER_WARNING = 'Warning: act_api: Failed to setup tc actions for offload.\n';
const kernelSide = (a: Answer): Answer => ({ ...a, stderr: a.stderr.replace(NO_DRIVER_WARNING, '') });

let g: GuestVm;
beforeAll(async () => {
  g = await startGuestVm('acts', 3);
}, 120_000);
afterAll(async () => g?.stop());

describe(`real tc actions against vpfd, compared with ${kernel.kernel}`, () => {
  for (const [group, steps] of groups) {
    it(group, async () => {
      const want: string[] = [];
      const got: string[] = [];
      for (const s of steps) {
        const json = s.args.includes('-j');
        const a = await g.run(s.tool, s.args);
        if (json && a.rc === 0) expect(() => JSON.parse(a.stdout), `${s.args.join(' ')} prints JSON`).not.toThrow();
        want.push(render(s.tool, s.args, normalize(kernelSide(s), { json })));
        got.push(render(s.tool, s.args, normalize(a, { json })));
      }
      expect(got.join('\n\n')).toBe(want.join('\n\n'));
    }, 120_000);
  }

  it('-s actions ls: a shared police counts what its filters sent', async () => {
    // Nothing passes through the bridge here: the counters are there, zero.
    await g.run('tc', 'actions add action police rate 1mbit burst 10k index 11'.split(' '));
    await g.run('tc', 'filter add dev vf0 ingress prio 9 protocol ip flower action police index 11'.split(' '));
    const a = await g.run('tc', '-s actions ls action police'.split(' '));
    expect(a.stdout).toMatch(/police 0xb rate 1Mbit burst 10Kb mtu 2Kb action reclassify overhead 0b \n\tref 2 bind 1  installed \d+ sec used \d+ sec\n/);
    expect(a.stdout).toMatch(/Action statistics:\n\tSent 0 bytes 0 pkt \(dropped 0, overlimits 0 requeues 0\)/);
    await g.run('tc', 'filter del dev vf0 ingress prio 9'.split(' '));
    await g.run('tc', 'actions flush action police'.split(' '));
  });

  it('shared actions of other kinds are refused with the reason', async () => {
    const a = await g.run('tc', 'actions add action gact drop index 3'.split(' '));
    expect({ rc: a.rc, stderr: a.stderr }).toEqual({ rc: 255, stderr: 'Error: shared gact actions are not supported: vpf shares police actions only (tc actions ... action police).\nWe have an error talking to the kernel\n' });
  });
});
