// A VM's filters in install order, indexed the way cls_api.c finds a tcf_proto:
// by (dev, direction, chain) and then prio. Adds, replaces and exact deletes
// cost O(1) instead of a scan of every rule, and syncTo() brings the caller's
// array up to date in place (O(changes), O(N) only after a removal), which is
// what keeps a guest that installs 100k filters from paying N² in the daemon. It also keeps what the
// kernel keeps beside the filters: each block's chains in creation order with
// their references (filters, goto actions, `tc chain add`), and the action
// indexes in use per kind.
import type { Action, FlowerRule, PoliceAction } from '../rules/model.js';
import type { ChainEntry, PolicerEntry, RuleEntry } from './records.js';
import { PolicerTable } from './policers.js';
import { blockKey, blockOfKey, chainKey, groupKey, type Block, type FilterGroup } from './group.js';
import { maskedKey, maskShape } from '../rules/classify/match.js';
import { fnv1a } from '../rules/fnv.js';


/** Where a filter sits in cls_flower's hash tables: its tcf_proto, its mask's shape, its key under that mask. */
const keyOf = (r: FlowerRule): string => `${groupKey(r)}|${maskShape(r.match)}|${maskedKey(r.match)}`;

/** A chain's references (cls_api.c: refcnt, action_refcnt, explicitly_created). */
interface ChainRefs {
  explicit: boolean;
  rules: number;
  acts: number;
}

/** Chains a rule's actions hold by `goto chain N` (tcf_action_set_ctrlact -> tcf_chain_get_by_act); police's exceed verdict too. */
function gotoTargets(actions: readonly Action[]): number[] {
  const out: number[] = [];
  for (const a of actions) {
    if (a.control.kind === 'goto') out.push(a.control.chain);
    if (a.kind === 'police' && a.exceed.kind === 'goto') out.push(a.exceed.chain);
  }
  return out;
}

/** What a syncTo() changed in its target: the old length, the old entries from `from` on, and the ones replaced below it. */
export interface RulesUndo {
  length: number;
  from: number;
  tail: RuleEntry[];
  replaced: [number, RuleEntry][];
}

/** Puts a syncTo()'s target back as it was before that call. */
export function undoRules(target: RuleEntry[], u: RulesUndo): void {
  target.length = u.from;
  for (const e of u.tail) target.push(e);
  for (const [i, e] of u.replaced) target[i] = e;
}

export class RuleTable {
  /** Install order; removed entries leave a hole until toArray() compacts. */
  private readonly entries: (RuleEntry | undefined)[];
  private readonly pos = new Map<RuleEntry, number>();
  private readonly chains = new Map<string, Map<number, RuleEntry[]>>();
  private holes = 0;
  /** entries.length at the last syncTo() (or construction): the entries below it are the caller's array, index for index. */
  private synced: number;
  /** Indexes below `synced` replaced or removed since the last syncTo(), and the lowest removed one. */
  private touched: number[] = [];
  private firstHole = Infinity;
  /** Changes since the last takeChanges(): entries added or replaced (in install order of their first appearance) and ids removed. */
  private upserts = new Map<number, RuleEntry>();
  private removed: number[] = [];
  /** Groups (groupKey) touched since the last takeChanges(). */
  private dirty = new Set<string>();
  /** Per group: handle -> rule, and the lowest handle that may be free. */
  private readonly handles = new Map<string, { byHandle: Map<number, RuleEntry>; free: number }>();
  /**
   * cls_flower's per-mask hash tables, by the hash of keyOf (a number, not the text: ~300 bytes a rule less),
   * with how many filters hold each; a hash held is checked against the tcf_proto's filters themselves.
   */
  private readonly keys = new Map<number, number>();
  /** Per block, its chains in creation order (a Map keeps insertion order; a chain that goes and comes back goes last). */
  private readonly blocks = new Map<string, Map<number, ChainRefs>>();
  private chainsChanged = false;
  /** Per action kind but police: index -> how many actions hold it, and the lowest index that may be free. */
  private readonly actIdx = new Map<string, { used: Map<number, number>; free: number }>();
  /** Police actions are shared by index: the filters' and the action API's (agent/policers.ts). */
  readonly police: PolicerTable;

