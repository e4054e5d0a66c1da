// Desired vs installed, by cookie (translator/cookie.ts: equal cookie = identical
// flow). What is installed and not desired goes, what is desired and missing
// comes; unchanged flows are not touched, so their counters survive.
import type { OfFlow } from './flow.js';

export interface InstalledFlow {
  cookie: bigint;
  table: number;
  priority: number;
  match: string;
  actions: string;
  packets: number;
  bytes: number;
  durationSec: number;
  idleAgeSec: number;
}

export interface FlowDiff {
  add: OfFlow[];
  /** Cookies whose flows are deleted (every flow carrying one). */
  del: bigint[];
}

export function diffFlows(desired: OfFlow[], installed: Pick<InstalledFlow, 'cookie'>[]): FlowDiff {
  const want = new Map(desired.map((f) => [f.cookie, f]));
  const have = new Map<bigint, number>();
  for (const f of installed) have.set(f.cookie, (have.get(f.cookie) ?? 0) + 1);
  const del: bigint[] = [];
  for (const [c, n] of have) {
    // A cookie installed twice means a past apply went wrong: clear it and add it back.
    if (!want.has(c) || n > 1) del.push(c);
  }
  const add = desired.filter((f) => !have.has(f.cookie) || (have.get(f.cookie) ?? 0) > 1);
  return { add, del };
}

export const isEmptyDiff = (d: FlowDiff) => d.add.length === 0 && d.del.length === 0;

/** The same difference against a known installed set (ofctrl.c's installed table); also returns the desired set, the next installed one. */
export function diffInstalled(desired: OfFlow[], installed: ReadonlySet<bigint>): FlowDiff & { want: Set<bigint> } {
  const want = new Set<bigint>();
  const add: OfFlow[] = [];
  for (const f of desired) {
    want.add(f.cookie);
    if (!installed.has(f.cookie)) add.push(f);
  }
  const del: bigint[] = [];
  for (const c of installed) if (!want.has(c)) del.push(c);
  return { add, del, want };
}
