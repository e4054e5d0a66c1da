// The real-client tier, tc: the host's real iproute2 6.1 `tc` against vpfd's
// route channel (through nlshim), step by step against what tc printed on a
// real 6.1 kernel for the same script (kernel.json, made by oracle.ts; see
// docs/testing.md). Every corpus form is added, shown (-s and -j -s; JSON
// must parse) and deleted; then get/replace/change/del, dump order, chains
// and refusals. A group fails with the exact transcript diff.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuestVm, type GuestVm } from './guest.js';
import { normalize, render } from './normalize.js';
import type { Entry, KernelTranscript } from './transcript.js';

const kernel = JSON.parse(readFileSync(join(import.meta.dirname, 'kernel.json'), 'utf8')) as KernelTranscript;
const groups = new Map<string, Entry[]>();
for (const s of kernel.steps) groups.set(s.group, [...(groups.get(s.group) ?? []), s]);

/**
 * Groups where vpfd answers differently from the kernel on purpose (docs/protocol.md,
 * "Where vpfd still answers differently"): what vpfd must print instead.
 */
const DEVIATIONS: { group: RegExp; why: string; add: { rc: number; stderr: string } }[] = [
  {
    group: /^corpus \d+: tc filter add dev \S+ egress /,
    why: 'egress filters on a representor are refused: what it transmits never crosses the bridge',
    add: { rc: 2, stderr: 'Error: egress filters on a representor cannot be offloaded.\nWe have an error talking to the kernel\n' },
  },
];

let g: GuestVm;
beforeAll(async () => {
  g = await startGuestVm('rc', 4);
}, 120_000);
afterAll(async () => g?.stop());

describe(`real tc against vpfd, compared with ${kernel.kernel}`, () => {
  it('runs at least 150 real commands', () => expect(kernel.steps.length).toBeGreaterThanOrEqual(150));

  for (const [group, steps] of groups) {
    const deviation = DEVIATIONS.find((d) => d.group.test(group));
    if (deviation) {
      it(`${group} (vpfd differs: ${deviation.why})`, async () => {
        const a = await g.run(steps[0]!.tool, steps[0]!.args);
        expect({ rc: a.rc, stderr: a.stderr }).toEqual(deviation.add);
      });
      continue;
    }
    it(group, async () => {
      const dropSkipSw = steps.some((s) => s.kernelArgs);
      const want: string[] = [];
      const got: string[] = [];
      for (const s of steps) {
        const json = s.args.includes('-j');
        const a = await g.run(s.tool, s.args);
        if (json && a.rc === 0) expect(() => JSON.parse(a.stdout), `${s.args.join(' ')} prints JSON`).not.toThrow();
        want.push(render(s.tool, s.args, normalize(s, { json })));
        got.push(render(s.tool, s.args, normalize(a, { json, dropSkipSw })));
      }
      expect(got.join('\n\n')).toBe(want.join('\n\n'));
    }, 120_000);
  }
});
