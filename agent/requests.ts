// A VM's guest requests: decode, rate limit, dispatch to the part that owns the
// state (FilterTable, VfState), and reply as the kernel replies. Every change,
// a single request or a pipelined batch, goes through one transaction path
// (run): apply the edits in order, translate once, then refuse and roll back,
// or journal and install, and only then acknowledge.
import type { Logger } from 'pino';
import { Errno, VpfError } from '../rules/errors.js';
import { buildDone, buildError, NlmF, Rtm, type NlMessage } from '../rules/netlink/nlmsg.js';
import { decodeTcNlMessage, type TcMessage } from '../rules/netlink/tc.js';
import { decodeActionRequest, isActionMessage } from '../rules/netlink/tcaction.js';
import { channelLinks, decodeLinkRequest, encodeLinkReply, lookupLink, PF_IFINDEX } from '../rules/netlink/link.js';
import { decodeDevlinkRequest, encodeDevReply, encodeEswitchReply, encodeFamilyReply } from '../rules/netlink/devlink.js';
import type { VfSettings } from '../rules/vf.js';
import type { FlowerRule } from '../rules/model.js';
import type { Quotas } from './config.js';
import { isDump, type FilterTable } from './filters.js';
import type { FlowSync } from './flowsync.js';
import type { Journal } from './journal.js';
import type { Metrics } from './metrics.js';
import type { VmRecord } from './records.js';
import type { EswitchMode, VfState } from './vfstate.js';
import type { VmViews } from './views.js';

/** One request's change of the filter table; throws the kernel's refusal having changed nothing. */
export type Edit = () => void;

/** A request of a transaction: its message and its edit. */
interface Change {
  msg: NlMessage;
  edit: Edit;
}

/** What one VM's requests need: its record and parts, and where to report. */
export interface RequestDeps {
  rec: VmRecord;
  filters: FilterTable;
  vf: VfState;
  sync: FlowSync;
  views: VmViews;
  journal: Journal;
  quotas: Quotas;
  metrics: Metrics;
  log: Logger;
  /** OVS's state is unknown after a failure: reinstall (queued behind the current request). */
  resync(): void;
}

/** Filter adds and deletes can share a commit; everything else (dumps, qdiscs, chains) runs on its own. */
export function isFilterChange(msg: NlMessage): boolean {
  return msg.type === Rtm.NEWTFILTER || msg.type === Rtm.DELTFILTER;
}

export class GuestRequests {
  private msgWindow = { start: Date.now(), n: 0 };

  constructor(private readonly d: RequestDeps) {}

  /** One NETLINK_ROUTE request -> its replies (NLMSG_ERROR ack/error, or dump parts + NLMSG_DONE). */
  async handle(msg: NlMessage): Promise<Buffer[]> {
    const early = this.admit(msg);
    if (early) return early;
    if (msg.type >= Rtm.NEWLINK && msg.type <= Rtm.SETLINK) return this.handleLink(msg);
    if (isActionMessage(msg.type)) return this.handleAction(msg);
    const d = this.decodeTc(msg);
    if (!('value' in d)) return d.refusal;
    const m = d.value;
    if (m.type === 'filter' && m.op !== 'get') {
      const reply = (await this.run([{ msg, edit: this.filterEdit(msg, m) }], `filter ${m.op}`))[0]!;
      return m.op === 'new' && msg.flags & NlmF.ECHO && isAck(reply) ? [...(await this.echoFilter(msg, m.rule)), ...reply] : reply;
    }
    try {
      if (m.type === 'qdisc') {
        if (m.op === 'get') return [buildDone(msg.seq)];
        // Deleting clsact destroys both blocks: their filters and chains.
        if (this.d.filters.qdisc(m)) return (await this.run([{ msg, edit: () => this.d.filters.dropBlocks(m.dev) }], 'qdisc del'))[0]!;
        return [buildError(msg, 0)];
      }
      if (m.type === 'chain') {
        if (m.op === 'get') return this.d.filters.chainGet(msg, m);
        return (await this.run([{ msg, edit: () => this.d.filters.chainChange(m, msg.flags) }], `chain ${m.op === 'new' ? 'add' : 'del'}`))[0]!;
      }
      if (isDump(msg)) return this.d.filters.dumpable(msg, m.sel) ? this.d.filters.dump(msg, m.sel, await this.d.views.stats()) : [buildDone(msg.seq)];
      const e = this.d.filters.find(m.sel);
      // Every filter's stats: a shared police's last use is the newest over the filters bound to it.
      const stats = await this.d.views.stats();
      return this.d.filters.encodeGot(msg, e, stats.get(e.id), stats);
    } catch (e) {
      return this.failed([msg], e)[0]!;
    }
  }

