// A VM bridge's flows: what it should hold (desired) and what OVS holds
// (installed), kept apart as ovn-controller's ofctrl.c keeps them, and made
// equal by sending only the difference.
//
//   rules (FilterTable) ──translate──▶ desired (DesiredFlows, by filter group)
//   VF settings (VfState) ──legacy──▶ desired (legacy mode)
//                                        │ plan(): the groups an edit touched, or all
//                                        ▼
//        commit(): journal line ──▶ diff(desired, installed) ──▶ FlowInstaller (one bundle)
//                                        ▲                               │
//        installed: cookies + meters ────┘◀──────── on success ──────────┘
//        unknown (undefined) after a failed bundle or on reconcile(): read a dump
//
// Cookies name flows (translator/cookie.ts), so "installed" is a set of
// cookies; a restart reads one dump and sends nothing when nothing changed.
// When OVS refuses a bundle, its error names the flow, the flow's cookie
// names the rule: that rule leaves hardware (as a driver leaves a filter it
// cannot hold in software) and the rest go again, so one rule OVS will not
// take never keeps a VM's other rules, or the VM itself, from its bridge.
import type { Logger } from 'pino';
import { Errno, VpfError } from '../rules/errors.js';
import { translate, translateGroup, type RuleResult, type TranslateMemo, type Translation } from '../translator/index.js';
import { policeMeter } from '../translator/actions.js';
import type { OfFlow, OfMeter } from '../ovs/openflow/flow.js';
import { diffFlows, diffInstalled, isEmptyDiff, type FlowDiff } from '../ovs/openflow/diff.js';
import { InstallError, type FlowInstaller } from '../ovs/ctl/ofctl.js';
import { cookieKind, cookieRuleId, FlowKind } from '../translator/cookie.js';
import type { FlowerRule } from '../rules/model.js';
import type { Journal } from './journal.js';
import { MeterIds } from './meterids.js';
import type { RuleEntry, VmRecord } from './records.js';
import type { RuleTable } from './ruletable.js';
import { groupKey, layoutMap, layoutSlots, tableOf } from './group.js';
import { DesiredFlows, type GroupFlows } from './desired.js';
import type { Metrics } from './metrics.js';
import type { VfState } from './vfstate.js';
import { ZonePool, zonesOfRecord } from './zones.js';

/** An edit's new flows: for the groups it touched only, or a whole translation. */
export type Plan = { groups: Map<string, GroupFlows>; t?: undefined } | { t: Translation; groups?: undefined };

/** What OVS holds as of the last successful install (undefined: unknown, read a dump). */
interface Installed {
  cookies: Set<bigint>;
  /** The meters, as JSON. */
  meters: string;
}

/** Rules OVS may refuse in one install before it gives up: each costs a bundle. */
const MAX_REFUSED_PER_INSTALL = 32;

