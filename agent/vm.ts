// One VM: its rules (the guest's tc state), its VF settings and eswitch mode,
// its bridge's desired flows, and the requests on its guest channels that
// change them. Requests of one VM run one at a time (a promise queue), so its
// state changes in order; other VMs never wait on it.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Errno, VpfError } from '../rules/errors.js';
import type { FilterStats, FlowerRule } from '../rules/model.js';
import { buildDone, buildError, NlmF, Rtm, type NlHeader, type NlMessage } from '../rules/netlink/nlmsg.js';
import { decodeTcNlMessage, encodeChainReply, encodeFilterDump, encodeFilterHead, type FilterSelector, type TcMessage } from '../rules/netlink/tc.js';
import { printFilter } from '../rules/tcsyntax/index.js';
import { cookieKind, cookieKindName, cookieRuleId, FlowKind } from '../translator/cookie.js';
import { translate, translateGroup, type RuleResult, type TranslateMemo, type Translation } from '../translator/index.js';
import { translateLegacy, type LegacyTranslation } from '../translator/legacy.js';
import { defaultVfSettings, type VfRequest, type VfSettings, type VfStats } from '../rules/vf.js';
import { applyVfRequest } from '../rules/vfvalidate.js';
import { channelLinks, decodeLinkRequest, encodeLinkReply, lookupLink, PF_IFINDEX } from '../rules/netlink/link.js';
import { decodeDevlinkRequest, encodeDevReply, encodeEswitchReply, encodeFamilyReply } from '../rules/netlink/devlink.js';
import type { OfFlow, OfMeter } from '../ovs/openflow/flow.js';
import { portPair } from '../translator/portmap.js';
import { diffFlows, diffInstalled, isEmptyDiff, type FlowDiff, type InstalledFlow } from '../ovs/openflow/diff.js';
import type { FlowInstaller } from '../ovs/ctl/ofctl.js';
import { flowLine } from '../ovs/openflow/flow.js';
import type { Journal, RuleEntry, VmRecord } from './journal.js';
import { groupKey, RuleTable } from './ruletable.js';
import { DesiredFlows, type GroupFlows } from './desired.js';
import { GuestChannels } from './channel.js';
import type { Metrics } from './metrics.js';
import type { RuleHardware } from './hwfacts.js';
import type { Quotas } from './config.js';
import type { ExplainReport, RuleView } from './admin/api.js';

/** Ethernet header bytes OVS counts and tc does not (tc-offload.rst: TC byte counts exclude L2). */
const L2_HEADER = 14;
/** cls_api.c tc_new_tfilter: a filter without a prio is placed as if it had this one (TC_H_MAKE(0x80000000U, 0U))... */
const ALLOC_PRIO = 0x8000;
/** ...and tcf_auto_prio gives it one below the tcf_proto found there, or 0xC000 when there is none. */
const AUTO_PRIO = 0xc000;
/** What an edit that fails puts back. */
type Undo = { rules: VmRecord['rules']; chains: VmRecord['chains']; nextRuleId: number };
/** How the VM's VF settings are realized: on its bridge, or also by a host NIC (physical VFs). */
export interface VfBackend {
  /** Applies one request to the host VF behind guest VF `req.vf`; the kernel's answer goes back to the guest unchanged. */
  apply(req: VfRequest): Promise<{ errno: number; message?: string }>;
  close?(): void;
}

/** An edit's new flows: for the groups it touched only, or a whole translation. */
type Plan = { groups: Map<string, GroupFlows>; t?: undefined } | { t: Translation; groups?: undefined };

export interface VmOptions {
  /** Carrier of the VM's uplink, for VF link state auto (mlx5 MLX5_VPORT_ADMIN_STATE_AUTO). */
  uplinkUp?: () => boolean;
  /** A host PF whose VFs back this VM's VFs: settings go there, not to bridge flows. */
  vfBackend?: VfBackend;
  /**
   * What the kernel datapath did with this VM's rules (agent/hwfacts.ts), where
   * hw-offload is on: in_hw and hardware counters then come from it.
   */
  hardware?: () => Promise<Map<number, RuleHardware>>;
}

export class VmState {
  private queue: Promise<unknown> = Promise.resolve();
  /** Switchdev mode's desired flows by group (undefined = translate everything anew). */
  private sw: DesiredFlows | undefined;
  /** Cookies OVS holds, as of the last successful apply; undefined = unknown, read a dump (ofctrl.c's installed table). */
  private installed: Set<bigint> | undefined;
  /** The meters OVS holds as of the last apply (JSON), undefined = unknown. */
  private installedMeters: string | undefined;
  private msgWindow = { start: Date.now(), n: 0 };
  private readonly memo: TranslateMemo = new WeakMap();
  /** Flow mods that had gone through ovs-ofctl at the last install. */
  private fallbackSeen = 0;
  /** The layout as last written to the journal (JSON). */
  private loggedLayout = '';
  /** rec.rules indexed for edits (undefined = rebuild from rec.rules). */
  private table: RuleTable | undefined;
  private readonly channels: GuestChannels = new GuestChannels({
    batchable: (msg, proto) => proto === 'route' && isFilterChange(msg),
    handle: (msg, proto) => this.serial(() => (proto === 'genl' ? this.handleGenl(msg) : this.handle(msg))),
    handleBatch: (msgs) => this.serial(() => this.handleBatch(msgs)),
    framingLost: (len) => {
      this.log.warn({ vm: this.rec.name, len }, 'guest channel framing lost; closing the connection');
      this.metrics.inc('vpf_channel_errors_total', { vm: this.rec.name, errno: 'EBADMSG' });
    },
  });
  /** The legacy-mode flows for the current VF settings (undefined = recompute). */
  private legacyT: LegacyTranslation | undefined;

