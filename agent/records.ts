// What vpfd keeps of a VM, as values: the record the journal persists
// (agent/journal.ts does the I/O) and the agent's parts share.
import type { FlowerRule, PoliceAction } from '../rules/model.js';
import type { VfSettings } from '../rules/vf.js';
import type { PortMap } from '../translator/portmap.js';
import type { TableSlot } from './group.js';

export interface RuleEntry {
  id: number;
  rule: FlowerRule;
  installedAt: number;
  /** Each action's index, allocated per VM and action kind as act_api.c tcf_idr_check_alloc does (absent in older journals). */
  actIndex?: number[];
}

/** A tc chain of one block (dev, direction), as cls_api.c keeps it in block->chain_list. */
export interface ChainEntry {
  dev: string;
  direction: 'ingress' | 'egress';
  chain: number;
  /** Created by RTM_NEWCHAIN (`tc chain add`): it stays when its filters go. */
  explicit?: boolean;
}

/** A police action the action API created (`tc actions add`, OVS's shared policers): kept by index until deleted. */
export interface PolicerEntry {
  index: number;
  /** Its parameters; filters bound to it carry a copy (RuleEntry.rule), rewritten when it is replaced. */
  police: PoliceAction;
  installedAt: number;
}

export interface VmRecord {
  name: string;
  vfs: number;
  ports: PortMap;
  attach: Record<string, string>;
  /** Guest rules in install order (the kernel's mask order depends on it). */
  rules: RuleEntry[];
  nextRuleId: number;
  /** Guest ct zone -> the host zone claimed for it (agent/zones.ts); absent in older journals. */
  zones?: [number, number][];
  /** Police action (translator meter key) -> its OpenFlow meter id, kept for the action's life (agent/meterids.ts); absent in older journals. */
  meterIds?: [string, number][];
  /** Declared outer TPID of the VM's tagged frames (VmSpec.outerTpid), 0x8100 or 0x88a8. */
  outerTpid?: number;
  /** Why the declaration no longer holds (the datapath saw a frame that broke it): VLAN filters are trapped again. */
  outerTpidBroken?: string;
  /** Older journals: the fixed block of 256 host zones the VM had (host = zoneBase + guest). */
  zoneBase?: number;
  /** The translator's table layout, kept so changes stay incremental across restarts. */
  layout: TableSlot[];
  /** Eswitch mode of the VM's virtual PF (absent in journals older than the legacy path: switchdev). */
  mode?: 'legacy' | 'switchdev';
  /** Legacy VF settings, kept across mode changes as mlx5 keeps vport->info. */
  vfSettings?: VfSettings[];
  /** Host VFs backing the guest's VFs, when they are physical (agent/physvf.ts). */
  hostPf?: { pf: string; vfs: number[] };
  /** Every chain that exists, in creation order (absent in older journals: derived from the rules). */
  chains?: ChainEntry[];
  /** Police actions of the action API, by index (absent in older journals: none). */
  policers?: PolicerEntry[];
  /** Which log belongs to this snapshot: `<vm>.<epoch>.log`. */
  epoch?: number;
}
