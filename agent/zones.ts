// Conntrack zones: the guest's 16-bit zones onto the host's, per VM.
//
// OVS's conntrack zones are per host (one kernel conntrack table), a guest's
// are its own: two VMs naming zone 64000 (ovn-kubernetes' zone) must get two
// host zones, or one VM would see and change the other's connections. A host
// zone is claimed for a VM the first time one of its accepted rules names the
// guest zone, is kept while the VM exists (so its connections survive rule
// churn, as a guest's conntrack entries outlive its filters), and is released
// only with the VM, when its entries are flushed so the next owner starts empty.
import { Errno, VpfError } from '../rules/errors.js';
import type { FlowerRule } from '../rules/model.js';
import { guestZones } from '../rules/ctzone.js';

/** Host zones vpf may hand out. Zone 0 is the host's default zone and never one of them. */
export interface ZoneRange {
  min: number;
  max: number;
}
export const DEFAULT_ZONE_RANGE: ZoneRange = { min: 256, max: 0xffff };
/** Zones one VM may hold: a guest naming every 16-bit zone must not exhaust the host for the others. */
export const DEFAULT_ZONES_PER_VM = 1024;

/**
 * Which host zone belongs to which VM, for the whole host. Allocation is the
 * lowest free zone of the range: deterministic, so tests and logs read simply.
 */
export class ZonePool {
  private readonly owner = new Map<number, string>();

  constructor(
    private readonly range: ZoneRange = DEFAULT_ZONE_RANGE,
    private readonly perVm = DEFAULT_ZONES_PER_VM,
  ) {}

  /** Re-claims the zones a VM held before a restart (from its record); a clash is a corrupt state and is refused. */
  restore(vm: string, zones: Map<number, number>): void {
    for (const host of zones.values()) {
      const o = this.owner.get(host);
      if (o !== undefined && o !== vm) throw new VpfError(Errno.EEXIST, `host ct zone ${host} of VM ${vm} is already held by VM ${o}`);
    }
    for (const host of zones.values()) this.owner.set(host, vm);
  }

  /**
   * The host zones for `wanted` guest zones of `vm`, allocating the missing
   * ones into `zones` (the VM's map, changed in place only when all fit).
   * Returns the guest zones newly mapped (empty when nothing changed).
   */
  claim(vm: string, zones: Map<number, number>, wanted: Iterable<number>): number[] {
    const missing = [...new Set(wanted)].filter((g) => !zones.has(g));
    if (!missing.length) return [];
    if (zones.size + missing.length > this.perVm) {
      throw new VpfError(Errno.ENOSPC, `ct zone ${missing[0]}: the VM already holds ${zones.size} conntrack zones (limit ${this.perVm} per VM)`, 'ct zone');
    }
    const got: number[] = [];
    let next = this.range.min;
    for (const _ of missing) {
      while (next <= this.range.max && this.owner.has(next)) next++;
      if (next > this.range.max) break;
      got.push(next++);
    }
    if (got.length < missing.length) {
      throw new VpfError(Errno.ENOSPC, `ct zone ${missing[got.length]}: no host conntrack zone left in ${this.range.min}-${this.range.max}`, 'ct zone');
    }
    missing.forEach((g, i) => {
      zones.set(g, got[i]!);
      this.owner.set(got[i]!, vm);
    });
    return missing;
  }

  /** Frees every zone of `vm`; returns them so the caller can flush their conntrack entries. */
  release(vm: string): number[] {
    const freed: number[] = [];
    for (const [z, o] of this.owner) if (o === vm) freed.push(z);
    for (const z of freed) this.owner.delete(z);
    return freed.sort((a, b) => a - b);
  }

  ownerOf(hostZone: number): string | undefined {
    return this.owner.get(hostZone);
  }
}

/**
 * A VM's zone map from its record: `zones` when present, else (journals from
 * before sparse zones) the old fixed block `zoneBase + guest` for the zones its
 * rules name, so an upgrade changes no flow and keeps every connection.
 */
export function zonesOfRecord(rec: { zones?: [number, number][]; zoneBase?: number; rules: { rule: FlowerRule }[] }): Map<number, number> {
  if (rec.zones) return new Map(rec.zones);
  const m = new Map<number, number>();
  if (rec.zoneBase === undefined) return m;
  for (const e of rec.rules) for (const g of guestZones(e.rule)) if (g <= 0xff) m.set(g, rec.zoneBase + g);
  return m;
}