  constructor(
    readonly rec: VmRecord,
    readonly bridge: string,
    private readonly installer: FlowInstaller,
    private readonly journal: Journal,
    private readonly quotas: Quotas,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: VmOptions = {},
  ) {}

  get mode(): 'legacy' | 'switchdev' {
    return this.rec.mode ?? 'switchdev';
  }

  /** Every VF's administrator settings (mlx5 defaults until the guest sets them). */
  vfSettings(): VfSettings[] {
    const have = this.rec.vfSettings ?? [];
    return Array.from({ length: this.rec.vfs }, (_, n) => have[n] ?? defaultVfSettings());
  }

  private legacy(): LegacyTranslation {
    return (this.legacyT ??= translateLegacy({ ports: this.rec.ports, vfs: this.vfSettings(), uplinkUp: this.opts.uplinkUp?.() ?? true }));
  }

  /** The flows and meters the bridge must hold in the current eswitch mode. */
  private desired(): { flows: OfFlow[]; meters: OfMeter[] } {
    if (this.mode === 'legacy') return this.legacy();
    const sw = this.switchdev();
    return { flows: sw.flows(), meters: sw.meters };
  }

  private switchdev(): DesiredFlows {
    return (this.sw ??= DesiredFlows.of(this.translate(), this.rec.rules));
  }

  /**
   * How the rules after an edit become flows: when every group the edit
   * touched existed before and still has rules (so the table layout stays) and
   * none of its rules names another chain or a meter, only those groups are
   * translated; otherwise everything is.
   */
  private plan(): Plan {
    const table = this.rulesTable();
    const sw = this.sw;
    if (sw && this.mode === 'switchdev') {
      const groups = new Map<string, GroupFlows>();
      for (const k of table.dirtyGroups()) {
        const members = table.group(k);
        const first = members[0]?.rule;
        const at = first && sw.tables.get(`${first.chain}/${first.prio}`);
        if (!first || at === undefined || !sw.has(k) || first.direction !== 'ingress') return { t: this.translate() };
        const g = translateGroup(members as RuleEntry[], at, { ports: this.rec.ports, zone: this.zone, memo: this.memo });
        if (!g) return { t: this.translate() };
        groups.set(k, g);
      }
      return { groups };
    }
    return { t: this.translate() };
  }

  private planResult(p: Plan, e: RuleEntry): RuleResult | undefined {
    return p.t ? p.t.perRule.get(e.id) : p.groups.get(groupKey(e.rule))?.perRule.get(e.id);
  }

  private planCount(p: Plan): number {
    return p.t ? p.t.flows.length : this.sw!.countWith(p.groups);
  }

  /** The uplink's carrier changed: link-state auto VFs follow it. */
  uplinkChanged(): Promise<number> {
    return this.serial(async () => {
      this.legacyT = undefined;
      return this.mode === 'legacy' ? this.reconcileNow('uplink carrier') : 0;
    });
  }

  /** Runs `f` after every earlier request of this VM. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f, f);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Guest ct zone -> host zone: each VM owns 256; a guest zone past them would alias another of its zones. */
  private readonly zone = (z: number): number => {
    if (z > 0xff) throw new VpfError(Errno.EOPNOTSUPP, `ct zone ${z}: a VM has 256 conntrack zones (0-255) on this host`, 'ct zone');
    return this.rec.zoneBase + z;
  };

  private translate(): Translation {
    return translate({
      rules: this.rec.rules,
      ports: this.rec.ports,
      zone: this.zone,
      layout: new Map(this.rec.layout),
      memo: this.memo,
      vfMaxTxRate: this.vfSettings().map((s) => s.maxTxRate),
    });
  }

  /** Desired vs installed by cookie, read from a fresh dump; only the difference goes, in one bundle. */
  reconcile(reason: string): Promise<number> {
    return this.serial(async () => {
      this.installed = undefined;
      this.installedMeters = undefined;
      return this.reconcileNow(reason);
    });
  }

  private async reconcileNow(reason: string): Promise<number> {
    const t = this.desired();
    const t0 = process.hrtime.bigint();
    let diff;
    try {
      // Meters first and pruned last: OVS cannot bundle meter mods, and deleting a meter deletes its flows.
      const meters = JSON.stringify(t.meters);
      const metersChanged = meters !== this.installedMeters;
      if (metersChanged) await this.installer.putMeters(t.meters);
      let want: Set<bigint> | undefined;
      if (this.installed) ({ want, ...diff } = diffInstalled(t.flows, this.installed));
      else diff = diffFlows(t.flows, await this.installer.dump());
      if (!isEmptyDiff(diff)) await this.installer.apply(diff);
      this.installed = want ?? new Set(t.flows.map((f) => f.cookie));
      if (metersChanged) await this.installer.pruneMeters(t.meters.map((m) => m.id));
      this.installedMeters = meters;
    } catch (e) {
      // A failed or timed-out bundle may still have applied: the next change reads a dump.
      this.installed = undefined;
      this.installedMeters = undefined;
      throw e;
    }
    return this.recordInstall(diff, t0, reason);
  }

  /** Installs a difference computed from the desired groups (no dump, no full diff); a full reconcile when OVS's state is unknown. */
  private async applyDiff(diff: FlowDiff, reason: string): Promise<number> {
    if (!this.installed) return this.reconcileNow(reason);
    const t0 = process.hrtime.bigint();
    try {
      if (!isEmptyDiff(diff)) await this.installer.apply(diff);
    } catch (e) {
      this.installed = undefined;
      this.installedMeters = undefined;
      throw e;
    }
    for (const c of diff.del) this.installed.delete(c);
    for (const f of diff.add) this.installed.add(f.cookie);
    return this.recordInstall(diff, t0, reason);
  }

