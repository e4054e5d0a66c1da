// From a cookie (or an ovs-ofctl dump-flows line) back to the rule and flow
// kind; and a rule's flows grouped by id. Layout: translator/cookie.ts.
import type { OfFlow } from '../ovs/openflow/flow.js';
import { cookieKindName, cookieRuleId } from './cookie.js';

export interface CookieExplained {
  cookie: bigint;
  kind: string;
  ruleId: number;
  hash: number;
}

export function explainCookie(cookie: bigint): CookieExplained {
  return { cookie, kind: cookieKindName(cookie), ruleId: cookieRuleId(cookie), hash: Number(cookie & 0xffffffffn) };
}

/** Reads `cookie=0x...` from a dump-flows line; undefined when absent. */
export function explainFlowLine(line: string): CookieExplained | undefined {
  const m = /cookie=(0x[0-9a-fA-F]+)/.exec(line);
  return m ? explainCookie(BigInt(m[1]!)) : undefined;
}

/** Flows per rule id (flows of no rule, id 0, included under 0). */
export function flowsByRule(flows: readonly OfFlow[]): Map<number, OfFlow[]> {
  const out = new Map<number, OfFlow[]>();
  for (const f of flows) {
    const id = cookieRuleId(f.cookie);
    const list = out.get(id);
    if (list) list.push(f);
    else out.set(id, [f]);
  }
  return out;
}