  /**
   * Pipelined filter adds and deletes committed as one transaction: each
   * request is admitted (rate limit, mode, decode) once and applied in order;
   * the replies come back in request order.
   */
  async handleBatch(msgs: NlMessage[]): Promise<Buffer[][]> {
    const replies: (Buffer[] | undefined)[] = [];
    const changes: Change[] = [];
    for (const msg of msgs) {
      const early = this.admit(msg);
      const d = early ? { refusal: early } : this.decodeTc(msg);
      if ('value' in d) changes.push({ msg, edit: this.filterEdit(msg, d.value) });
      replies.push('value' in d ? undefined : d.refusal);
    }
    const done = await this.run(changes, 'filter batch');
    let i = 0;
    return replies.map((r) => r ?? done[i++]!);
  }

  /**
   * The tc action API (shared police actions, docs/protocol.md): changes go
   * through the transaction path like filters (a replaced police retranslates
   * the filters bound to it), gets and dumps read the table.
   */
  private async handleAction(msg: NlMessage): Promise<Buffer[]> {
    const d = decodeActionRequest(msg);
    if (!d.ok) return this.refuse(msg, d.error);
    const m = d.value;
    try {
      if (m.op === 'get' || m.op === 'dump') {
        const c = await this.d.views.counters();
        return m.op === 'get' ? this.d.filters.actionGet(msg, m, c.rules, c.police) : this.d.filters.actionDump(msg, m, c.rules, c.police);
      }
      let warning: string | undefined;
      const [reply] = await this.run([{ msg, edit: () => void (warning = this.d.filters.actionChange(m)) }], `action ${m.op}`);
      // tca_action_flush that stopped at a bound action: the ACK carries the extack as a warning.
      return warning && isAck(reply!) ? [buildError(msg, 0, warning)] : reply!;
    } catch (e) {
      return this.failed([msg], e)[0]!;
    }
  }

  /**
   * NLM_F_ECHO on a filter add: the new filter as tfilter_notify sends it to
   * the requester, before the ACK (cls_api.c tc_new_tfilter). OVS's
   * tc_replace_flower asks for it and reads the prio and handle the filter
   * got from it. tcf_fill_node stamps it with the request's own flags; its
   * counters are a new filter's, so no dump is read unless a police (whose
   * counters are the shared action's) is among its actions.
   */
  private async echoFilter(msg: NlMessage, rule: FlowerRule): Promise<Buffer[]> {
    const { filters, views } = this.d;
    const e = filters.find({ dev: rule.dev, direction: rule.direction, chain: rule.chain, prio: rule.prio, protocol: rule.protocol, handle: rule.handle, kind: 'flower' });
    if (rule.actions.some((a) => a.kind === 'police')) {
      const all = await views.stats();
      return filters.encodeGot(msg, e, all.get(e.id), all);
    }
    return filters.encodeGot(msg, e, views.unused(e.id, e.installedAt));
  }

  /** The checks every NETLINK_ROUTE request passes first: the VM's message rate, and tc requests need switchdev mode. */
  private admit(msg: NlMessage): Buffer[] | undefined {
    if (this.rateLimited()) return this.refuse(msg, new VpfError(Errno.EBUSY, 'too many requests from this VM; slow down'));
    if (msg.type >= Rtm.NEWLINK && msg.type <= Rtm.SETLINK) return undefined;
    // In legacy mode the eswitch has no representors to attach filters to (mlx5 unloads them).
    if (this.d.vf.mode === 'legacy') return this.refuse(msg, new VpfError(Errno.EOPNOTSUPP, 'the eswitch is in legacy mode: no representors to offload to (devlink dev eswitch set ... mode switchdev)'));
    return undefined;
  }