  /** Metrics and the log line of an install. */
  private recordInstall(diff: FlowDiff, t0: bigint, reason: string): number {
    const mods = diff.add.length + diff.del.length;
    this.metrics.observe('vpf_install_seconds', { vm: this.rec.name }, Number(process.hrtime.bigint() - t0) / 1e9, 'Time to make the bridge equal the desired flows');
    this.metrics.set('vpf_flows', { vm: this.rec.name }, this.flowCount, 'Desired OpenFlow flows');
    this.metrics.set('vpf_rules', { vm: this.rec.name }, this.rec.rules.length, 'Guest rules');
    const c = this.installer.counters;
    if (c) {
      if (c.fallbackFlowMods !== this.fallbackSeen) this.log.debug({ vm: this.rec.name, cause: this.installer.lastFallback?.message }, 'flows went through ovs-ofctl: a form the native encoder does not cover');
      this.fallbackSeen = c.fallbackFlowMods;
      this.metrics.setTotal('vpf_flow_mods_total', { vm: this.rec.name, path: 'native' }, c.nativeFlowMods, 'Flow mods sent, by path');
      this.metrics.setTotal('vpf_flow_mods_total', { vm: this.rec.name, path: 'ovs-ofctl' }, c.fallbackFlowMods, 'Flow mods sent, by path');
    }
    if (mods) this.log.info({ vm: this.rec.name, reason, added: diff.add.length, deleted: diff.del.length }, 'bridge reconciled');
    return mods;
  }

  /** Desired flow count (what the bridge holds once reconciled). */
  get flowCount(): number {
    return this.mode === 'legacy' ? this.legacy().flows.length : this.switchdev().count;
  }

  // --- the guest channel ---

  /** The VM's two channels: NETLINK_ROUTE at `path`, NETLINK_GENERIC (devlink) at `genlPath` (docs/protocol.md). */
  async listen(path: string, genlPath: string): Promise<void> {
    await this.channels.listen(path, 'route');
    await this.channels.listen(genlPath, 'genl');
  }

  close(): void {
    this.channels.close();
    this.opts.vfBackend?.close?.();
    void Promise.resolve(this.installer.close?.()).catch(() => undefined);
    clearInterval(this.watch);
  }

  private watch: NodeJS.Timeout | undefined;

  /**
   * A restarted ovs-vswitchd has no flows; it writes a new pid into its pid
   * file. A changed pid means "reinstall now", well before the periodic
   * reconcile would notice (the management socket's inode is often reused, so
   * it is no signal).
   */
  watchVswitchd(pidFile: string, everyMs = 250): void {
    let pid = pidOf(pidFile);
    this.watch = setInterval(() => {
      const now = pidOf(pidFile);
      if (now === pid || now === undefined) return;
      pid = now;
      this.log.warn({ vm: this.rec.name, bridge: this.bridge }, 'ovs-vswitchd restarted; reinstalling flows');
      // The new ovs-vswitchd may still be setting the bridge up: retry briefly before leaving it to the timer.
      const attempt = (n: number): void => {
        this.reconcile('ovs-vswitchd restart').catch((e) => {
          if (n < 40) setTimeout(() => attempt(n + 1), 100).unref();
          else this.log.warn({ vm: this.rec.name, err: e }, 'reinstall after restart failed; the timer will retry');
        });
      };
      attempt(0);
    }, everyMs);
    this.watch.unref();
  }

  private rateLimited(): boolean {
    const now = Date.now();
    if (now - this.msgWindow.start >= 1000) this.msgWindow = { start: now, n: 0 };
    return ++this.msgWindow.n > this.quotas.msgsPerSec;
  }

  private refuse(msg: NlMessage, e: VpfError): Buffer[] {
    this.metrics.inc('vpf_channel_errors_total', { vm: this.rec.name, errno: e.errnoName }, 1, 'Guest requests refused, by errno');
    this.log.info({ vm: this.rec.name, errno: e.errnoName, cause: e.message || `${e.errnoName} at ${e.attr ?? 'the request'} (a bare errno, as the kernel answers)`, type: msg.type, seq: msg.seq }, 'guest request refused');
    return [buildError(msg, e.errno, e.message)];
  }

  /**
   * Several filter adds/deletes committed as one change. Each is applied to the
   * state in order (its own refusal, e.g. EEXIST, touches nothing); if the
   * translator refuses any new rule or the flow quota would be exceeded, the
   * batch is undone and its requests run one by one, so each gets its own answer.
   */
  private async handleBatch(msgs: NlMessage[]): Promise<Buffer[][]> {
    if (this.mode === 'legacy') {
      const out: Buffer[][] = [];
      for (const msg of msgs) out.push(await this.handle(msg));
      return out;
    }
    // Edits go to the rule table and come back as a new array: the current one is the undo snapshot.
    const before = this.snapshot();
    const replies: (Buffer[] | undefined)[] = [];
    for (const msg of msgs) {
      if (this.rateLimited()) {
        replies.push(this.refuse(msg, new VpfError(Errno.EBUSY, 'too many requests from this VM; slow down')));
        continue;
      }
      const d = decodeTcNlMessage(msg);
      if (!d.ok) {
        replies.push(this.refuse(msg, d.error));
        continue;
      }
      const m = d.value;
      try {
        this.filterChange(m, msg.flags);
        replies.push(undefined);
      } catch (e) {
        if (!(e instanceof VpfError)) throw e;
        replies.push(this.refuse(msg, e));
      }
    }
    this.syncRecord();
    const plan = this.plan();
    const refused = this.refusedChange(plan) !== undefined;
    if (refused || this.planCount(plan) > this.quotas.flowsPerVm) {
      this.undoTo(before);
      const out: Buffer[][] = [];
      for (const msg of msgs) out.push(await this.handle(msg));
      return out;
    }
    try {
      await this.commit(plan, 'filter batch');
    } catch (e) {
      return msgs.map((msg, i) => replies[i] ?? this.installFailed(msg, e));
    }
    return msgs.map((msg, i) => replies[i] ?? [buildError(msg, 0)]);
  }

