// One OpenFlow flow as vpf programs it: what the translator produces and what
// ovs/ctl installs, dumps and diffs. Text fields use ovs-ofctl syntax
// (ovs-fields(7), ovs-actions(7)) so a flow is readable in logs and tests.

export interface OfFlow {
  table: number;
  priority: number;
  /** Identifies the rule and flow kind (translator/cookie.ts); unique per desired flow. */
  cookie: bigint;
  /** Match fields in ovs-ofctl syntax, without table/priority/cookie ("" = match all). */
  match: string;
  /** Actions in ovs-ofctl syntax ("drop" for none). */
  actions: string;
}

/** An OpenFlow meter (OFPT_METER_MOD), installed outside bundles: OVS cannot bundle meter mods. */
export interface OfMeter {
  id: number;
  /** ovs-ofctl add-meter text after `meter=ID,`, e.g. "kbps burst stats bands=type=drop rate=1000 burst_size=64". */
  spec: string;
}

/** The line `ovs-ofctl add-flow(s)` accepts for a flow. */
export function flowLine(f: OfFlow): string {
  const head = `table=${f.table},priority=${f.priority},cookie=0x${f.cookie.toString(16)}`;
  return `${head}${f.match ? ',' + f.match : ''},actions=${f.actions}`;
}

export function meterLine(m: OfMeter): string {
  return `meter=${m.id},${m.spec}`;
}
