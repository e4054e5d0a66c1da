// One VM, put together from parts with one job each (docs/architecture.md):
// its filter table (filters.ts), VF settings and eswitch mode (vfstate.ts),
// its bridge's desired and installed flows (flowsync.ts), the requests on its
// guest channels (requests.ts) and read-only views (views.ts). Requests of one
// VM run one at a time (a promise queue), so its state changes in order. The
// journal's fdatasync runs off the event loop (journal.ts): while one VM's
// change is made durable, other VMs' requests go on.
import type { Logger } from 'pino';
import type { FilterStats } from '../rules/model.js';
import type { NlMessage } from '../rules/netlink/nlmsg.js';
import type { VfSettings } from '../rules/vf.js';
import type { InstalledFlow } from '../ovs/openflow/diff.js';
import type { FlowInstaller } from '../ovs/ctl/ofctl.js';
import type { Journal } from './journal.js';
import type { VmRecord } from './records.js';
import { FilterTable } from './filters.js';
import { FlowSync } from './flowsync.js';
import { VfState, type EswitchMode, type VfBackend } from './vfstate.js';
import { GuestRequests, isFilterChange } from './requests.js';
import { VmViews, type ExplainReport, type RuleView } from './views.js';
import { GuestChannels } from './channel.js';
import type { Metrics } from './metrics.js';
import type { RuleHardware } from './hwfacts.js';
import type { Quotas } from './config.js';
import type { ZonePool } from './zones.js';

export type { VfBackend };

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
  /** The host's conntrack zones, shared by every VM of the daemon (default: a pool of this VM's own). */
  zones?: ZonePool;
}

export class VmState {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly vf: VfState;
  private readonly sync: FlowSync;
  private readonly views: VmViews;
  private readonly requests: GuestRequests;
  private readonly channels: GuestChannels;

  constructor(
    readonly rec: VmRecord,
    readonly bridge: string,
    private readonly installer: FlowInstaller,
    journal: Journal,
    quotas: Quotas,
    metrics: Metrics,
    log: Logger,
    opts: VmOptions = {},
  ) {
    const filters = new FilterTable(rec, quotas.rulesPerVm);
    this.vf = new VfState(rec, opts.uplinkUp, opts.vfBackend);
    this.sync = new FlowSync(rec, this.vf, installer, journal, metrics, log, opts.zones);
    this.views = new VmViews(rec, bridge, installer, this.sync, this.vf, log, opts.hardware);
    this.requests = new GuestRequests({ rec, filters, vf: this.vf, sync: this.sync, views: this.views, journal, quotas, metrics, log, resync: () => void this.reconcile('error') });
    this.channels = new GuestChannels({
      batchable: (msg, proto) => proto === 'route' && isFilterChange(msg),
      handle: (msg, proto) => this.serial(() => (proto === 'genl' ? this.requests.handleGenl(msg) : this.requests.handle(msg))),
      handleBatch: (msgs) => this.serial(() => this.requests.handleBatch(msgs)),
      framingLost: (len) => {
        log.warn({ vm: rec.name, len }, 'guest channel framing lost; closing the connection');
        metrics.inc('vpf_channel_errors_total', { vm: rec.name, errno: 'EBADMSG' });
      },
    });
  }

  get mode(): EswitchMode {
    return this.vf.mode;
  }

  /** Every VF's administrator settings (mlx5 defaults until the guest sets them). */
  vfSettings(): VfSettings[] {
    return this.vf.settings();
  }

  /** Desired flow count (what the bridge holds once reconciled). */
  get flowCount(): number {
    return this.sync.flowCount;
  }

  /** Runs `f` after every earlier request of this VM. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f, f);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** One NETLINK_ROUTE request, queued behind the VM's others (what the channel does per message). */
  handle(msg: NlMessage): Promise<Buffer[]> {
    return this.serial(() => this.requests.handle(msg));
  }

  /** The uplink's carrier changed: link-state auto VFs follow it (legacy flows derive from it). */
  uplinkChanged(): Promise<number> {
    return this.serial(async () => (this.mode === 'legacy' ? this.sync.reconcile('uplink carrier') : 0));
  }

  /** The datapath saw a frame that breaks the declared outer TPID: VLAN filters go back to the guest's software. */
  outerTpidBroken(reason: string): Promise<number> {
    return this.serial(() => {
      this.sync.outerTpidBroken(reason);
      return this.sync.reconcile('outer TPID broken');
    });
  }

  /** ovs-vswitchd restarted: flows it refused before are offered again at the next reconcile. */
  ovsRestarted(): void {
    this.sync.ovsRestarted();
  }

  /** Desired vs installed by cookie, read from a fresh dump; only the difference goes, in one bundle. */
  reconcile(reason: string): Promise<number> {
    return this.serial(() => {
      this.sync.forgetInstalled();
      return this.sync.reconcile(reason);
    });
  }

  /** The VM's two channels: NETLINK_ROUTE at `path`, NETLINK_GENERIC (devlink) at `genlPath` (docs/protocol.md). */
  async listen(path: string, genlPath: string): Promise<void> {
    await this.channels.listen(path, 'route');
    await this.channels.listen(genlPath, 'genl');
  }

  close(): void {
    this.channels.close();
    this.vf.backend?.close?.();
    void this.installer.close?.().catch(() => undefined);
  }

  stats(installed?: InstalledFlow[]): Promise<Map<number, FilterStats>> {
    return this.views.stats(installed);
  }

  rules(): Promise<RuleView[]> {
    return this.views.rules();
  }

  explain(): Promise<ExplainReport> {
    return this.views.explain();
  }
}
