// vpfctl translate [--ports FILE] [--vfs N] RULES_FILE: rules in tc syntax, one
// per line (as after `tc filter add`, `#` comments allowed), to the flows vpfd
// would install: meters first (ovs-ofctl add-meter lines), then flows
// (ovs-ofctl add-flows lines). Exit 2 naming the line of a refused rule.
import { readFileSync } from 'node:fs';
import { flowLine, meterLine } from '../../ovs/openflow/flow.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { translate, type RuleInput } from '../../translator/index.js';
import { defaultPortMap, parsePortMap, type PortMap } from '../../translator/portmap.js';
import { out, runCommand, UsageError } from './common.js';

export const usage = 'translate [--ports FILE] [--vfs N] RULES_FILE';

export function run(argv: string[]): Promise<number> {
  return runCommand('translate', async () => {
    let ports: PortMap | undefined;
    let vfs = 4;
    let file: string | undefined;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--ports') {
        try {
          ports = parsePortMap(JSON.parse(readFileSync(argv[++i] ?? '', 'utf8')));
        } catch (e) {
          throw new UsageError(`--ports: ${(e as Error).message}`);
        }
      } else if (a === '--vfs') {
        vfs = Number(argv[++i]);
        if (!Number.isInteger(vfs) || vfs < 0 || vfs > 254) throw new UsageError('--vfs takes 0..254');
      } else if (!file && !a.startsWith('--')) file = a;
      else throw new UsageError(`unexpected argument ${a}`);
    }
    if (!file) throw new UsageError(`usage: vpfctl ${usage}`);
    const lines = readFileSync(file, 'utf8').split('\n');
    const rules: RuleInput[] = [];
    const lineOf = new Map<number, number>();
    lines.forEach((l, i) => {
      const text = l.replace(/#.*/, '').trim();
      if (!text) return;
      const r = parseFilter(splitArgs(text));
      if (!r.ok) throw new UsageError(`${file}:${i + 1}: ${r.error.message} (${r.error.errnoName})`);
      rules.push({ id: rules.length + 1, rule: r.value });
      lineOf.set(rules.length, i + 1);
    });
    const t = translate({ rules, ports: ports ?? defaultPortMap(vfs) });
    for (const [id, res] of t.perRule) {
      if (res.refused) throw new UsageError(`${file}:${lineOf.get(id)}: ${res.error!.message} (${res.error!.errnoName})`);
    }
    if (t.meters.length) {
      out('# meters: ovs-ofctl -O OpenFlow15 add-meter BRIDGE LINE, before the flows');
      for (const m of t.meters) out(meterLine(m));
    }
    out('# flows: ovs-ofctl -O OpenFlow15 add-flows BRIDGE FILE');
    for (const [id, res] of t.perRule) {
      if (!res.offloaded) out(`# line ${lineOf.get(id)}: not offloaded, trapped to the representor: ${res.error!.message}`);
    }
    for (const f of t.flows) out(flowLine(f));
    return 0;
  });
}