  private decodeTc(msg: NlMessage): { value: TcMessage } | { refusal: Buffer[] } {
    const d = decodeTcNlMessage(msg);
    return d.ok ? { value: d.value } : { refusal: this.refuse(msg, d.error) };
  }

  /** A filter add or delete; run again (a batch retried one by one), it decodes anew: addRule fills in the prio and handle of the rule it is given. */
  private filterEdit(msg: NlMessage, m: TcMessage): Edit {
    let fresh: TcMessage | undefined = m;
    return () => {
      const cur = fresh ?? (decodeTcNlMessage(msg) as { value: TcMessage }).value;
      fresh = undefined;
      this.d.filters.filterChange(cur, msg.flags);
    };
  }

  /**
   * The transaction path. The edits are applied in order (a refused one
   * changes nothing), translated together, then either refused as a whole
   * (translator refusal or flow quota: rolled back) or journaled and installed,
   * then acknowledged. A refused transaction of several requests is retried
   * one request at a time, so only the culprit is refused.
   */
  private async run(changes: Change[], what: string): Promise<Buffer[][]> {
    if (!changes.length) return [];
    let out: (VpfError | undefined)[];
    try {
      out = await this.transact(changes.map((c) => c.edit), what);
    } catch (e) {
      return this.failed(changes.map((c) => c.msg), e);
    }
    if (out === RETRY) {
      const replies: Buffer[][] = [];
      for (const c of changes) replies.push(...(await this.run([c], what)));
      return replies;
    }
    return changes.map(({ msg }, i) => (out[i] ? this.refuse(msg, out[i]!) : [buildError(msg, 0)]));
  }

  /** Applies, translates, refuses or commits; RETRY when several edits were refused together. */
  private async transact(edits: Edit[], what: string): Promise<(VpfError | undefined)[]> {
    const { filters, sync } = this.d;
    const before = filters.snapshot();
    const out = edits.map((edit) => {
      try {
        edit();
        return undefined;
      } catch (e) {
        if (e instanceof VpfError) return e;
        filters.rollback(before);
        throw e;
      }
    });
    if (out.every((e) => e)) return out;
    filters.sync();
    const plan = sync.plan(filters.table);
    const refused = sync.refusal(plan, filters.table, this.d.quotas.flowsPerVm);
    if (refused) {
      filters.rollback(before);
      return edits.length === 1 ? [refused] : RETRY;
    }
    const changed = [...filters.table.changed()].map((e) => e.id);
    await sync.commit(plan, filters.table, what);
    // OVS refused a skip_sw filter's flow during the install (flowsync.ts): a NIC refuses a skip_sw
    // filter it cannot hold, so the change is undone, on disk too, and refused.
    const late = changed.map((id) => sync.result(id)).find((r) => r?.refused)?.error;
    if (late) {
      filters.rollback(before);
      sync.desiredChanged();
      this.d.journal.save(this.d.rec);
      await sync.reconcile(`${what} undone`);
      return edits.length === 1 ? [late] : RETRY;
    }
    return out;
  }

  /** Requests whose change failed past the state (install, journal): refused; an unknown bridge state is reinstalled. */
  private failed(msgs: NlMessage[], e: unknown): Buffer[][] {
    if (e instanceof VpfError) return msgs.map((msg) => this.refuse(msg, e));
    this.d.log.error({ vm: this.d.rec.name, err: e }, 'request failed; state unknown, reconciling');
    this.d.resync();
    const busy = new VpfError(Errno.EBUSY, `vpfd could not program the bridge: ${(e as Error).message}`);
    return msgs.map((msg) => this.refuse(msg, busy));
  }

  private rateLimited(): boolean {
    const now = Date.now();
    if (now - this.msgWindow.start >= 1000) this.msgWindow = { start: now, n: 0 };
    return ++this.msgWindow.n > this.d.quotas.msgsPerSec;
  }

  /** A refusal: counted, logged (one line) and answered with errno and extack. */
  private refuse(msg: NlMessage, e: VpfError): Buffer[] {
    this.d.metrics.inc('vpf_channel_errors_total', { vm: this.d.rec.name, errno: e.errnoName }, 1, 'Guest requests refused, by errno');
    this.d.log.info({ vm: this.d.rec.name, errno: e.errnoName, cause: e.message || `${e.errnoName} at ${e.attr ?? 'the request'} (a bare errno, as the kernel answers)`, type: msg.type, seq: msg.seq }, 'guest request refused');
    return [buildError(msg, e.errno, e.message)];
  }

