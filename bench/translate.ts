// bench/translate: how fast rules become flows. Run: npx vite-node bench/translate.ts [N]
// Prints rules/s and the ratio to a bare JSON.stringify of the same rules (a
// lower bound on any work that looks at every field), and how many flows one
// rule insert touches for a few rule-set shapes.
import fc from 'fast-check';
import type { FlowerRule } from '../rules/model.js';
import { arbRuleLine } from '../test/gen/ruleset.js';
import { parseFilter, splitArgs } from '../rules/tcsyntax/index.js';
import { translate, type RuleInput } from '../translator/index.js';
import { defaultPortMap } from '../translator/portmap.js';

const N = Number(process.argv[2] ?? 100_000);
const ports = defaultPortMap(3);
const lines = fc.sample(arbRuleLine, { numRuns: 2000, seed: 42 });
const pool = lines.map((l) => parseFilter(splitArgs(l))).flatMap((r) => (r.ok ? [r.value] : []));
// N rules spread over distinct (dev, prio) so one VM can hold them (prio 1..65535).
const rules: RuleInput[] = Array.from({ length: N }, (_, i) => {
  const r = pool[i % pool.length]!;
  return { id: i + 1, rule: { ...r, chain: 0, prio: 1 + (i % 200), dev: ['uplink', 'vf0', 'vf1', 'vf2'][i % 4]! } as FlowerRule };
});

function time(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

// Warm up both paths.
translate({ rules: rules.slice(0, 2000), ports });
JSON.stringify(rules.slice(0, 2000));
let flows = 0;
const tTranslate = time(() => {
  flows = translate({ rules, ports }).flows.length;
});
const tJson = time(() => JSON.stringify(rules));
console.log(`translate: ${N} rules -> ${flows} flows in ${tTranslate.toFixed(3)} s = ${Math.round(N / tTranslate)} rules/s`);
console.log(`baseline JSON.stringify of the same rules: ${tJson.toFixed(3)} s = ${Math.round(N / tJson)} rules/s`);
console.log(`ratio translate/JSON.stringify time: ${(tTranslate / tJson).toFixed(2)}x (goal: >= 300000 rules/s)`);

// Flows touched by one insert: desired-set difference before and after adding a rule,
// with the previous layout kept (as the daemon does).
for (const [name, n] of [['100 rules', 100], ['10k rules', 10_000]] as const) {
  const base = rules.slice(0, n);
  const first = translate({ rules: base, ports });
  const before = new Set(first.flows.map((f) => f.cookie));
  for (const [where, prio] of [['an existing prio', 7], ['a new prio', 60_000]] as const) {
    const extra = { id: n + 1, rule: { ...pool[3]!, chain: 0, prio, dev: 'vf0' } as FlowerRule };
    const t = translate({ rules: [...base, extra], ports, layout: first.tables });
    const after = new Set(t.flows.map((f) => f.cookie));
    const added = [...after].filter((c) => !before.has(c)).length;
    const removed = [...before].filter((c) => !after.has(c)).length;
    console.log(`insert into ${name} at ${where}: ${added} flows added, ${removed} removed (the rule itself: ${t.perRule.get(n + 1)!.flows})`);
  }
}