  private installFailed(msg: NlMessage, e: unknown): Buffer[] {
    if (e instanceof VpfError) return this.refuse(msg, e);
    this.log.error({ vm: this.rec.name, err: e }, 'request failed; state unknown, reconciling');
    void this.reconcile('error');
    return this.refuse(msg, new VpfError(Errno.EBUSY, `vpfd could not program the bridge: ${(e as Error).message}`));
  }

  /** One request -> its replies (NLMSG_ERROR ack/error, or dump parts + NLMSG_DONE). */
  async handle(msg: NlMessage): Promise<Buffer[]> {
    const fail = (e: VpfError) => this.refuse(msg, e);
    if (this.rateLimited()) return fail(new VpfError(Errno.EBUSY, 'too many requests from this VM; slow down'));
    if (msg.type >= Rtm.NEWLINK && msg.type <= Rtm.SETLINK) return this.handleLink(msg);
    if (this.mode === 'legacy') {
      // In legacy mode the eswitch has no representors to attach filters to (mlx5 unloads them).
      return fail(new VpfError(Errno.EOPNOTSUPP, 'the eswitch is in legacy mode: no representors to offload to (devlink dev eswitch set ... mode switchdev)'));
    }
    const d = decodeTcNlMessage(msg);
    if (!d.ok) return fail(d.error);
    const m = d.value;
    try {
      if (m.type === 'qdisc') {
        if (m.op === 'get') return [buildDone(msg.seq)];
        if (m.kind && m.kind !== 'clsact' && m.kind !== 'ingress') throw new VpfError(Errno.EOPNOTSUPP, `qdisc ${m.kind} cannot be offloaded on a representor`);
        this.checkDev(m.dev);
        // Deleting clsact destroys both blocks: their filters and chains.
        if (m.op === 'del') await this.change(() => this.dropBlocks(m.dev), 'qdisc del');
        return [buildError(msg, 0)];
      }
      if (m.type === 'chain') return await this.handleChain(msg, m);
      if (m.op === 'get') return isDump(msg) ? await this.dumpFilters(msg, m.sel) : await this.getFilter(msg, m.sel);
      await this.change(() => this.filterChange(m, msg.flags), `filter ${m.op}`);
      return [buildError(msg, 0)];
    } catch (e) {
      return this.installFailed(msg, e);
    }
  }

  /** A filter add/replace/change or delete applied to the rule table (no install): cls_api.c's checks, in its order. */
  private filterChange(m: TcMessage, flags: number): void {
    if (m.type === 'filter' && m.op === 'new') this.addRule(m.rule, flags);
    else if (m.type === 'filter' && m.op === 'del') this.deleteFilters(m.sel);
    else throw new Error('not a filter change');
  }

  /** The reply header of a request: the kernel addresses every reply to the requester (answer() stamps the port id). */
  private replyHdr(msg: NlMessage, type: number, flags: number): NlHeader {
    return { type, flags, seq: msg.seq, pid: msg.pid };
  }

  /** tc_dump_tfilter: one block's chains in creation order, each tcf_proto (prio ascending) as its bare entry then its filters by handle. */
  private async dumpFilters(msg: NlMessage, sel: FilterSelector): Promise<Buffer[]> {
    // No device (ifindex 0), or parent 0 (the root qdisc, which holds no filter block here): an empty dump.
    if (!sel.dev || msg.payload.readUInt32LE(12) === 0) return [buildDone(msg.seq)];
    const table = this.rulesTable();
    const stats = await this.stats();
    const hdr = this.replyHdr(msg, Rtm.NEWTFILTER, NlmF.MULTI);
    const out: Buffer[] = [];
    for (const chain of table.shownChains(sel)) {
      if (sel.chain !== undefined && sel.chain !== chain) continue;
      for (const tp of table.protos(sel, chain)) {
        // tcf_chain_dump filters by tcm_info (prio, protocol) only: the handle and kind of the request are ignored.
        if ((sel.prio && sel.prio !== tp.prio) || (sel.protocol && sel.protocol !== tp.protocol)) continue;
        out.push(encodeFilterHead({ dev: sel.dev, direction: sel.direction, chain, prio: tp.prio, protocol: tp.protocol }, hdr));
        for (const e of tp.rules) out.push(encodeFilterDump(e.rule, stats.get(e.id) ?? zeroStats(), hdr, undefined, { actionIndex: e.actIndex }));
      }
    }
    out.push(buildDone(msg.seq));
    return out;
  }

  /** tc_get_tfilter: one filter, answered with the request's flags as tfilter_notify(unicast) fills it. */
  private async getFilter(msg: NlMessage, sel: FilterSelector): Promise<Buffer[]> {
    if (!sel.prio) throw new VpfError(Errno.ENOENT, 'Invalid filter command with priority of zero');
    this.checkDev(sel.dev);
    const table = this.rulesTable();
    const chain = sel.chain ?? 0;
    if (table.chainState(sel, chain) === 'none') throw new VpfError(Errno.EINVAL, 'Cannot find specified filter chain');
    const e = this.findProto(sel, chain).byHandle(sel.handle);
    if (!e) throw new VpfError(Errno.ENOENT, 'Specified filter handle not found');
    const stats = await this.stats();
    return [encodeFilterDump(e.rule, stats.get(e.id) ?? zeroStats(), this.replyHdr(msg, Rtm.NEWTFILTER, msg.flags), undefined, { actionIndex: e.actIndex })];
  }

