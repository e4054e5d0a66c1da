// A filter group: the filters of one tcf_proto, named as cls_api.c finds it
// (block = dev + direction, then chain, then prio). The one notion of a group
// in the agent: the rule table indexes by it, the desired flows are kept by
// it, and the translator's table layout is stored as values keyed by it.
import type { FlowerRule } from '../rules/model.js';

export type FilterGroup = Pick<FlowerRule, 'dev' | 'direction' | 'chain' | 'prio'>;
export type Block = Pick<FilterGroup, 'dev' | 'direction'>;
export type ChainOf = Pick<FilterGroup, 'dev' | 'direction' | 'chain'>;

/** Map keys for blocks, chains and groups: one encoding, a prefix of the next. */
export const blockKey = (b: Block): string => `${b.dev}|${b.direction}`;
export const chainKey = (c: ChainOf): string => `${blockKey(c)}|${c.chain}`;
export const groupKey = (g: FilterGroup): string => `${chainKey(g)}|${g.prio}`;

/** The block a blockKey names. */
export function blockOfKey(k: string): Block {
  const [dev, direction] = k.split('|') as [string, FilterGroup['direction']];
  return { dev, direction };
}

/** One OpenFlow table of the translator's layout: a chain's entry table (no prio) or a (chain, prio)'s table. */
export interface TableSlot {
  chain: number;
  prio?: number;
  table: number;
}

/** The translator's own key for a slot (translator/index.ts: "chain/prio", "chain/entry"): only here. */
const translatorKey = (chain: number, prio?: number): string => `${chain}/${prio === undefined ? 'entry' : prio}`;

/** The layout as translate() takes it. */
export function layoutMap(slots: readonly TableSlot[]): Map<string, number> {
  return new Map(slots.map((s) => [translatorKey(s.chain, s.prio), s.table]));
}

/** The layout translate() returned, as values. */
export function layoutSlots(tables: ReadonlyMap<string, number>): TableSlot[] {
  return [...tables].map(([k, table]) => {
    const [c, p] = k.split('/');
    return { chain: Number(c), ...(p === 'entry' ? {} : { prio: Number(p) }), table };
  });
}

/** The table a group's rules are translated into, in a translator layout. */
export function tableOf(tables: ReadonlyMap<string, number>, g: Pick<FilterGroup, 'chain' | 'prio'>): number | undefined {
  return tables.get(translatorKey(g.chain, g.prio));
}

/**
 * A persisted layout: slots, or the [key, table] pairs journals wrote before
 * slots (the translator's "chain/prio" keys), which still load.
 */
export function readLayout(raw: readonly (TableSlot | [string, number])[] | undefined): TableSlot[] {
  if (!raw) return [];
  return raw.flatMap((e) => (Array.isArray(e) ? layoutSlots(new Map([e])) : [e]));
}
