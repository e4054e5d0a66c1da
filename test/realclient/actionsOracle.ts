// Regenerates test/realclient/kernel-actions.json: actionsScript.ts run by the
// host's real iproute2 6.1 tc on Debian's 6.1 kernel under QEMU (as oracle.ts
// does for kernel.json):
//   VPF_KERNEL_ORACLE=/work/shared/tools/kernel-vm/oracle.sh npx vite-node test/realclient/actionsOracle.ts
// VPF_ORACLE_OUT=OUT.json reads a kept oracle output instead of booting.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACTION_DEVICES, actionsScript } from './actionsScript.js';
import type { Entry, KernelTranscript } from './transcript.js';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const steps = actionsScript();
let outFile = process.env.VPF_ORACLE_OUT;
if (!outFile) {
  const oracle = process.env.VPF_KERNEL_ORACLE;
  if (!oracle) throw new Error('set VPF_KERNEL_ORACLE to kernel-vm/oracle.sh');
  const hook = steps.map((s, i) => `/usr/sbin/${s.tool} ${s.args.map(q).join(' ')} >/tmp/o 2>/tmp/e; rc=$?; echo "@@ ${i} $rc $(base64 -w0 </tmp/o) $(base64 -w0 </tmp/e)"`).join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'vpf-actions-oracle-'));
  writeFileSync(join(dir, 'hook.sh'), hook + '\n');
  writeFileSync(join(dir, 'in.json'), JSON.stringify({ rules: [], packets: [], devices: ACTION_DEVICES, mode: 'tc' }));
  outFile = join(dir, 'out.json');
  execFileSync(oracle, [join(dir, 'in.json'), outFile, '--guest-hook', join(dir, 'hook.sh'), '--timeout', '1200'], { stdio: 'inherit' });
  console.log(`oracle output kept in ${outFile}`);
}
const out = JSON.parse(readFileSync(outFile, 'utf8')) as { kernel: string; hook_output: string };
const answers = out.hook_output
  .split('\n')
  .filter((l) => l.startsWith('@@ '))
  .map((l) => l.split(' '))
  .map((f) => ({ rc: Number(f[2]), stdout: Buffer.from(f[3] ?? '', 'base64').toString(), stderr: Buffer.from(f[4] ?? '', 'base64').toString() }));
if (answers.length !== steps.length) throw new Error(`${answers.length} answers for ${steps.length} steps`);
const t: KernelTranscript = { kernel: out.kernel, iproute2: 'iproute2-6.1.0', steps: steps.map((s, i): Entry => ({ ...s, ...answers[i]! })) };
writeFileSync(join(import.meta.dirname, 'kernel-actions.json'), JSON.stringify(t, null, 1) + '\n');
console.log(`kernel-actions.json: ${t.steps.length} steps from ${t.kernel}`);