  /** tcf_chain_tp_find for a delete or get: the tcf_proto at the selector's prio, checked against its protocol and kind. */
  private findProto(sel: FilterSelector, chain: number): { rules: readonly RuleEntry[]; byHandle(h: number): RuleEntry | undefined } {
    const table = this.rulesTable();
    const at = { dev: sel.dev, direction: sel.direction, chain, prio: sel.prio };
    const rules = table.atPrio(at);
    if (!rules.length) throw new VpfError(Errno.ENOENT, 'Filter with specified priority/protocol not found');
    if (sel.protocol && rules[0]!.rule.protocol !== sel.protocol) throw new VpfError(Errno.EINVAL, 'Filter with specified priority/protocol not found');
    if (sel.kind !== undefined && sel.kind !== 'flower') throw new VpfError(Errno.EINVAL, 'Specified filter kind does not match existing one');
    return { rules, byHandle: (h) => (h ? table.byHandle(at, h) : undefined) };
  }

  /** tc_ctl_chain and tc_dump_chain: chains created by `tc chain add`, by filters, or held by goto actions only (not shown). */
  private async handleChain(msg: NlMessage, m: Extract<TcMessage, { type: 'chain' }>): Promise<Buffer[]> {
    const table = this.rulesTable();
    const block = { dev: m.dev, direction: m.direction };
    if (m.op === 'get' && isDump(msg)) {
      if (!m.dev || msg.payload.readUInt32LE(12) === 0) return [buildDone(msg.seq)];
      const hdr = this.replyHdr(msg, Rtm.NEWCHAIN, NlmF.MULTI);
      const shown = table.shownChains(block).filter((c) => m.chain === undefined || c === m.chain);
      return [...shown.map((chain) => encodeChainReply({ ...block, chain }, hdr)), buildDone(msg.seq)];
    }
    this.checkDev(m.dev);
    const chain = m.chain ?? 0;
    const state = table.chainState(block, chain);
    if (m.op === 'new') {
      if (state === 'shown') throw new VpfError(Errno.EEXIST, 'Filter chain already exists');
      if (state === 'none' && !(msg.flags & NlmF.CREATE)) throw new VpfError(Errno.ENOENT, 'Need both RTM_NEWCHAIN and NLM_F_CREATE to create a new chain');
      await this.change(() => this.rulesTable().setExplicit(block, chain, true), 'chain add');
      return [buildError(msg, 0)];
    }
    if (state !== 'shown') throw new VpfError(Errno.EINVAL, 'Cannot find specified filter chain');
    // RTM_GETCHAIN is answered as tc_chain_notify(unicast) fills it: the request's type and flags.
    if (m.op === 'get') return [encodeChainReply({ ...block, chain }, this.replyHdr(msg, Rtm.GETCHAIN, msg.flags))];
    // RTM_DELCHAIN flushes the chain, then drops the reference `tc chain add` took.
    await this.change(() => {
      this.deleteWhere((r) => r.dev === m.dev && r.direction === m.direction && r.chain === chain);
      this.rulesTable().setExplicit(block, chain, false);
    }, 'chain del');
    return [buildError(msg, 0)];
  }

  // --- legacy path: VF settings (rtnetlink) and eswitch mode (devlink) ---

  private async handleLink(msg: NlMessage): Promise<Buffer[]> {
    const fail = (e: VpfError) => this.refuse(msg, e);
    const d = decodeLinkRequest(msg);
    if (!d.ok) return fail(d.error);
    const m = d.value;
    try {
      if (m.op === 'get') {
        // rtnl_getlink / rtnl_dump_ifinfo over every netdev of the channel (the PF and each VF's representor).
        const links = m.dump ? channelLinks(this.rec.vfs) : [lookupLink(this.rec.vfs, { ...(m.name === undefined ? { ifindex: m.ifindex } : { name: m.name }) })];
        // rtnl_getlink answers a device it lacks with a bare -ENODEV (no extack).
        if (!links[0]) return [buildError(msg, Errno.ENODEV)];
        const pfOpts = { extMask: m.extMask, vfs: this.vfSettings(), stats: await this.vfStats() };
        const hdr = { seq: msg.seq, pid: msg.pid, flags: m.dump ? NlmF.MULTI : 0 };
        const replies = links.map((l) => encodeLinkReply(hdr, l!, l!.ifindex === PF_IFINDEX ? pfOpts : { extMask: m.extMask }));
        return m.dump ? [...replies, buildDone(msg.seq)] : replies;
      }
      if (m.op === 'rxmode') {
        if (m.vf >= this.rec.vfs) throw new VpfError(Errno.ENODEV, `no vf${m.vf} on this VM`);
        await this.changeVfs((all) => {
          const s = all[m.vf]!;
          if (m.promisc !== undefined) s.promisc = m.promisc;
          if (m.allmulti !== undefined) s.allmulti = m.allmulti;
        }, 'vf rx mode');
        return [buildError(msg, 0)];
      }
      // setvf: do_setvfinfo per IFLA_VF_INFO, stopping at the first error with what came before applied.
      let error: VpfError | undefined;
      await this.changeVfs(async (all) => {
        for (const req of m.requests) {
          if (this.opts.vfBackend) {
            const answer = await this.opts.vfBackend.apply(req);
            if (answer.errno) {
              error = new VpfError(answer.errno, answer.message ?? '');
              return;
            }
          }
          const r = applyVfRequest(all[req.vf] ?? defaultVfSettings(), req, {
            numVfs: this.rec.vfs,
            mode: this.mode,
            emulate8021ad: true,
            // translator/legacy.ts legacySupport: the bridge has no egress queues to guarantee a rate; a host NIC may.
            minTxRateSupported: !!this.opts.vfBackend,
            rssQuerySupported: !!this.opts.vfBackend,
          });
          if (req.vf < all.length) all[req.vf] = r.settings;
          if ('error' in r) {
            error = r.error;
            return;
          }
        }
      }, 'vf settings');
      if (error) {
        // A host kernel's bare errno goes back as it came: no extack of ours.
        if (!error.message) return [buildError(msg, error.errno)];
        return fail(error);
      }
      return [buildError(msg, 0)];
    } catch (e) {
      return this.installFailed(msg, e);
    }
  }