  constructor(rules: readonly RuleEntry[], chains: readonly ChainEntry[] = [], policers: readonly PolicerEntry[] = []) {
    this.police = new PolicerTable(policers);
    for (const c of chains) this.chainRef(c, c.chain).explicit = !!c.explicit;
    this.entries = rules.slice();
    this.synced = this.entries.length;
    this.entries.forEach((e, i) => {
      this.pos.set(e!, i);
      this.index(e!);
      e!.actIndex?.forEach((n, j) => {
        const a = e!.rule.actions[j];
        if (a?.kind === 'police') this.police.bind({ ...a, index: n }, e!.installedAt, e!.rule.flags);
        else this.holdAction(a?.kind ?? '', n);
      });
    });
    // Entries from journals older than action indexes get theirs now, in install order.
    for (const e of this.entries) if (!e!.actIndex) e!.actIndex = this.allocActions(e!.rule);
    for (const c of chains) this.chainRelease(c, c.chain);
    this.chainsChanged = false;
  }

  private index(e: RuleEntry): void {
    const k = chainKey(e.rule);
    let prios = this.chains.get(k);
    if (!prios) this.chains.set(k, (prios = new Map()));
    const list = prios.get(e.rule.prio);
    if (list) list.push(e);
    else prios.set(e.rule.prio, [e]);
    this.handlesOf(e.rule).byHandle.set(e.rule.handle, e);
    const key = fnv1a(keyOf(e.rule));
    this.keys.set(key, (this.keys.get(key) ?? 0) + 1);
    // tc_new_tfilter takes the filter's chain first, then its actions take their goto targets.
    this.chainRef(e.rule, e.rule.chain).rules++;
    this.holdTargets(e.rule, 1);
  }

  private holdTargets(r: FlowerRule, d: 1 | -1): void {
    for (const c of gotoTargets(r.actions)) {
      this.chainRef(r, c).acts += d;
      if (d < 0) this.chainRelease(r, c);
    }
  }

  /** A block's chain, created (appended to the block's list) if it did not exist. */
  private chainRef(b: Block, chain: number): ChainRefs {
    const k = blockKey(b);
    let list = this.blocks.get(k);
    if (!list) this.blocks.set(k, (list = new Map()));
    let c = list.get(chain);
    if (!c) {
      list.set(chain, (c = { explicit: false, rules: 0, acts: 0 }));
      this.chainsChanged = true;
    }
    return c;
  }

  /** __tcf_chain_put: a chain nothing refers to any more is freed. */
  private chainRelease(b: Block, chain: number): void {
    const list = this.blocks.get(blockKey(b));
    const c = list?.get(chain);
    if (c && !c.explicit && !c.rules && !c.acts) {
      list!.delete(chain);
      this.chainsChanged = true;
    }
  }

  /**
   * A chain as `tc chain` sees it: 'none', 'acts' (held by goto actions only:
   * tcf_chain_held_by_acts_only, not listed) or 'shown'.
   */
  chainState(b: Block, chain: number): 'none' | 'acts' | 'shown' {
    const c = this.blocks.get(blockKey(b))?.get(chain);
    if (!c) return 'none';
    return c.explicit || c.rules ? 'shown' : 'acts';
  }

  /** Sets or clears a chain's `tc chain add` reference (tc_ctl_chain). */
  setExplicit(b: Block, chain: number, on: boolean): void {
    if (on) {
      const c = this.chainRef(b, chain);
      if (!c.explicit) this.chainsChanged = true;
      c.explicit = true;
      return;
    }
    const c = this.blocks.get(blockKey(b))?.get(chain);
    if (!c?.explicit) return;
    c.explicit = false;
    this.chainsChanged = true;
    this.chainRelease(b, chain);
  }

