// A VM's police actions by index, as act_api.c keeps a netns's police idr:
// the ones filters created and the ones the action API created (`tc actions
// add`, OVS's meters offloaded as shared policers, lib/tc.c tc_add_policer),
// which filters then bind by `police index N`. Counts as the kernel's: a filter
// binding adds one to bindcnt and refcnt, the action API's own reference one to
// refcnt. Pure: RuleTable holds one and feeds it the filters; the record keeps
// the action API's policers (records.ts PolicerEntry).
import { Errno, VpfError } from '../rules/errors.js';
import type { FilterFlags, PoliceAction } from '../rules/model.js';
import type { PolicerEntry } from './records.js';

export interface Policer {
  index: number;
  /** The action every filter bound to it runs (index set). */
  police: PoliceAction;
  /** Created by RTM_NEWACTION: it holds a reference of its own until RTM_DELACTION (tcf_idr_create without bind). */
  explicit: boolean;
  /** Filter actions bound to it (tcfa_bindcnt). */
  binds: number;
  installedAt: number;
  /** The skip flags of the filter that created it (tcfa_flags of a classifier-created action). */
  skip?: { sw: boolean; hw: boolean };
}

/** tcfa_refcnt: each binding filter, and the action API's own reference. */
export const refcnt = (p: Policer): number => p.binds + (p.explicit ? 1 : 0);

const withIndex = (a: PoliceAction, index: number): PoliceAction => ({ ...a, index });

export class PolicerTable {
  private readonly byIndex = new Map<number, Policer>();
  /** The lowest index that may be free (idr_alloc_u32 from 1). */
  private free = 1;
  /** The action API's policers changed since the last takeChanged(). */
  private dirty = false;

  constructor(saved: readonly PolicerEntry[] = []) {
    for (const e of saved) this.byIndex.set(e.index, { index: e.index, police: withIndex(e.police, e.index), explicit: true, binds: 0, installedAt: e.installedAt });
  }

  get(index: number): Policer | undefined {
    return this.byIndex.get(index);
  }

  /** Every police action in index order (tcf_dump_walker walks the idr ascending). */
  list(): Policer[] {
    return [...this.byIndex.values()].sort((a, b) => a.index - b.index);
  }

  private alloc(taken: ReadonlySet<number> = new Set()): number {
    let n = this.free;
    while (this.byIndex.has(n) || taken.has(n)) n++;
    return n;
  }

  /**
   * What filter actions get, as tcf_idr_check_alloc with bind and
   * tcf_police_init do it: a named index that exists binds that police (its
   * own parameters, the filter's are ignored: `if (exists && bind) return 0`);
   * one that does not is created with the filter's; index 0 takes the lowest
   * free. Throws the kernel's refusal, having changed nothing.
   */
  resolve(actions: readonly PoliceAction[], flags: FilterFlags): PoliceAction[] {
    const taken = new Set<number>();
    return actions.map((a) => {
      const p = a.index ? this.byIndex.get(a.index) : undefined;
      if (p) {
        // act_api.c tcf_action_init: a classifier binding an action checks the offload flags against its own.
        const mismatch = p.skip ? (p.skip.sw && !flags.skipSw) || (p.skip.hw && !flags.skipHw) : flags.skipSw || flags.skipHw;
        if (mismatch) throw new VpfError(Errno.EINVAL, 'Mismatch between action and filter offload flags');
        return p.police;
      }
      const index = a.index || this.alloc(taken);
      taken.add(index);
      return withIndex(a, index);
    });
  }

  /** A filter action holds `a` (resolved) at its index: bindcnt and refcnt up, or the police is created by the filter. */
  bind(a: PoliceAction, installedAt: number, flags?: FilterFlags): void {
    const index = a.index!;
    const p = this.byIndex.get(index);
    if (p) {
      p.binds++;
      return;
    }
    this.byIndex.set(index, { index, police: a, explicit: false, binds: 1, installedAt, ...(flags && (flags.skipSw || flags.skipHw) ? { skip: { sw: flags.skipSw, hw: flags.skipHw } } : {}) });
  }