  /** Edits the VF settings, then makes them durable and (in legacy mode) installed before the ack. */
  private async changeVfs(edit: (all: VfSettings[]) => void | Promise<void>, what: string): Promise<void> {
    const all = this.vfSettings().map((s) => ({ ...s }));
    await edit(all);
    if (JSON.stringify(all) === JSON.stringify(this.vfSettings())) return;
    this.rec.vfSettings = all;
    this.legacyT = undefined;
    this.sw = undefined;
    this.journal.append(this.rec, { upsert: [], removed: [], nextRuleId: this.rec.nextRuleId, vfSettings: all });
    // max_tx_rate polices in switchdev mode too (mlx5 rates work in both modes); nothing else changes its flows.
    await this.reconcileNow(what);
  }

  /** IFLA_VF_STATS from the bridge: port counters (VF tx = what the bridge received from it) and the ACL drop flows. */
  private async vfStats(): Promise<VfStats[]> {
    const ports = await this.installer.portStats();
    const flows = this.mode === 'legacy' ? await this.installer.dump() : [];
    const packets = new Map(flows.map((f) => [f.cookie, f.packets]));
    const sum = (cookies: bigint[] | undefined) => BigInt(cookies?.reduce((n, c) => n + (packets.get(c) ?? 0), 0) ?? 0);
    const perVf = this.mode === 'legacy' ? this.legacy().perVf : [];
    return this.rec.ports.vfs.map((p, n) => {
      const st = ports.get(p.port);
      const drops = perVf.find((v) => v.vf === n);
      return {
        rxPackets: BigInt(st?.txPackets ?? 0),
        txPackets: BigInt(st?.rxPackets ?? 0),
        rxBytes: BigInt(st?.txBytes ?? 0),
        txBytes: BigInt(st?.rxBytes ?? 0),
        broadcast: 0n,
        multicast: 0n,
        rxDropped: sum(drops?.rxDropCookies),
        txDropped: sum(drops?.txDropCookies),
      };
    });
  }

  /** Generic netlink: the devlink family lookup and eswitch mode get/set (docs/protocol.md). */
  private async handleGenl(msg: NlMessage): Promise<Buffer[]> {
    const d = decodeDevlinkRequest(msg);
    if (!d.ok) return this.refuse(msg, d.error);
    const m = d.value;
    const hdr = { seq: msg.seq };
    try {
      switch (m.cmd) {
        case 'getfamily':
          return [encodeFamilyReply(hdr)];
        case 'get': {
          // One devlink instance per channel; the guest names it by its own PCI address, which we echo.
          const h = m.handle ?? { bus: 'pci', dev: '0000:00:00.0' };
          return m.dump ? [encodeDevReply({ seq: msg.seq, flags: NlmF.MULTI }, h), buildDone(msg.seq)] : [encodeDevReply(hdr, h)];
        }
        case 'eswitch-get':
          return [encodeEswitchReply(hdr, m, { mode: this.mode, inlineMode: 'none', encapMode: 'basic' })];
        case 'eswitch-set':
          if (m.inlineMode !== undefined && m.inlineMode !== 'none') throw new VpfError(Errno.EOPNOTSUPP, 'inline mode cannot be changed: the bridge sees whole packets');
          if (m.mode) await this.setMode(m.mode);
          return [buildError(msg, 0)];
      }
    } catch (e) {
      return this.installFailed(msg, e);
    }
  }

  /**
   * devlink eswitch mode, as mlx5 switches it: VF settings are kept (link state
   * back to auto on entering legacy, esw_legacy_enable), the offloaded rules are
   * dropped, and the old flow set leaves in the same bundle the new one arrives in.
   */
  private async setMode(mode: 'legacy' | 'switchdev'): Promise<void> {
    if (mode === this.mode) return;
    const from = this.mode;
    this.rec.mode = mode;
    this.rec.rules = [];
    this.rec.chains = [];
    this.rec.layout = [];
    this.table = undefined;
    this.sw = undefined;
    this.legacyT = undefined;
    if (mode === 'legacy') this.rec.vfSettings = this.vfSettings().map((s) => ({ ...s, linkState: 'auto' as const }));
    this.journal.save(this.rec);
    this.log.info({ vm: this.rec.name, from, to: mode }, 'eswitch mode changed');
    await this.reconcileNow(`eswitch ${mode}`);
  }

  private checkDev(dev: string): void {
    if (!portPair(this.rec.ports, dev)) throw new VpfError(Errno.ENODEV, `Cannot find device "${dev}"`);
  }

  /** Applies a state change: translate, refuse what the translator refuses, install, persist, then ack. */
  private async change(edit: () => number | void, what: string): Promise<number> {
    // Edits go to the rule table and come back as a new array: the current one is the undo snapshot.
    const before = this.snapshot();
    const undo = () => this.undoTo(before);
    let res: number;
    try {
      res = edit() ?? 0;
    } catch (e) {
      undo();
      throw e;
    }
    this.syncRecord();
    const plan = this.plan();
    const refused = this.refusedChange(plan);
    if (refused) {
      undo();
      throw refused;
    }
    const count = this.planCount(plan);
    if (count > this.quotas.flowsPerVm) {
      undo();
      throw new VpfError(Errno.ENOSPC, `this VM's rules would need ${count} flows, more than its quota of ${this.quotas.flowsPerVm}`);
    }
    await this.commit(plan, what);
    return res;
  }

  /** The translator's refusal of a rule this change added or replaced (the others were accepted before). */
  private refusedChange(p: Plan): VpfError | undefined {
    for (const e of this.rulesTable().changed()) {
      const r = this.planResult(p, e);
      if (r?.refused) return r.error;
    }
    return undefined;
  }