  /** The chains `tc chain show` lists for a block, in creation order (tc_dump_chain). */
  shownChains(b: Block): number[] {
    return [...(this.blocks.get(blockKey(b)) ?? [])].filter(([, c]) => c.explicit || c.rules).map(([n]) => n);
  }

  /** Every block with chains (for dumps over devices). */
  blockList(): Block[] {
    return [...this.blocks.keys()].map(blockOfKey);
  }

  /** Every chain that exists, for the journal. */
  chainList(): ChainEntry[] {
    const out: ChainEntry[] = [];
    for (const [k, list] of this.blocks) {
      const { dev, direction } = blockOfKey(k);
      for (const [chain, c] of list) out.push({ dev, direction, chain, ...(c.explicit ? { explicit: true } : {}) });
    }
    return out;
  }

  /** A chain's tcf_protos as tcf_chain_dump walks them: prio ascending, each with its filters by handle (fl_walk). */
  protos(b: Block, chain: number): { prio: number; protocol: number; rules: RuleEntry[] }[] {
    const prios = this.chains.get(chainKey({ ...b, chain }));
    if (!prios) return [];
    return [...prios.keys()]
      .sort((x, y) => x - y)
      .map((prio) => {
        const rules = prios.get(prio)!.slice().sort((x, y) => x.rule.handle - y.rule.handle);
        return { prio, protocol: rules[0]!.rule.protocol, rules };
      });
  }

  private holdAction(kind: string, n: number): void {
    let k = this.actIdx.get(kind);
    if (!k) this.actIdx.set(kind, (k = { used: new Map(), free: 1 }));
    k.used.set(n, (k.used.get(n) ?? 0) + 1);
  }

  /**
   * Indexes for a new filter's actions, as tcf_idr_check_alloc gives them: the
   * one the guest named (binding a shared action), else the lowest free from 1
   * per kind. They are held until freeActions(). A police naming an existing
   * index binds it: the rule's action becomes that police (its parameters, as
   * the kernel runs it), so the translator sees what the filter does. Throws
   * the kernel's refusal (offload flags) having changed nothing.
   */
  allocActions(r: FlowerRule): number[] {
    const police = r.actions.filter((a): a is PoliceAction => a.kind === 'police');
    const resolved = police.length ? this.police.resolve(police, r.flags) : [];
    let p = 0;
    const now = Date.now();
    return r.actions.map((a, i) => {
      if (a.kind === 'police') {
        const b = resolved[p++]!;
        r.actions[i] = b;
        this.police.bind(b, now, r.flags);
        return b.index!;
      }
      let n = a.index ?? 0;
      if (!n) {
        const k = this.actIdx.get(a.kind);
        n = k?.free ?? 1;
        while (k?.used.has(n)) n++;
        if (k) k.free = n;
      }
      this.holdAction(a.kind, n);
      return n;
    });
  }

  private freeActions(e: RuleEntry): void {
    e.actIndex?.forEach((n, j) => {
      const kind = e.rule.actions[j]?.kind ?? '';
      if (kind === 'police') return this.police.unbind(n);
      const k = this.actIdx.get(kind);
      const held = k?.used.get(n);
      if (!k || !held) return;
      if (held > 1) k.used.set(n, held - 1);
      else {
        k.used.delete(n);
        k.free = Math.min(k.free, n);
      }
    });
  }

  /** The filters whose police action `index` is, with where it sits in their actions. */
  boundTo(index: number): { e: RuleEntry; at: number[] }[] {
    const out: { e: RuleEntry; at: number[] }[] = [];
    for (const e of this.entries) {
      if (!e) continue;
      const at = (e.actIndex ?? []).flatMap((n, j) => (n === index && e.rule.actions[j]?.kind === 'police' ? [j] : []));
      if (at.length) out.push({ e, at });
    }
    return out;
  }