  /** A filter action lets go (tcf_action_destroy with bind): the police goes with its last reference. */
  unbind(index: number): void {
    const p = this.byIndex.get(index);
    if (!p) return;
    p.binds = Math.max(0, p.binds - 1);
    if (!refcnt(p)) this.drop(index);
  }

  private drop(index: number): void {
    this.byIndex.delete(index);
    this.free = Math.min(this.free, index);
  }

  /**
   * RTM_NEWACTION of police actions (tcf_action_add -> tcf_police_init): an
   * existing index is EEXIST unless NLM_F_REPLACE, which changes its
   * parameters for every filter bound to it; a new one is created with the
   * action API's reference. Checked as a whole first: a refusal changes nothing.
   * Returns the indexes whose parameters changed.
   */
  add(actions: readonly PoliceAction[], replace: boolean, now: number): number[] {
    const taken = new Set<number>();
    const plan = actions.map((a) => {
      // tcf_action_check_ctrlact: the action API has no tcf_proto to hold a chain.
      if (a.exceed.kind === 'goto') throw new VpfError(Errno.EINVAL, "can't goto NULL proto/chain");
      const existing = a.index ? this.byIndex.get(a.index) : undefined;
      if (existing && !replace) throw new VpfError(Errno.EEXIST, '');
      const index = a.index || this.alloc(taken);
      taken.add(index);
      return { index, police: withIndex(a, index), existing };
    });
    const changed: number[] = [];
    for (const { index, police, existing } of plan) {
      if (existing) {
        existing.police = police;
        changed.push(index);
        if (existing.explicit) this.dirty = true;
      } else {
        this.byIndex.set(index, { index, police, explicit: true, binds: 0, installedAt: now });
        this.dirty = true;
      }
    }
    return changed;
  }

  /** RTM_DELACTION by index (tcf_action_get_1, then tcf_idr_delete_index): ENOENT when missing, EPERM while a filter is bound. */
  check(index: number): Policer {
    const p = this.byIndex.get(index);
    if (!p) throw new VpfError(Errno.ENOENT, 'TC action with specified index not found');
    return p;
  }

  /** Deletes the action API's reference of each index (all checked first). */
  delete(indexes: readonly number[]): void {
    const ps = indexes.map((i) => this.check(i));
    // tcf_del_notify: a bound action cannot go ("Failed to delete TC action", -EPERM from tcf_idr_delete_index).
    if (ps.some((p) => p.binds)) throw new VpfError(Errno.EPERM, 'Failed to delete TC action');
    for (const p of ps) {
      if (p.explicit) this.dirty = true;
      this.drop(p.index);
    }
  }

  /**
   * RTM_DELACTION with NLM_F_ROOT (tcf_del_walker): in index order each
   * unbound police goes; the first bound one stops the walk. Nothing deleted
   * and a bound one: EPERM (bare); some deleted: a warning with the ACK.
   */
  flush(): { deleted: number; warning?: string } {
    let deleted = 0;
    for (const p of this.list()) {
      if (p.binds) {
        if (!deleted) throw new VpfError(Errno.EPERM, '');
        return { deleted, warning: 'Unable to flush all TC actions' };
      }
      if (p.explicit) this.dirty = true;
      this.drop(p.index);
      deleted++;
    }
    return { deleted };
  }

  /** The action API's policers, for the record. */
  entries(): PolicerEntry[] {
    return this.list()
      .filter((p) => p.explicit)
      .map((p) => ({ index: p.index, police: p.police, installedAt: p.installedAt }));
  }

  /** Whether the action API's policers changed since the last takeChanged(), without forgetting it. */
  get changed(): boolean {
    return this.dirty;
  }

  /** Whether the action API's policers changed since the last call (the journal's delta), and forget it. */
  takeChanged(): boolean {
    const d = this.dirty;
    this.dirty = false;
    return d;
  }
}