  /** Makes a translated change durable (one journal line), then installs it: the ack waits for both. */
  private async commit(p: Plan, what: string): Promise<void> {
    const table = this.rulesTable();
    if (p.t) this.rec.layout = [...p.t.tables];
    // The layout changes only when a (chain, prio) comes or goes: log it then, not with every rule.
    const layout = JSON.stringify(this.rec.layout);
    const layoutChanged = layout !== this.loggedLayout;
    this.loggedLayout = layout;
    const diff = p.groups && this.sw!.replace(p.groups, table.removedIds());
    this.journal.append(this.rec, { ...table.takeChanges(), nextRuleId: this.rec.nextRuleId, ...(layoutChanged ? { layout: this.rec.layout } : {}) });
    if (diff) {
      await this.applyDiff(diff, what);
      return;
    }
    this.sw = DesiredFlows.of(p.t!, this.rec.rules);
    await this.reconcileNow(what);
  }

  /** The rules as an index for edits; rebuilt from rec.rules after an undo. */
  private rulesTable(): RuleTable {
    return (this.table ??= new RuleTable(this.rec.rules, this.rec.chains ?? []));
  }

  /** The record after an edit of the table (rules in install order, chains in creation order). */
  private syncRecord(): void {
    const table = this.rulesTable();
    this.rec.rules = table.toArray();
    this.rec.chains = table.chainList();
  }

  private snapshot(): Undo {
    return { rules: this.rec.rules, chains: this.rec.chains, nextRuleId: this.rec.nextRuleId };
  }

  private undoTo(before: Undo): void {
    this.rec.rules = before.rules;
    this.rec.chains = before.chains;
    this.rec.nextRuleId = before.nextRuleId;
    this.table = undefined;
  }

  /** cls_api.c tc_new_tfilter, its checks in its order, then fl_change: a new filter, or the one at that handle changed. */
  private addRule(rule: FlowerRule, flags: number): void {
    this.checkDev(rule.dev);
    for (const a of rule.actions) if (a.kind === 'mirred') this.checkDev(a.dev);
    const table = this.rulesTable();
    const create = (flags & NlmF.CREATE) !== 0;
    const allocate = !rule.prio;
    if (allocate && !create) throw new VpfError(Errno.ENOENT, 'Invalid filter command with priority of zero');
    // tcf_chain_tp_find: an allocated prio looks at 0x8000 (which must be free); a given one must hold the same protocol.
    const tp = table.atPrio({ ...rule, prio: allocate ? ALLOC_PRIO : rule.prio })[0];
    if (tp && (allocate || (rule.protocol && tp.rule.protocol !== rule.protocol))) throw new VpfError(Errno.EINVAL, 'Filter with specified priority/protocol not found');
    if (!tp) {
      if (!rule.protocol) throw new VpfError(Errno.EINVAL, 'Filter kind and protocol must be specified');
      if (!create) throw new VpfError(Errno.ENOENT, 'Need both RTM_NEWTFILTER and NLM_F_CREATE to create a new filter');
      if (allocate) {
        const above = table.prios(rule).filter((p) => p > ALLOC_PRIO);
        rule.prio = above.length ? Math.min(...above) - 1 : AUTO_PRIO;
      }
    }
    const existing = rule.handle ? table.byHandle(rule, rule.handle) : undefined;
    if (!existing && !create) throw new VpfError(Errno.ENOENT, 'Need both RTM_NEWTFILTER and NLM_F_CREATE to create a new filter');
    if (existing && flags & NlmF.EXCL) throw new VpfError(Errno.EEXIST, 'Filter already exists');
    if (existing) {
      // The new actions are allocated while the old filter still holds its own (fl_change, then the old one is freed).
      table.replace(existing, { id: existing.id, rule, installedAt: Date.now(), actIndex: table.allocActions(rule) });
      return;
    }
    if (table.size >= this.quotas.rulesPerVm) throw new VpfError(Errno.ENOSPC, `this VM already has ${this.quotas.rulesPerVm} filters (its quota)`);
    if (!rule.handle) rule.handle = table.freeHandle(rule);
    table.push({ id: this.rec.nextRuleId++, rule, installedAt: Date.now(), actIndex: table.allocActions(rule) });
  }

  /** cls_api.c tc_del_tfilter: a flush of a chain (prio 0), a whole tcf_proto (handle 0), or one filter. */
  private deleteFilters(sel: FilterSelector): void {
    if (!sel.prio && (sel.protocol || sel.handle || sel.kind !== undefined)) throw new VpfError(Errno.ENOENT, 'Cannot flush filters with protocol, handle or kind set');
    this.checkDev(sel.dev);
    const table = this.rulesTable();
    // Without TCA_CHAIN the request names chain 0, as every tc command does.
    const chain = sel.chain ?? 0;
    if (table.chainState(sel, chain) === 'none') {
      // "User requested flush on non-existent chain. Nothing to do."
      if (!sel.prio) return;
      throw new VpfError(Errno.ENOENT, 'Cannot find specified filter chain');
    }
    if (!sel.prio) {
      this.deleteWhere((r) => r.dev === sel.dev && r.direction === sel.direction && r.chain === chain);
      return;
    }
    const tp = this.findProto(sel, chain);
    if (!sel.handle) {
      for (const e of tp.rules.slice()) table.remove(e);
      return;
    }
    const e = tp.byHandle(sel.handle);
    if (!e) throw new VpfError(Errno.ENOENT, 'Specified filter handle not found');
    table.remove(e);
  }

  /** Deleting a representor's clsact: both of its blocks go, with their filters and chains. */
  private dropBlocks(dev: string): void {
    const table = this.rulesTable();
    this.deleteWhere((r) => r.dev === dev);
    for (const c of table.chainList()) if (c.dev === dev) table.setExplicit(c, c.chain, false);
  }

