// Random rule sets and frames (the property test's generators) as input for an
// OVS tc-offload check, and the score of its answer: which fraction of frames
// a tc-offloaded datapath flow handled. A development tool until the offload
// tier (test/offload/) runs the same sets itself:
//   npx vite-node test/translator/support/offload-sample.ts make IN.json [SETS] [PACKETS] [SEED]
//   npx vite-node test/translator/support/offload-sample.ts score OUT.json
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Packet } from '../../../rules/packet.js';
import { flowLine, meterLine } from '../../../ovs/openflow/flow.js';
import { translate } from '../../../translator/index.js';
import { defaultPortMap } from '../../../translator/portmap.js';
import { arbPacket } from '../../gen/packet.js';
import { arbRuleset, DEVS } from '../../gen/ruleset.js';
import { printFilter } from '../../../rules/tcsyntax/index.js';
import { packetToHex } from '../../offload/frame.js';
import { arbExtraRuleset } from './rulesets.js';

export interface OffloadSet {
  name: string;
  rules: string[];
  flows: string[];
  meters: string[];
  packets: { port: string; hex: string }[];
}

export function sampleSets(sets: number, packets: number, seed: number): OffloadSet[] {
  const ports = defaultPortMap(2);
  const rulesets = fc.sample(arbExtraRuleset(arbRuleset()), { numRuns: sets, seed });
  const frames = fc.sample(fc.array(arbPacket(), { minLength: packets, maxLength: packets }), { numRuns: sets, seed: seed + 1 });
  return rulesets.map((rs, i) => {
    const t = translate({ rules: rs.map((rule, j) => ({ id: j + 1, rule })), ports });
    return {
      name: `set${i}`,
      rules: rs.map((r, j) => `${printFilter(r).join(' ')}${t.perRule.get(j + 1)!.offloaded ? '' : '  # not offloaded'}`),
      flows: t.flows.map(flowLine),
      meters: t.meters.map(meterLine),
      packets: frames[i]!.map((p: Packet) => ({ port: DEVS.includes(p.inDev) ? p.inDev : 'vf0', hex: packetToHex(p) })),
    };
  });
}

interface OutSet {
  name: string;
  packets: { path: string; hex: string; port: string }[];
  offload_failures?: { error: string; reasons: string[]; put?: string }[];
  dp_flows?: { dp: string; match: string; actions: string }[];
}

export function score(out: { sets: OutSet[] }): { frames: number; tc: number; byPath: Record<string, number>; reasons: Record<string, number> } {
  let frames = 0, tc = 0;
  const byPath: Record<string, number> = {}, reasons: Record<string, number> = {};
  for (const s of out.sets) {
    for (const p of s.packets) {
      frames++;
      if (p.path === 'tc') tc++;
      byPath[p.path] = (byPath[p.path] ?? 0) + 1;
    }
    for (const f of s.offload_failures ?? []) {
      const why = f.reasons.length ? f.reasons.map((r) => r.replace(/\d+/g, 'N')).join(' | ') : 'silent: ' + (f.put ?? f.error).replace(/.*(vlan\([^)]*\)).*/, '$1').slice(0, 80);
      reasons[why] = (reasons[why] ?? 0) + 1;
    }
  }
  return { frames, tc, byPath, reasons };
}

const [cmd, file, a, b, c] = process.argv.slice(2);
if (cmd === 'make') {
  const sets = sampleSets(Number(a ?? 40), Number(b ?? 20), Number(c ?? 1));
  writeFileSync(file!, JSON.stringify({ passes: 2, sets: sets.map(({ name, flows, meters, packets }) => ({ name, flows, meters, packets, tc_dump: 'none' })) }, null, 1));
  writeFileSync(file! + '.rules.json', JSON.stringify(sets.map(({ name, rules }) => ({ name, rules })), null, 1));
} else if (cmd === 'score') {
  const s = score(JSON.parse(readFileSync(file!, 'utf8')));
  console.log(JSON.stringify({ ...s, fraction: s.tc / s.frames }, null, 1));
}
