// Regenerates test/realclient/kernel.json: the tc script (script.ts) run by the
// host's real iproute2 6.1 tc on Debian's 6.1 kernel under QEMU, through the
// kernel-vm tool of /work/shared (never needed by the tests themselves):
//   VPF_KERNEL_ORACLE=/work/shared/tools/kernel-vm/oracle.sh npx vite-node test/realclient/oracle.ts
// Each step's stdout and stderr come back base64'd, byte for byte.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICES, tcScript, type Step } from './script.js';
import type { KernelTranscript, Answer } from './transcript.js';

const oracle = process.env.VPF_KERNEL_ORACLE;
if (!oracle) throw new Error('set VPF_KERNEL_ORACLE to kernel-vm/oracle.sh');

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const steps: Step[] = tcScript();
// The guest's tc is /usr/sbin/tc (busybox applets shadow $PATH there).
const hook = steps
  .map((s, i) => `/usr/sbin/${s.tool} ${(s.kernelArgs ?? s.args).map(q).join(' ')} >/tmp/o 2>/tmp/e; rc=$?; echo "@@ $i $rc $(base64 -w0 </tmp/o) $(base64 -w0 </tmp/e)"`)
  .join('\n');
const dir = mkdtempSync(join(tmpdir(), 'vpf-oracle-'));
writeFileSync(join(dir, 'hook.sh'), hook + '\n');
writeFileSync(join(dir, 'in.json'), JSON.stringify({ rules: [], packets: [], devices: DEVICES, mode: 'tc' }));
execFileSync(oracle, [join(dir, 'in.json'), join(dir, 'out.json'), '--guest-hook', join(dir, 'hook.sh'), '--timeout', '1200'], { stdio: 'inherit' });
const out = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as { kernel: string; hook_output: string };
const answers: Answer[] = [];
for (const line of out.hook_output.split('\n')) {
  const m = /^@@ (\d+) (\d+) (\S*) (\S*)$/.exec(line);
  if (!m) continue;
  answers[Number(m[1])] = { rc: Number(m[2]), stdout: Buffer.from(m[3]!, 'base64').toString(), stderr: Buffer.from(m[4]!, 'base64').toString() };
}
const missing = steps.findIndex((_, i) => !answers[i]);
if (missing >= 0) throw new Error(`no answer for step ${missing}: ${steps[missing]!.args.join(' ')}`);
const t: KernelTranscript = { kernel: out.kernel, iproute2: 'iproute2-6.1.0', steps: steps.map((s, i) => ({ ...s, ...answers[i]! })) };
writeFileSync(join(import.meta.dirname, 'kernel.json'), JSON.stringify(t, null, 1) + '\n');
console.log(`kernel.json: ${t.steps.length} steps from ${t.kernel}`);