  private deleteWhere(pred: (r: FlowerRule) => boolean): number {
    const table = this.rulesTable();
    const doomed = table.toArray().filter(({ rule }) => pred(rule));
    for (const e of doomed) table.remove(e);
    return doomed.length;
  }

  /** Per-rule counters: the sum over the rule's flows, bytes as tc counts them. */
  async stats(installed?: InstalledFlow[]): Promise<Map<number, FilterStats>> {
    const flows = installed ?? (await this.installer.dump());
    const t = this.switchdev();
    const out = new Map<number, FilterStats>();
    const now = Date.now();
    for (const { id, installedAt } of this.rec.rules) {
      const r = t.perRule.get(id);
      out.set(id, { ...zeroStats(), installedMs: now - installedAt, lastUsedMs: now - installedAt, inHw: !!r?.offloaded, inHwCount: r?.offloaded ? 1 : 0 });
    }
    for (const f of flows) {
      const id = cookieRuleId(f.cookie);
      const s = out.get(id);
      if (!s || cookieKind(f.cookie) === FlowKind.DEFAULT || !f.packets) continue;
      s.packets += f.packets;
      s.bytes += Math.max(0, f.bytes - L2_HEADER * f.packets);
      s.lastUsedMs = Math.min(s.lastUsedMs, f.idleAgeSec * 1000);
    }
    const hardware = await this.hardwareFacts();
    for (const [id, s] of out) {
      if (!hardware) {
        // No NIC to ask (userspace datapath, hw-offload off): in_hw says the rule's flows are all forms OVS's tc offload takes.
        if (s.inHw) s.hw = { packets: s.packets, bytes: s.bytes };
        continue;
      }
      // A rule is in hardware while none of the datapath flows through it stayed in software; its hardware counters are the tc flows'.
      const h = hardware.get(id);
      if (h?.softwareFlows) s.inHw = false;
      s.inHwCount = s.inHw ? 1 : 0;
      // The OpenFlow counters hold tc's bytes (no L2 header) for packets tc handled: the header was taken off them once too often.
      // (Exact once OVS's revalidator has pushed tc's counters into them; until then it runs ahead by those packets' 14 bytes.)
      if (h) s.bytes += L2_HEADER * Math.min(h.tcPackets, s.packets);
      if (!s.inHw) continue;
      // TCA_STATS_BASIC_HW only for a filter in hardware (a not_in_hw one has none); tc's own counters, already without L2.
      s.hw = { packets: h?.packets ?? 0, bytes: h?.bytes ?? 0 };
      // The total is never below its hardware part: tc prints software = total - hardware, unsigned.
      s.packets = Math.max(s.packets, s.hw.packets);
      s.bytes = Math.max(s.bytes, s.hw.bytes);
    }
    return out;
  }

  /** The datapath's word on this VM's rules; undefined when there is none to ask or it cannot be read now. */
  private async hardwareFacts(): Promise<Map<number, RuleHardware> | undefined> {
    if (!this.opts.hardware) return undefined;
    try {
      return await this.opts.hardware();
    } catch (e) {
      this.log.warn({ vm: this.rec.name, err: e }, 'datapath flows unreadable; in_hw falls back to what the translator offloads');
      return undefined;
    }
  }

  async rules(): Promise<RuleView[]> {
    const stats = await this.stats();
    const t = this.switchdev();
    return this.rec.rules.map(({ id, rule }) => ({
      id,
      rule,
      stats: stats.get(id)!,
      ...(t.perRule.get(id)?.error ? { notOffloadedReason: t.perRule.get(id)!.error!.message } : {}),
    }));
  }

  async explain(): Promise<ExplainReport> {
    const installed = await this.installer.dump();
    const stats = await this.stats(installed);
    const t = this.switchdev();
    const view = (f: InstalledFlow) => ({
      line: flowLine({ table: f.table, priority: f.priority, cookie: f.cookie, match: f.match, actions: f.actions }),
      cookie: `0x${f.cookie.toString(16)}`,
      kind: cookieKindName(f.cookie),
      packets: f.packets,
      bytes: f.bytes,
    });
    return {
      vm: this.rec.name,
      bridge: this.bridge,
      rules: this.rec.rules.map(({ id, rule }) => ({
        id,
        rule,
        tc: printable(rule),
        stats: stats.get(id)!,
        ...(t.perRule.get(id)?.error ? { notOffloadedReason: t.perRule.get(id)!.error!.message } : {}),
        flows: installed.filter((f) => cookieKind(f.cookie) !== FlowKind.DEFAULT && cookieRuleId(f.cookie) === id).map(view),
      })),
      other: installed.filter((f) => cookieKind(f.cookie) === FlowKind.DEFAULT || !this.rec.rules.some((r) => r.id === cookieRuleId(f.cookie))).map(view),
    };
  }
}

/** Filter adds and deletes can share a commit; everything else (dumps, qdiscs, chains) runs on its own. */
function isFilterChange(msg: NlMessage): boolean {
  return msg.type === Rtm.NEWTFILTER || msg.type === Rtm.DELTFILTER;
}

function pidOf(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function printable(rule: FlowerRule): string {
  try {
    return printFilter(rule).join(' ');
  } catch {
    return JSON.stringify(rule);
  }
}

function zeroStats(): FilterStats {
  return { packets: 0, bytes: 0, lastUsedMs: 0, installedMs: 0, drops: 0, inHw: false, inHwCount: 0 };
}

/** rtnetlink_rcv_msg: a GET with either NLM_F_DUMP bit is a dump. */
function isDump(msg: NlMessage): boolean {
  return (msg.flags & NlmF.DUMP) !== 0;
}