  /** The police a RTM_NEWACTION replaced reaches every filter bound to it: their rules are rewritten (same id, same indexes). */
  policeChanged(index: number): void {
    const p = this.police.get(index);
    if (!p) return;
    for (const { e, at } of this.boundTo(index)) {
      const actions = e.rule.actions.slice();
      for (const j of at) actions[j] = p.police;
      this.replace(e, { ...e, rule: { ...e.rule, actions } });
    }
  }

  private handlesOf(r: FilterGroup): { byHandle: Map<number, RuleEntry>; free: number } {
    const k = groupKey(r);
    let h = this.handles.get(k);
    if (!h) this.handles.set(k, (h = { byHandle: new Map(), free: 1 }));
    return h;
  }

  private unindex(e: RuleEntry): void {
    const prios = this.chains.get(chainKey(e.rule))!;
    const list = prios.get(e.rule.prio)!;
    list.splice(list.indexOf(e), 1);
    if (!list.length) prios.delete(e.rule.prio);
    const h = this.handlesOf(e.rule);
    h.byHandle.delete(e.rule.handle);
    h.free = Math.min(h.free, e.rule.handle);
    const key = fnv1a(keyOf(e.rule)), n = this.keys.get(key)!;
    if (n > 1) this.keys.set(key, n - 1);
    else this.keys.delete(key);
    this.holdTargets(e.rule, -1);
    this.chainRef(e.rule, e.rule.chain).rules--;
    this.chainRelease(e.rule, e.rule.chain);
  }

  /** The rule of a group with this handle. */
  byHandle(r: FilterGroup, handle: number): RuleEntry | undefined {
    return this.handles.get(groupKey(r))?.byHandle.get(handle);
  }

  /** cls_flower.c fl_change: a filter without a handle gets the lowest unused one from 1 (idr_alloc_u32). */
  freeHandle(r: FilterGroup): number {
    const h = this.handlesOf(r);
    while (h.byHandle.has(h.free)) h.free++;
    return h.free;
  }

  /** A filter of the rule's tcf_proto already holds its mask shape and masked key (cls_flower.c fl_ht_insert_unique). */
  holdsKey(r: FlowerRule): boolean {
    const key = keyOf(r);
    return this.keys.has(fnv1a(key)) && this.atPrio(r).some((e) => keyOf(e.rule) === key);
  }

  /** Prios in use in the rule's chain. */
  prios(r: Pick<FlowerRule, 'dev' | 'direction' | 'chain'>): number[] {
    return [...(this.chains.get(chainKey(r))?.keys() ?? [])];
  }

  atPrio(r: FilterGroup): readonly RuleEntry[] {
    return this.chains.get(chainKey(r))?.get(r.prio) ?? [];
  }

  get size(): number {
    return this.entries.length - this.holes;
  }

  push(e: RuleEntry): void {
    this.pos.set(e, this.entries.length);
    this.entries.push(e);
    this.index(e);
    this.upserts.set(e.id, e);
    this.dirty.add(groupKey(e.rule));
  }

  /** `next` takes `old`'s place in install order (tc filter replace keeps the filter's position). */
  replace(old: RuleEntry, next: RuleEntry): void {
    const i = this.pos.get(old)!;
    this.pos.delete(old);
    if (i < this.synced) this.touched.push(i);
    this.entries[i] = next;
    this.pos.set(next, i);
    // Same place in its prio's list too: a group's list is its rules in install order.
    const list = groupKey(old.rule) === groupKey(next.rule) ? this.chains.get(chainKey(old.rule))?.get(old.rule.prio) : undefined;
    if (list) {
      list[list.indexOf(old)] = next;
      this.handlesOf(next.rule).byHandle.set(next.rule.handle, next);
      // The new actions take their chains before the old ones let go (fl_change, then the old filter is freed).
      this.holdTargets(next.rule, 1);
      this.holdTargets(old.rule, -1);
    } else {
      this.index(next);
      this.unindex(old);
    }
    if (old.actIndex !== next.actIndex) this.freeActions(old);
    this.upserts.set(next.id, next);
    this.dirty.add(groupKey(old.rule)).add(groupKey(next.rule));
  }