/** One turn of the event loop: the installer's queued work (encode, socket writes) runs before what follows. */
const sent = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FlowSync {
  /** Switchdev mode's desired flows by filter group (undefined: translate everything anew). */
  private sw: DesiredFlows | undefined;
  private installed: Installed | undefined;
  private memo: TranslateMemo = new WeakMap();
  /** Flow mods that had gone through ovs-ofctl at the last install. */
  private fallbackSeen = 0;
  /** The layout as last written to the journal (JSON). */
  private loggedLayout = '';

  constructor(
    private readonly rec: VmRecord,
    private readonly vf: VfState,
    private readonly installer: FlowInstaller,
    private readonly journal: Journal,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** The host's conntrack zones, shared by every VM of this vpfd (agent/zones.ts). */
    private readonly zonePool: ZonePool = new ZonePool(),
  ) {
    this.zoneMap = zonesOfRecord(rec);
    zonePool.restore(rec.name, this.zoneMap);
    this.meterIds = new MeterIds(rec.meterIds);
  }

  /** Police action -> meter id, stable for the action's life (agent/meterids.ts). */
  private readonly meterIds: MeterIds;

  /** A meter id given inside a translation: logged like a zone claim, durable before a flow uses it. */
  private readonly meterId = (key: string): number => {
    const n = this.meterIds.size;
    const id = this.meterIds.id(key);
    if (this.meterIds.size !== n) this.logMeterIds();
    return id;
  };

  private logMeterIds(): void {
    this.rec.meterIds = this.meterIds.entries();
    this.journal.write(this.rec, { upsert: [], removed: [], nextRuleId: this.rec.nextRuleId, meterIds: this.rec.meterIds });
  }

  /**
   * The action API's police actions that are meters, by meter key. A police
   * lives until it is deleted, bound or not (act_api.c), and so do its bucket
   * and counters: its meter stays while no filter binds it.
   */
  private standalone(): { key: string; spec: string }[] {
    return (this.rec.policers ?? []).flatMap((e) => {
      const m = policeMeter(e.police);
      return m && 'spec' in m ? [{ key: `index ${e.index}`, spec: m.spec }] : [];
    });
  }

  /**
   * A translation becomes the desired one, with the meters of police actions
   * no filter binds; the meter ids none of them uses are free again.
   */
  private adopt(t: Translation): DesiredFlows {
    const meters = [...t.meters];
    const used = new Set(meters.map((m) => m.id));
    for (const { key, spec } of this.standalone()) {
      const id = this.meterId(key);
      if (!used.has(id)) meters.push({ id, spec });
      used.add(id);
    }
    if (this.meterIds.retain(used)) this.logMeterIds();
    return DesiredFlows.of({ ...t, meters }, this.rec.rules);
  }

  /** The meter id of police index `index`, when it has a meter. */
  meterFor(index: number): number | undefined {
    return this.meterIds.get(`index ${index}`);
  }

  /** Guest ct zone -> host zone, as this VM's record holds them. */
  private readonly zoneMap: Map<number, number>;

  /**
   * Guest ct zone -> host zone. A zone no rule named before is claimed from the
   * host's pool now and logged at once (before the flows that use it exist), so
   * a restart maps it to the same host zone and its connections survive. A
   * full pool throws: the translator leaves that rule to the guest's software.
   */
  private readonly zone = (z: number): number => {
    const known = this.zoneMap.get(z);
    if (known !== undefined) return known;
    this.zonePool.claim(this.rec.name, this.zoneMap, [z]);
    this.rec.zones = [...this.zoneMap];
    // Written now, made durable before any flow using it is installed (reconcile) or acknowledged (commit).
    this.journal.write(this.rec, { upsert: [], removed: [], nextRuleId: this.rec.nextRuleId, zones: this.rec.zones });
    this.log.info({ vm: this.rec.name, guestZone: z, hostZone: this.zoneMap.get(z) }, 'conntrack zone claimed');
    return this.zoneMap.get(z)!;
  };

  /**
   * Rules whose flows OVS refused, with OVS's reason: left to the guest's
   * software (or refused under skip_sw) until the rule changes or
   * ovs-vswitchd restarts. Not journaled: a restart asks OVS again.
   */
  private readonly ovsRefused = new Map<number, { rule: FlowerRule; error: VpfError }>();

  /** ovsRefused as the translator takes it: only rules still as OVS saw them. */
  private notOffloadable(): Map<number, VpfError> | undefined {
    if (!this.ovsRefused.size) return undefined;
    const now = new Map(this.rec.rules.map((e) => [e.id, e.rule]));
    const out = new Map<number, VpfError>();
    for (const [id, q] of this.ovsRefused) {
      if (now.get(id) === q.rule) out.set(id, q.error);
      else this.ovsRefused.delete(id);
    }
    return out;
  }

  /**
   * An install OVS refused, naming a flow of a rule it had not refused before:
   * that rule is translated again as not offloadable (true: install again).
   * Anything else (a lost connection, a flow of no rule) is the caller's error.
   */
  private refusedByOvs(e: unknown, attempt: number): boolean {
    const refused = e instanceof InstallError ? e.refused : undefined;
    if (refused?.cookie === undefined || attempt >= MAX_REFUSED_PER_INSTALL) return false;
    const kind = cookieKind(refused.cookie);
    if (kind !== FlowKind.RULE && kind !== FlowKind.TRAP) return false;
    const id = cookieRuleId(refused.cookie);
    const entry = this.rec.rules.find((r) => r.id === id);
    if (!entry || this.ovsRefused.get(id)?.rule === entry.rule) return false;
    const error = new VpfError(Errno.EOPNOTSUPP, `Open vSwitch refused this filter's flow (${refused.code}): it cannot be offloaded`);
    this.ovsRefused.set(id, { rule: entry.rule, error });
    this.sw = undefined;
    this.log.error({ vm: this.rec.name, rule: id, cause: refused.code, flow: `0x${refused.cookie.toString(16)}` }, 'Open vSwitch refused a flow of this rule; the rule leaves hardware, the others are installed again');
    this.metrics.inc('vpf_rules_refused_by_ovs_total', { vm: this.rec.name }, 1, 'Rules taken out of hardware because Open vSwitch refused one of their flows');
    return true;
  }

  /** ovs-vswitchd restarted (perhaps upgraded): what it refused before is asked again. */
  ovsRestarted(): void {
    if (!this.ovsRefused.size) return;
    this.ovsRefused.clear();
    this.sw = undefined;
  }

  private translate(): Translation {
    const notOffloadable = this.notOffloadable();
    return translate({
      rules: this.rec.rules,
      ...(notOffloadable ? { notOffloadable } : {}),
      ports: this.rec.ports,
      zone: this.zone,
      ...(this.outerTpid !== undefined ? { outerTpid: this.outerTpid } : {}),
      layout: layoutMap(this.rec.layout),
      memo: this.memo,
      vfMaxTxRate: this.vf.settings().map((s) => s.maxTxRate),
      meterId: this.meterId,
    });
  }

  /** Switchdev mode's desired flows (translated from the rules when not known). */
  switchdev(): DesiredFlows {
    return (this.sw ??= this.adopt(this.translate()));
  }

  /**
   * The outer TPID the translator may rely on: the VM's declaration, until a
   * datapath flow broke it (agent/tpidaudit.ts).
   */
  get outerTpid(): number | undefined {
    return this.rec.outerTpidBroken ? undefined : this.rec.outerTpid;
  }

  /** The declared outer TPID was broken: logged, and every rule is translated anew without it (VLAN filters trapped). */
  outerTpidBroken(reason: string): void {
    this.rec.outerTpidBroken = reason;
    this.journal.write(this.rec, { upsert: [], removed: [], nextRuleId: this.rec.nextRuleId, outerTpidBroken: reason });
    this.memo = new WeakMap();
    this.sw = undefined;
  }

  /** The rules or VF settings changed other than by commit(): the desired flows are translated anew. */
  desiredChanged(): void {
    this.sw = undefined;
  }

  /** Every rule went (eswitch mode change): the table layout starts anew. */
  rulesCleared(): void {
    this.rec.layout = [];
    this.sw = undefined;
  }

  /** OVS's state is unknown (restart, reconnect, failed bundle): the next install reads a dump. */
  forgetInstalled(): void {
    this.installed = undefined;
  }

  /** The flows and meters the bridge must hold in the current eswitch mode. */
  private desired(): { flows: OfFlow[]; meters: OfMeter[] } {
    if (this.vf.mode === 'legacy') return this.vf.legacy();
    const sw = this.switchdev();
    return { flows: sw.flows(), meters: sw.meters };
  }

  /** Desired flow count (what the bridge holds once reconciled). */
  get flowCount(): number {
    return this.vf.mode === 'legacy' ? this.vf.legacy().flows.length : this.switchdev().count;
  }

  /** What a rule translated to, as far as the desired flows know. */
  result(id: number): RuleResult | undefined {
    return this.switchdev().perRule.get(id);
  }

  /**
   * How the rules after an edit become flows: when every group the edit
   * touched existed before and still has rules (so the table layout stays) and
   * none of its rules names another chain or a meter, only those groups are
   * translated; otherwise everything is.
   */
  plan(table: RuleTable): Plan {
    const sw = this.sw;
    if (!sw || this.vf.mode !== 'switchdev') return { t: this.translate() };
    // A police action came, went or changed through the action API: its meter with it (adopt()).
    if (table.police.changed) return { t: this.translate() };
    // A rule left to software for a loop of chains comes back once no loop remains, which only the whole set shows.
    if (sw.loops) return { t: this.translate() };
    // Deferred mirror copies give every later chain's rule a flow that depends on the whole set.
    if (sw.pendingMirrors) return { t: this.translate() };
    const groups = new Map<string, GroupFlows>();
    const notOffloadable = this.notOffloadable();
    for (const k of table.dirtyGroups()) {
      const members = table.group(k);
      const first = members[0]?.rule;
      const at = first && tableOf(sw.tables, first);
      if (!first || at === undefined || !sw.has(k) || first.direction !== 'ingress') return { t: this.translate() };
      const g = translateGroup(members as RuleEntry[], at, { ports: this.rec.ports, zone: this.zone, memo: this.memo, ...(this.outerTpid !== undefined ? { outerTpid: this.outerTpid } : {}), ...(notOffloadable ? { notOffloadable } : {}) });
      if (!g) return { t: this.translate() };
      groups.set(k, g);
    }
    return { groups };
  }

  /** The translator's refusal of a rule the edit added or replaced (the others were accepted before), or the flow quota's. */
  refusal(p: Plan, table: RuleTable, flowsPerVm: number): VpfError | undefined {
    for (const e of table.changed()) {
      const r = p.t ? p.t.perRule.get(e.id) : p.groups.get(groupKey(e.rule))?.perRule.get(e.id);
      if (r?.refused) return r.error;
    }
    const count = p.t ? p.t.flows.length : this.sw!.countWith(p.groups);
    if (count > flowsPerVm) return new VpfError(Errno.ENOSPC, `this VM's rules would need ${count} flows, more than its quota of ${flowsPerVm}`);
    return undefined;
  }

  /** Makes a translated edit durable (one journal line), then installs it: the ack waits for both. */
  async commit(p: Plan, table: RuleTable, what: string): Promise<void> {
    if (p.t) this.rec.layout = layoutSlots(p.t.tables);
    // The layout changes only when a filter group comes or goes: log it then, not with every rule.
    const layout = JSON.stringify(this.rec.layout);
    const layoutChanged = layout !== this.loggedLayout;
    this.loggedLayout = layout;
    const diff = p.groups && this.sw!.replace(p.groups, table.removedIds());
    const delta = { ...table.takeChanges(), nextRuleId: this.rec.nextRuleId, ...(layoutChanged ? { layout: this.rec.layout } : {}) };
    if (diff && this.installed) {
      // The bundle goes out first, so ovs-vswitchd works on it (its own process, the other
      // core) while the journal line is written and fdatasynced here; the ack waits for both.
      // A crash in between leaves flows of an unacknowledged change: the restart's dump
      // diff removes them, as it removes any flow the journal does not know.
      const installing = this.applyDiff(diff, what);
      installing.catch(() => undefined);
      await sent();
      try {
        await this.journal.append(this.rec, delta);
      } catch (e) {
        await installing.catch(() => undefined);
        throw e;
      }
      await installing;
      return;
    }
    await this.journal.append(this.rec, delta);
    if (p.t) this.sw = this.adopt(p.t);
    await this.reconcile(what);
  }

  /** Desired vs installed by cookie (installed read from a dump when unknown); only the difference goes, in one bundle. */
  async reconcile(reason: string): Promise<number> {
    // The dump (ovs-ofctl, another process) starts before the desired flows are translated
    // here, so a restart's two big steps overlap. Meter puts never remove flows, so a dump
    // taken before them is still what the diff must start from.
    const known = this.installed;
    const dumping = known ? undefined : this.installer.dump();
    dumping?.catch(() => undefined);
    for (let attempt = 0; ; attempt++) {
      const t = this.desired();
      const t0 = process.hrtime.bigint();
      let diff: FlowDiff;
      try {
        // A zone claimed by this translation is on disk before a flow uses it, so a restart maps it the same way.
        await this.journal.durable(this.rec.name);
        // Meters first and pruned last: OVS cannot bundle meter mods, and deleting a meter deletes its flows.
        const meters = JSON.stringify(t.meters);
        const metersChanged = meters !== known?.meters;
        if (metersChanged) await this.putMeters(t.meters);
        let want: Set<bigint> | undefined;
        if (known) ({ want, ...diff } = diffInstalled(t.flows, known.cookies));
        else diff = diffFlows(t.flows, await dumping!);
        if (!isEmptyDiff(diff)) await this.installer.apply(diff);
        const cookies = want ?? new Set(t.flows.map((f) => f.cookie));
        if (metersChanged) await this.installer.pruneMeters(t.meters.map((m) => m.id));
        this.installed = { cookies, meters };
      } catch (e) {
        // A refused bundle applied nothing: the same starting point, without the refused rule.
        if (this.refusedByOvs(e, attempt)) continue;
        // A failed or timed-out bundle may still have applied: the next change reads a dump.
        this.installed = undefined;
        throw e;
      }
      return this.recordInstall(diff, t0, reason);
    }
  }

  /**
   * The meters, before the flows that use them. A meter OVS refuses is left
   * out (logged): the flows using it are then refused by name and their rules
   * leave hardware, where a refused meter would otherwise stop every flow.
   */
  private async putMeters(meters: OfMeter[]): Promise<void> {
    try {
      await this.installer.putMeters(meters);
    } catch (e) {
      if (!(e instanceof InstallError && e.refused)) throw e;
      this.log.error({ vm: this.rec.name, cause: e.refused.code, err: e }, 'Open vSwitch refused a meter; the rules using it leave hardware');
    }
  }

  /** Installs a difference computed from the desired groups (no dump, no full diff). */
  private async applyDiff(diff: FlowDiff, reason: string): Promise<number> {
    const installed = this.installed!;
    const t0 = process.hrtime.bigint();
    try {
      if (!isEmptyDiff(diff)) await this.installer.apply(diff);
    } catch (e) {
      // The refused rule leaves hardware: everything is translated again, from the same installed flows.
      if (this.refusedByOvs(e, 0)) return this.reconcile(reason);
      this.installed = undefined;
      throw e;
    }
    for (const c of diff.del) installed.cookies.delete(c);
    for (const f of diff.add) installed.cookies.add(f.cookie);
    return this.recordInstall(diff, t0, reason);
  }

  /** Metrics and the log line of an install. */
  private recordInstall(diff: FlowDiff, t0: bigint, reason: string): number {
    const vm = this.rec.name;
    const mods = diff.add.length + diff.del.length;
    this.metrics.observe('vpf_install_seconds', { vm }, Number(process.hrtime.bigint() - t0) / 1e9, 'Time to make the bridge equal the desired flows');
    this.metrics.set('vpf_flows', { vm }, this.flowCount, 'Desired OpenFlow flows');
    this.metrics.set('vpf_rules', { vm }, this.rec.rules.length, 'Guest rules');
    const c = this.installer.counters;
    if (c) {
      if (c.fallbackFlowMods !== this.fallbackSeen) this.log.debug({ vm, cause: this.installer.lastFallback?.message }, 'flows went through ovs-ofctl: a form the native encoder does not cover');
      this.fallbackSeen = c.fallbackFlowMods;
      this.metrics.setTotal('vpf_flow_mods_total', { vm, path: 'native' }, c.nativeFlowMods, 'Flow mods sent, by path');
      this.metrics.setTotal('vpf_flow_mods_total', { vm, path: 'ovs-ofctl' }, c.fallbackFlowMods, 'Flow mods sent, by path');
    }
    if (mods) this.log.info({ vm, reason, added: diff.add.length, deleted: diff.del.length }, 'bridge reconciled');
    return mods;
  }
}
