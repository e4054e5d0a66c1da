// Cookie layout (docs/cookies.md): every flow vpf installs carries
//   bits 63..60  kind (FlowKind)
//   bits 59..32  the guest rule's id (28 bits; 0 for flows of no rule)
//   bits 31..0   FNV-1a 32 of the flow's "table|priority|match|actions"
// Equal cookie therefore means identical flow: the installer diffs desired and
// installed flows by cookie alone, and a restart with unchanged state sends
// zero flow mods (Antrea and OVN stamp a per-run round instead and must
// rewrite everything).

import { actionsText, matchText, type Match, type OfAction } from '../ovs/openflow/flow.js';

export const FlowKind = {
  RULE: 1,
  TRAP: 2,
  DEFAULT: 3,
  LEGACY: 4,
  OTHER: 5,
} as const;

const RULE_ID_BITS = 28;
const MAX_RULE_ID = (1 << RULE_ID_BITS) - 1;

/** FNV-1a, 32 bits: cheap, stable across runs and machines. */
function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function cookieOf(kind: number, ruleId: number, table: number, priority: number, match: Match, actions: OfAction[]): bigint {
  const hash = fnv1a32(`${table}|${priority}|${matchText(match)}|${actionsText(actions)}`);
  return (BigInt(kind) << 60n) | (BigInt(ruleId & MAX_RULE_ID) << 32n) | BigInt(hash);
}

export const cookieKind = (c: bigint): number => Number(c >> 60n);
export const cookieRuleId = (c: bigint): number => Number((c >> 32n) & BigInt(MAX_RULE_ID));
export function cookieKindName(c: bigint): string {
  const k = cookieKind(c);
  return (Object.entries(FlowKind).find(([, v]) => v === k)?.[0] ?? `kind${k}`).toLowerCase();
}