  remove(e: RuleEntry): void {
    const i = this.pos.get(e)!;
    this.pos.delete(e);
    this.unindex(e);
    this.entries[i] = undefined;
    this.holes++;
    if (i < this.synced) this.touched.push(i);
    this.firstHole = Math.min(this.firstHole, i);
    this.freeActions(e);
    this.upserts.delete(e.id);
    this.removed.push(e.id);
    this.dirty.add(groupKey(e.rule));
  }

  /** What changed since the last call (the journal's delta), and forget it. */
  takeChanges(): { upsert: RuleEntry[]; removed: number[]; chains?: ChainEntry[]; policers?: PolicerEntry[] } {
    const out = {
      upsert: [...this.upserts.values()],
      removed: this.removed,
      ...(this.chainsChanged ? { chains: this.chainList() } : {}),
      ...(this.police.takeChanged() ? { policers: this.police.entries() } : {}),
    };
    this.upserts = new Map();
    this.removed = [];
    this.dirty = new Set();
    this.chainsChanged = false;
    return out;
  }

  /** Ids removed since the last takeChanges(). */
  removedIds(): readonly number[] {
    return this.removed;
  }

  /** Groups touched since the last takeChanges(). */
  dirtyGroups(): ReadonlySet<string> {
    return this.dirty;
  }

  /** A group's rules in install order (empty if it has none). */
  group(key: string): readonly RuleEntry[] {
    const cut = key.lastIndexOf('|');
    return this.chains.get(key.slice(0, cut))?.get(Number(key.slice(cut + 1))) ?? [];
  }

  /** Entries added or replaced since the last takeChanges(). */
  changed(): IterableIterator<RuleEntry> {
    return this.upserts.values();
  }

  /** Entries a selector may match: one prio's list when dev, chain and prio are given, else all. */
  candidates(sel: { dev?: string; direction: FlowerRule['direction']; chain?: number; prio?: number }): RuleEntry[] {
    if (sel.dev && sel.chain !== undefined && sel.prio) return this.atPrio({ dev: sel.dev, direction: sel.direction, chain: sel.chain, prio: sel.prio }).slice();
    return this.toArray();
  }

  /**
   * Brings `target`, the array of the last syncTo() (or the one the table was
   * built from), to the entries in install order, in place: replaced entries
   * are set, added ones pushed, and after a removal the rest is compacted (in
   * here too). Returns what undoRules() needs to put `target` back.
   */
  syncTo(target: RuleEntry[]): RulesUndo {
    const { entries } = this;
    const length = this.synced;
    if (target.length !== length) throw new Error(`rule table out of step with its array (${target.length} != ${length})`);
    const from = Math.min(this.firstHole, length);
    const replaced: [number, RuleEntry][] = [];
    for (const i of this.touched) if (i < from && target[i] !== entries[i]) {
      replaced.push([i, target[i]!]);
      target[i] = entries[i]!;
    }
    const tail = target.slice(from);
    if (this.firstHole === Infinity) for (let i = length; i < entries.length; i++) target.push(entries[i]!);
    else {
      // From the first index that is new or moves: added entries before the first hole are copied too.
      let w = from;
      for (let r = w; r < entries.length; r++) {
        const e = entries[r];
        if (!e) continue;
        if (w !== r) {
          entries[w] = e;
          this.pos.set(e, w);
        }
        target[w++] = e;
      }
      entries.length = w;
      target.length = w;
      this.holes = 0;
    }
    this.synced = entries.length;
    this.touched = [];
    this.firstHole = Infinity;
    return { length, from, tail, replaced };
  }

  toArray(): RuleEntry[] {
    return this.entries.filter((e): e is RuleEntry => e !== undefined);
  }
}
