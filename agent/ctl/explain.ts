// vpfctl explain VM [--flow 'LINE']: which OpenFlow flows each guest rule became,
// with cookies and counters, or which rule made one line of `ovs-ofctl dump-flows`.
import { adminRequest } from '../admin/client.js';
import type { ExplainReport, ExplainedFlow, ExplainedRule } from '../admin/api.js';
import { explainFlowLine } from '../../translator/explain.js';
import { adminSocket, out, runCommand, takeStateDir, UsageError } from './common.js';

export const usage = "explain VM [--flow 'LINE FROM ovs-ofctl dump-flows']";

function ruleHeader(r: ExplainedRule): string {
  const hw = r.stats.inHw ? 'in_hw' : `not_in_hw${r.notOffloadedReason ? ` (${r.notOffloadedReason})` : ''}`;
  return `rule ${r.id}: ${r.stats.packets} pkt ${r.stats.bytes} bytes, ${hw}\n  tc filter add ${r.tc}`;
}

function flowLine(f: ExplainedFlow): string {
  return `    [${f.kind}] ${f.line}`;
}

export function formatExplain(rep: ExplainReport): string {
  const lines = [`vm ${rep.vm} (bridge ${rep.bridge}): ${rep.rules.length} rules`];
  for (const r of rep.rules) {
    lines.push(ruleHeader(r));
    if (r.flows.length === 0) lines.push('    (no flows)');
    lines.push(...r.flows.map(flowLine));
  }
  if (rep.other.length) {
    lines.push('flows of no rule:');
    lines.push(...rep.other.map(flowLine));
  }
  return lines.join('\n');
}

export function explainFlow(rep: ExplainReport, line: string): string {
  const parsed = explainFlowLine(line);
  if (!parsed) throw new UsageError('the --flow line has no cookie= field (paste a whole line of ovs-ofctl dump-flows)');
  const cookie = `0x${parsed.cookie.toString(16)}`;
  for (const r of rep.rules) {
    const f = r.flows.find((x) => x.cookie === cookie);
    if (f) return `${ruleHeader(r)}\n  this flow is its [${f.kind}] flow:\n${flowLine(f)}`;
  }
  const other = rep.other.find((x) => x.cookie === cookie);
  if (other) return `flow of no guest rule: [${other.kind}]\n${flowLine(other)}`;
  return `cookie ${cookie} (${parsed.kind} flow of rule ${parsed.ruleId}) is not a current flow of vm ${rep.vm}: stale, or from another bridge`;
}

export function run(argv: string[]): Promise<number> {
  return runCommand('explain', async () => {
    const args = [...argv];
    const sock = adminSocket(takeStateDir(args));
    const [vm, ...rest] = args;
    if (!vm) throw new UsageError(`usage: vpfctl ${usage}`);
    const rep = await adminRequest<ExplainReport>(sock, 'GET', `/vms/${encodeURIComponent(vm)}/explain`);
    if (rest[0] === '--flow') {
      if (!rest[1]) throw new UsageError('--flow needs a line of ovs-ofctl dump-flows');
      out(explainFlow(rep, rest[1]));
    } else if (rest.length) throw new UsageError(`unknown argument ${rest[0]}`);
    else out(formatExplain(rep));
    return 0;
  });
}
