// printFilter is what explain, the logs and `vpfctl rule parse` show an operator: real
// iproute2 must read those words back to the same rule. Each printed command goes
// through the real /usr/sbin/tc (its netlink request captured, test/helpers/nlcapture.ts)
// and the request must decode to the rule printed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTcMessage } from '../../rules/netlink/tc.js';
import { parseFilter, printFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import type { FlowerRule } from '../../rules/model.js';
import { corpusCommands } from '../corpus/corpus.js';
import { arbRule } from '../gen/rule.js';
import { captureBatch, haveStrace } from '../helpers/nlcapture.js';

/** The printable ones (printFilter refuses, with a reason, what tc syntax cannot say). */
function printable(r: FlowerRule): string[] | undefined {
  try {
    return printFilter(r);
  } catch {
    return undefined;
  }
}

function devsOf(rules: FlowerRule[]): string[] {
  const s = new Set<string>();
  for (const r of rules) {
    s.add(r.dev);
    for (const a of r.actions) if (a.kind === 'mirred') s.add(a.dev);
    if (r.match.indev) s.add(r.match.indev);
  }
  return [...s];
}

describe('real tc reads printFilter back', () => {
  it('for every corpus rule and 250 generated ones', async () => {
    if (!(await haveStrace())) throw new Error('strace is missing: scripts/deps.sh installs it');
    const corpus = corpusCommands()
      .filter((c) => c.startsWith('add '))
      .map((c) => parseFilter(splitArgs(c).slice(1)))
      .flatMap((r) => (r.ok ? [r.value] : []));
    const generated = fc.sample(arbRule(), { numRuns: 250, seed: 4242 });
    const rules = [...corpus, ...generated].filter((r) => printable(r));
    expect(rules.length).toBeGreaterThan(300);
    const batch = await captureBatch(rules.map((r) => ['tc', 'filter', 'add', ...printable(r)!]), devsOf(rules));
    const devs = new Map(Object.entries(batch.ifindex));
    const bad: string[] = [];
    batch.captures.forEach((c, i) => {
      const words = printable(rules[i]!)!.join(' ');
      const msg = c.messages.find((m) => m.readUInt16LE(4) === 44);
      if (!msg) return void bad.push(`tc refused: ${words}\n    ${c.stderr.split('\n')[0]}`);
      const d = decodeTcMessage(msg, { devs });
      if (!d.ok) return void bad.push(`request does not decode: ${words}\n    ${d.error.message}`);
      if (d.value.type !== 'filter' || d.value.op !== 'new') return void bad.push(`not a new filter: ${words}`);
      try {
        expect(d.value.rule).toEqual(rules[i]);
      } catch {
        bad.push(`tc read another rule: ${words}\n    tc: ${JSON.stringify(d.value.rule)}\n    us: ${JSON.stringify(rules[i])}`);
      }
    });
    expect(bad).toEqual([]);
  }, 240_000);
});