  // --- VF settings (rtnetlink) and eswitch mode (devlink) ---

  private async handleLink(msg: NlMessage): Promise<Buffer[]> {
    const d = decodeLinkRequest(msg);
    if (!d.ok) return this.refuse(msg, d.error);
    const m = d.value;
    const { vf, rec } = this.d;
    try {
      if (m.op === 'get') {
        // rtnl_getlink / rtnl_dump_ifinfo over every netdev of the channel (the PF and each VF's representor).
        const links = m.dump ? channelLinks(rec.vfs) : [lookupLink(rec.vfs, { ...(m.name === undefined ? { ifindex: m.ifindex } : { name: m.name }) })];
        // rtnl_getlink answers a device it lacks with a bare -ENODEV (no extack).
        if (!links[0]) return [buildError(msg, Errno.ENODEV)];
        const pfOpts = { extMask: m.extMask, vfs: vf.settings(), stats: await this.d.views.vfStats() };
        const hdr = { seq: msg.seq, pid: msg.pid, flags: m.dump ? NlmF.MULTI : 0 };
        const replies = links.map((l) => encodeLinkReply(hdr, l!, l!.ifindex === PF_IFINDEX ? pfOpts : { extMask: m.extMask }));
        return m.dump ? [...replies, buildDone(msg.seq)] : replies;
      }
      if (m.op === 'rxmode') {
        const r = vf.rxMode(m.vf, m);
        if (r.settings) await this.vfsChanged(r.settings, 'vf rx mode');
        return [buildError(msg, 0)];
      }
      const r = await vf.setVf(m.requests);
      if (r.settings) await this.vfsChanged(r.settings, 'vf settings');
      // A host kernel's bare errno goes back as it came: no extack of ours.
      if (r.error && !r.error.message) return [buildError(msg, r.error.errno)];
      if (r.error) return this.refuse(msg, r.error);
      return [buildError(msg, 0)];
    } catch (e) {
      return this.failed([msg], e)[0]!;
    }
  }

  /** New VF settings: durable, then installed before the ack (max_tx_rate polices in switchdev mode too, as mlx5 rates do). */
  private async vfsChanged(all: VfSettings[], what: string): Promise<void> {
    this.d.sync.desiredChanged();
    await this.d.journal.append(this.d.rec, { upsert: [], removed: [], nextRuleId: this.d.rec.nextRuleId, vfSettings: all });
    await this.d.sync.reconcile(what);
  }

  /** Generic netlink: the devlink family lookup and eswitch mode get/set (docs/protocol.md). */
  async handleGenl(msg: NlMessage): Promise<Buffer[]> {
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
          return [encodeEswitchReply(hdr, m, { mode: this.d.vf.mode, inlineMode: 'none', encapMode: 'basic' })];
        case 'eswitch-set':
          if (m.inlineMode !== undefined && m.inlineMode !== 'none') throw new VpfError(Errno.EOPNOTSUPP, 'inline mode cannot be changed: the bridge sees whole packets');
          if (m.mode) await this.setMode(m.mode);
          return [buildError(msg, 0)];
      }
    } catch (e) {
      return this.failed([msg], e)[0]!;
    }
  }

  /** mlx5 switching eswitch mode: the offloaded rules are dropped, and the old flow set leaves in the bundle the new one arrives in. */
  private async setMode(mode: EswitchMode): Promise<void> {
    const from = this.d.vf.mode;
    if (!this.d.vf.setMode(mode)) return;
    this.d.filters.clear();
    this.d.sync.rulesCleared();
    this.d.journal.save(this.d.rec);
    this.d.log.info({ vm: this.d.rec.name, from, to: mode }, 'eswitch mode changed');
    await this.d.sync.reconcile(`eswitch ${mode}`);
  }
}

/** A reply that is one ACK (NLMSG_ERROR with error 0). */
const isAck = (reply: Buffer[]): boolean => reply.length === 1 && reply[0]!.readInt32LE(16) === 0;

/** transact's answer when a transaction of several requests must be retried one by one. */
const RETRY: (VpfError | undefined)[] = [];
