// From a cookie (or an ovs-ofctl dump-flows line) back to the rule and flow
// kind. Layout: translator/cookie.ts.
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
