// OpenFlow meter ids of a VM's police actions, stable for each action's life.
//
// A police action is one object in the kernel (act_police.c): its token
// bucket and counters last as long as the action, whatever filters come and
// go around it. vpf realizes one as one OpenFlow meter; numbering meters in
// translation order would hand an action's id to another one as soon as a
// rule with a police lands before it, and the mod-meter that follows refills
// the bucket and zeroes the counters the guest reads with `tc -s`. So an
// action keeps its id until it is gone, and the ids are journaled with the VM,
// so a vpfd restart re-puts nothing. Police indexes themselves cannot be the
// ids: a guest OVS numbers its shared policers from 0x10000000
// (netdev-offload-tc.c METER_POLICE_IDS_BASE), past any datapath's meter count.

import { Errno, VpfError } from '../rules/errors.js';
import { LEGACY_METER_BASE } from '../translator/legacy.js';

/** Meter ids vpf hands to police actions; max_tx_rate meters sit from LEGACY_METER_BASE up. */
const FIRST_ID = 1;

export class MeterIds {
  private readonly byKey: Map<string, number>;
  private readonly used: Set<number>;

  /** From the VM's record (absent in older journals: ids are given anew, once). */
  constructor(saved: readonly [string, number][] = []) {
    this.byKey = new Map(saved);
    this.used = new Set(this.byKey.values());
  }

  /** The id of the meter for `key` (a police action, translator meter key), given the lowest free one on first use. */
  id(key: string): number {
    const known = this.byKey.get(key);
    if (known !== undefined) return known;
    let id = FIRST_ID;
    while (this.used.has(id)) id++;
    // Thrown through the translator, which leaves that rule to the guest's software.
    if (id >= LEGACY_METER_BASE) throw new VpfError(Errno.ENOSPC, `no meter id left for ${key}: the VM has ${this.used.size} police actions`, 'police');
    this.byKey.set(key, id);
    this.used.add(id);
    return id;
  }

  /** Keeps only the ids a translation still uses (an action gone, or trapped, frees its id); true if any went. */
  retain(ids: Iterable<number>): boolean {
    const keep = new Set(ids);
    let changed = false;
    for (const [k, id] of this.byKey) {
      if (keep.has(id)) continue;
      this.byKey.delete(k);
      this.used.delete(id);
      changed = true;
    }
    return changed;
  }

  /** The id `key` has, without giving one. */
  get(key: string): number | undefined {
    return this.byKey.get(key);
  }

  get size(): number {
    return this.byKey.size;
  }

  entries(): [string, number][] {
    return [...this.byKey];
  }
}
