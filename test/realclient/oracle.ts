// Regenerates test/realclient/kernel.json: the tc script (script.ts) run by the
// host's real iproute2 6.1 tc on Debian's 6.1 kernel under QEMU, through the
// kernel-vm tool of /work/shared (never needed by the tests themselves):
//   VPF_KERNEL_ORACLE=/work/shared/tools/kernel-vm/oracle.sh npx vite-node test/realclient/oracle.ts
// VPF_ORACLE_GROUPS=REGEX reruns only the setup and the groups it matches and
// splices their answers into the existing kernel.json. Each step's stdout and
// stderr come back base64'd, byte for byte; a step whose `kernelArgs` differ
// runs those (script.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEVICES, tcScript, type Step } from './script.js';
import type { Answer, Entry, KernelTranscript } from './transcript.js';

const oracle = process.env.VPF_KERNEL_ORACLE;
const only = process.env.VPF_ORACLE_GROUPS ? new RegExp(process.env.VPF_ORACLE_GROUPS) : undefined;
const file = join(import.meta.dirname, 'kernel.json');

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const all: Step[] = tcScript();
const steps = only ? all.filter((s) => s.group === 'setup' || only.test(s.group)) : all;

/** Runs `steps` in one VM boot (or reads a kept OUT.json: VPF_ORACLE_OUT) and returns the answers in order. */
function runKernel(): { kernel: string; answers: Answer[] } {
  let outFile = process.env.VPF_ORACLE_OUT;
  if (!outFile) {
    if (!oracle) throw new Error('set VPF_KERNEL_ORACLE to kernel-vm/oracle.sh');
    // The guest's tc is /usr/sbin/tc (busybox applets shadow $PATH there).
    const hook = steps
      .map((s, i) => `/usr/sbin/${s.tool} ${(s.kernelArgs ?? s.args).map(q).join(' ')} >/tmp/o 2>/tmp/e; rc=$?; echo "@@ ${i} $rc $(base64 -w0 </tmp/o) $(base64 -w0 </tmp/e)"`)
      .join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'vpf-oracle-'));
    writeFileSync(join(dir, 'hook.sh'), hook + '\n');
    writeFileSync(join(dir, 'in.json'), JSON.stringify({ rules: [], packets: [], devices: DEVICES, mode: 'tc' }));
    outFile = join(dir, 'out.json');
    execFileSync(oracle, [join(dir, 'in.json'), outFile, '--guest-hook', join(dir, 'hook.sh'), '--timeout', '1200'], { stdio: 'inherit' });
    console.log(`oracle output kept in ${outFile}`);
  }
  const out = JSON.parse(readFileSync(outFile, 'utf8')) as { kernel: string; hook_output: string };
  // Answers in hook order (the index is there to read, the order is what counts).
  // "@@ INDEX RC STDOUT STDERR", base64 fields possibly empty: always five fields.
  const answers = out.hook_output
    .split('\n')
    .filter((l) => l.startsWith('@@ '))
    .map((l) => l.split(' '))
    .map((f) => ({ rc: Number(f[2]), stdout: Buffer.from(f[3] ?? '', 'base64').toString(), stderr: Buffer.from(f[4] ?? '', 'base64').toString() }));
  if (answers.length !== steps.length) throw new Error(`${answers.length} answers for ${steps.length} steps`);
  return { kernel: out.kernel, answers };
}

const { kernel, answers } = runKernel();
const fresh: Entry[] = steps.map((s, i) => ({ ...s, ...answers[i]! }));
let entries = fresh;
if (only && existsSync(file)) {
  const old = JSON.parse(readFileSync(file, 'utf8')) as KernelTranscript;
  const byGroup = (es: Entry[], g: string) => es.filter((e) => e.group === g);
  const groups = [...new Set(all.map((s) => s.group))];
  entries = groups.flatMap((g) => (only.test(g) ? byGroup(fresh, g) : byGroup(old.steps, g)));
}
const t: KernelTranscript = { kernel, iproute2: 'iproute2-6.1.0', steps: entries };
writeFileSync(file, JSON.stringify(t, null, 1) + '\n');
console.log(`kernel.json: ${t.steps.length} steps from ${t.kernel}`);
