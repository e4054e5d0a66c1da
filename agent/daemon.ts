// vpfd: one per hypervisor. Owns a bridge per VM, listens on each VM's guest
// channel, keeps every bridge's flows equal to what its guest asked for, and
// serves the admin API. State lives in the journal, so a restart resumes
// without touching flows that are already right.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import pino, { type Logger } from 'pino';
import { Errno, VpfError } from '../rules/errors.js';
import { defaultPortMap, portPair, repNames, type PortMap } from '../translator/portmap.js';
import { BRIDGE_MONITOR, BridgeManager, bridgeNameFor, internalPortName, vmNameKey, type BridgePort, type BridgeSpec } from '../ovs/bridge.js';
import { OvsdbClient } from '../ovs/ovsdb/client.js';
import { OfctlInstaller } from '../ovs/ctl/ofctl.js';
import { NativeInstaller } from '../ovs/openflow/native.js';
import type { VpfdConfig } from './config.js';
import { Journal } from './journal.js';
import type { VmRecord } from './records.js';
import { Metrics } from './metrics.js';
import { VmState } from './vm.js';
import type { AdminBackend, ExplainReport, OffloadReport, RuleView, VmInfo, VmSpec } from './admin/api.js';
import { datapathFeatures, type DatapathFeatures } from '../ovs/datapath.js';
import { UnixctlClient, vswitchdCtlPath } from '../ovs/unixctl.js';
import { ZonePool } from './zones.js';
import { tpidViolations } from './tpidaudit.js';
import { DatapathLedger, hardwareByRule, recirculatingInSoftware } from './hwfacts.js';
import { startAdminServer } from './admin/server.js';
import { HostPfBackend } from './physvf.js';
import { adminSocket, genlChannelSocket, vmChannelSocket } from './paths.js';

/** The outer TPIDs a VM may declare (VmSpec.outerTpid), by their tc names. */
const TPIDS = { '802.1Q': 0x8100, '802.1ad': 0x88a8 } as const;
const tpidName = (t: number) => (t === TPIDS['802.1ad'] ? '802.1ad' : '802.1Q');
const tpidInfo = (rec: VmRecord): Pick<VmInfo, 'outerTpid' | 'outerTpidBroken'> =>
  rec.outerTpid === undefined ? {} : { outerTpid: tpidName(rec.outerTpid), ...(rec.outerTpidBroken ? { outerTpidBroken: rec.outerTpidBroken } : {}) };

export class Vpfd implements AdminBackend {
  private readonly vms = new Map<string, VmState>();
  private readonly journal: Journal;
  private readonly bridges: BridgeManager;
  private readonly ovsdb: OvsdbClient;
  readonly metricsRegistry = new Metrics();
  private admin: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Polls ovs-vswitchd's pid file: one watcher for the host's one ovs-vswitchd, however many VMs. */
  private watch: NodeJS.Timeout | undefined;
  /** Last seen carrier of each VM's uplink. */
  private readonly carrier = new Map<string, boolean>();
  /** VMs of the journal that did not come up: kept, listed as failed with the cause, retried on the reconcile timer. */
  private readonly failed = new Map<string, { rec: VmRecord; error: string }>();
  /** ovs-vswitchd's control connection: datapath flows and their traces (one per host, like the kernel datapath). */
  private readonly vswitchd: UnixctlClient;
  /** Host conntrack zones, claimed per VM on first use (agent/zones.ts). */
  private readonly zones = new ZonePool();
  readonly datapath: DatapathLedger;
  /** What the kernel datapath lets tc offload do; read once a system bridge exists. */
  private dpFeatures: DatapathFeatures | undefined;

  private constructor(
    readonly config: VpfdConfig,
    readonly log: Logger,
  ) {
    this.journal = new Journal(join(config.stateDir, 'journal'));
    this.ovsdb = new OvsdbClient(config.ovsdb, log);
    this.bridges = new BridgeManager(this.ovsdb);
    this.vswitchd = new UnixctlClient(() => vswitchdCtlPath(config.ovsRundir));
    this.datapath = new DatapathLedger(this.vswitchd, log);
  }

  private ovsEnv(): Record<string, string> {
    return { OVS_RUNDIR: this.config.ovsRundir };
  }

  static async start(config: VpfdConfig, log: Logger = pino({ level: config.logLevel })): Promise<Vpfd> {
    mkdirSync(join(config.stateDir, 'vms'), { recursive: true, mode: 0o700 });
    const d = new Vpfd(config, log);
    // The journal first: replaying a large one keeps the event loop busy for seconds, and
    // the OVSDB client takes two echo periods (10 s) without a word heard as a dead
    // connection, even when the silence was its own blocked loop.
    const recs = d.journal.loadAll();
    await d.ovsdb.connect();
    await d.ovsdb.monitor(BRIDGE_MONITOR);
    await d.applyOvsSettings();
    d.watchVswitchd(join(config.ovsRundir, 'ovs-vswitchd.pid'));
    // After an OVSDB reconnect the client has resynced its cache: make every bridge right again.
    d.ovsdb.on('reconnected', () => {
      for (const vm of d.vms.values()) {
        d.bridges
          .ensureBridge(d.bridgeSpec(vm.rec))
          .then(() => vm.reconcile('ovsdb reconnect'))
          .catch((e) => log.warn({ vm: vm.rec.name, err: e }, 'resync after OVSDB reconnect failed; the timer will retry'));
      }
    });
    // Link-state auto VFs follow their uplink's carrier (ovs-vswitchd reports it in Interface link_state).
    d.ovsdb.on('update', () => {
      for (const vm of d.vms.values()) {
        const up = d.bridges.linkState(d.uplinkIface(vm.rec)) !== 'down';
        if (d.carrier.get(vm.rec.name) === up) continue;
        d.carrier.set(vm.rec.name, up);
        log.info({ vm: vm.rec.name, up }, 'uplink carrier changed');
        vm.uplinkChanged().catch((e) => log.warn({ vm: vm.rec.name, err: e }, 'following the uplink carrier failed; the timer will retry'));
      }
    });
    // One VM that cannot come up never keeps the others down (issue 9 item 11).
    for (const rec of recs) await d.tryBringUp(rec, 'restart');
    await d.checkDatapath();
    d.admin = await startAdminServer(d, adminSocket(config.stateDir), log);
    d.timer = setInterval(() => {
      for (const vm of d.vms.values()) vm.reconcile('timer').catch((e) => log.warn({ vm: vm.rec.name, err: e }, 'periodic reconcile failed'));
      d.auditOuterTpids().catch((e) => log.warn({ err: e }, 'outer TPID audit failed; the timer will retry'));
      for (const { rec } of [...d.failed.values()]) void d.tryBringUp(rec, 'retry');
    }, config.reconcileIntervalMs);
    log.info({ stateDir: config.stateDir, vms: d.vms.size, failed: d.failed.size, datapath: config.datapathType }, 'vpfd started');
    return d;
  }

  /**
   * Says once, at start or when the first system bridge appears, what the
   * kernel datapath lets OVS's tc offload do. Without tc recirculation sharing
   * (a kernel built without CONFIG_NET_TC_SKB_EXT, Debian's stock 6.1 among
   * them) OVS offloads no flow that recirculates, and says so per flow only at
   * debug level (netdev-offload-tc.c "recirc_id sharing not supported").
   */
  private async checkDatapath(): Promise<void> {
    if (this.dpFeatures || this.config.datapathType !== 'system' || !this.vms.size) return;
    this.dpFeatures = await datapathFeatures();
    if (!this.dpFeatures) return;
    const ok = this.dpFeatures.recircSharing;
    this.metricsRegistry.set('vpf_tc_recirc_sharing', {}, ok ? 1 : 0, 'Whether OVS can offload recirculating flows (ct, goto) into tc: the kernel datapath has OVS_DP_F_TC_RECIRC_SHARING');
    if (ok) this.log.info({ userFeatures: this.dpFeatures.userFeatures }, 'kernel datapath shares recirculation ids with tc: conntrack flows can be offloaded');
    else this.log.warn({ userFeatures: this.dpFeatures.userFeatures }, 'kernel datapath cannot share recirculation ids with tc (no CONFIG_NET_TC_SKB_EXT): flows that recirculate (ct, goto chain after ct) stay in software');
  }

  /**
   * A restarted ovs-vswitchd has no flows; it writes a new pid into its pid
   * file. A changed pid means "reinstall every VM now", well before the
   * periodic reconcile would notice (the management socket's inode is often
   * reused, so it is no signal).
   */
  private watchVswitchd(pidFile: string, everyMs = 250): void {
    let pid = pidOf(pidFile);
    this.watch = setInterval(() => {
      const now = pidOf(pidFile);
      if (now === pid || now === undefined) return;
      pid = now;
      this.log.warn({ vms: this.vms.size }, 'ovs-vswitchd restarted; reinstalling flows');
      for (const vm of this.vms.values()) {
        vm.ovsRestarted();
        // The new ovs-vswitchd may still be setting the bridge up: retry briefly before leaving it to the timer.
        const attempt = (n: number): void => {
          if (this.vms.get(vm.rec.name) !== vm) return;
          vm.reconcile('ovs-vswitchd restart').catch((e) => {
            if (n < 40) setTimeout(() => attempt(n + 1), 100).unref();
            else this.log.warn({ vm: vm.rec.name, err: e }, 'reinstall after restart failed; the timer will retry');
          });
        };
        attempt(0);
      }
    }, everyMs);
    this.watch.unref();
  }

  /** The global OVS settings the config names; each change is logged, never made silently. */
  private async applyOvsSettings(): Promise<void> {
    const c = this.config;
    const wanted: Record<string, string> = {};
    if (c.hwOffload !== undefined) wanted['hw-offload'] = String(c.hwOffload);
    if (c.tcPolicy !== undefined) wanted['tc-policy'] = c.tcPolicy;
    if (c.vlanLimit !== undefined) wanted['vlan-limit'] = String(c.vlanLimit);
    const changed = await this.bridges.setOtherConfig(wanted);
    for (const k of changed) {
      this.log.warn({ key: `other_config:${k}`, value: wanted[k] }, k === 'vlan-limit' ? 'set Open vSwitch setting' : 'set Open vSwitch setting; ovs-vswitchd reads it only at start: restart it to take effect');
    }
  }

  channelPath(name: string): string {
    return vmChannelSocket(this.config.stateDir, name);
  }

  /** NETLINK_GENERIC (devlink) channel of a VM: a socket of its own, as in the guest (GENL_ID_CTRL 0x10 is also RTM_NEWLINK). */
  genlChannelPath(name: string): string {
    return genlChannelSocket(this.config.stateDir, name);
  }

  private bridgePorts(rec: VmRecord): BridgePort[] {
    const out: BridgePort[] = [];
    for (const dev of repNames(rec.ports)) {
      const p = portPair(rec.ports, dev)!;
      const tag = dev === 'uplink' ? 'u' : dev.slice(2);
      const port = rec.attach[dev] ?? rec.attach[dev === 'uplink' ? 'uplink' : `vf${tag}`];
      const rep = rec.attach[dev === 'uplink' ? 'uplinkrep' : `rep${tag}`];
      const patched = dev === 'uplink' && !port && this.config.providerBridge;
      // Internal ports get short hashed names (ovs/bridge.ts internalPortName); external_ids keep the human ones.
      const ids = (role: string) => ({ externalIds: { 'vpf-vm': rec.name, 'vpf-port': role } });
      if (patched) out.push({ name: patchNames(rec.name).vm, ofport: p.port, type: 'patch', peer: patchNames(rec.name).provider });
      else out.push(port ? { name: port, ofport: p.port } : { name: internalPortName(rec.name, 'port', tag), ofport: p.port, type: 'internal', ...ids(dev) });
      out.push(rep ? { name: rep, ofport: p.rep } : { name: internalPortName(rec.name, 'rep', tag), ofport: p.rep, type: 'internal', ...ids(`${dev}rep`) });
    }
    return out;
  }

  private bridgeSpec(rec: VmRecord): BridgeSpec {
    return { name: bridgeNameFor(rec.name), datapathType: this.config.datapathType, ports: this.bridgePorts(rec), externalIds: { 'vpf-vm': rec.name }, ...this.providerOf(rec) };
  }

  /** The provider-bridge end of the VM's uplink patch pair, when the config names a provider bridge and the uplink is not attached to a netdev. */
  private providerOf(rec: VmRecord): Pick<BridgeSpec, 'provider'> {
    const bridge = this.config.providerBridge;
    if (!bridge || rec.attach.uplink) return {};
    const n = patchNames(rec.name);
    return { provider: { bridge, ports: [{ name: n.provider, peer: n.vm }] } };
  }

  /** The interface that is the VM's wire: its carrier drives link-state auto VFs. */
  private uplinkIface(rec: VmRecord): string {
    return this.bridgePorts(rec).find((p) => p.ofport === rec.ports.uplink.port)!.name;
  }

  /** bringUp that never throws: a VM that fails is logged with its cause and kept as failed, for the timer to retry. */
  private async tryBringUp(rec: VmRecord, why: string): Promise<void> {
    if (this.retrying.has(rec.name)) return;
    this.retrying.add(rec.name);
    try {
      await this.bringUp(rec, why);
      if (this.failed.delete(rec.name)) this.log.info({ vm: rec.name }, 'failed vm came up');
    } catch (e) {
      const error = (e as Error).message;
      if (this.failed.get(rec.name)?.error !== error) this.log.error({ vm: rec.name, err: e, why }, 'vm failed to come up; the others keep running, retrying on the reconcile timer');
      // A VM deleted while it was being retried stays deleted.
      if (why === 'restart' || this.failed.has(rec.name)) this.failed.set(rec.name, { rec, error });
    } finally {
      this.retrying.delete(rec.name);
    }
  }
  private readonly retrying = new Set<string>();

  /** Brings a VM up; on failure nothing of it stays running (its bridge may stay, as the journal still names it). */
  private async bringUp(rec: VmRecord, why: string): Promise<VmState> {
    let vm: VmState | undefined;
    try {
      vm = await this.startVm(rec, why);
      return vm;
    } catch (e) {
      const started = this.vms.get(rec.name);
      started?.close();
      this.vms.delete(rec.name);
      this.carrier.delete(rec.name);
      throw e;
    }
  }

  private async startVm(rec: VmRecord, why: string): Promise<VmState> {
    const bridge = bridgeNameFor(rec.name);
    await this.bridges.ensureBridge(this.bridgeSpec(rec));
    const mgmt = join(this.config.ovsRundir, `${bridge}.mgmt`);
    // Flow mods over one persistent OpenFlow connection; ovs-ofctl for dumps, meters and whatever the encoder does not cover.
    const installer = new NativeInstaller(`unix:${mgmt}`, new OfctlInstaller(`unix:${mgmt}`, this.ovsEnv()));
    const hostPf = rec.hostPf;
    const vfBackend = hostPf && new HostPfBackend({ pf: hostPf.pf, hostVf: (n) => hostPf.vfs[n]! });
    const iface = this.uplinkIface(rec);
    const uplinkUp = () => this.bridges.linkState(iface) !== 'down';
    // in_hw from facts where a NIC could hold the flows: the kernel datapath with hw-offload on (issue 10).
    const hardware = this.config.datapathType === 'system' && this.config.hwOffload ? async () => hardwareByRule(await this.datapath.read(), bridge) : undefined;
    const vm = new VmState(rec, bridge, installer, this.journal, this.config.quotas, this.metricsRegistry, this.log, { uplinkUp, zones: this.zones, ...(vfBackend ? { vfBackend } : {}), ...(hardware ? { hardware } : {}) });
    this.carrier.set(rec.name, uplinkUp());
    this.vms.set(rec.name, vm);
    await vm.listen(this.channelPath(rec.name), this.genlChannelPath(rec.name));
    const mods = await vm.reconcile(why);
    this.log.info({ vm: rec.name, bridge, rules: rec.rules.length, flowMods: mods, why }, 'vm up');
    return vm;
  }

  private vm(name: string): VmState {
    const v = this.vms.get(name);
    const f = this.failed.get(name);
    if (!v && f) throw new VpfError(Errno.EBUSY, `VM ${name} failed to come up: ${f.error}`);
    if (!v) throw new VpfError(Errno.ENOENT, `no VM named ${name}`);
    return v;
  }

  private info(v: VmState): VmInfo {
    return { name: v.rec.name, bridge: v.bridge, vfs: v.rec.vfs, ports: v.rec.ports, channel: this.channelPath(v.rec.name), rules: v.rec.rules.length, flows: v.flowCount, mode: v.mode, state: 'up', ...tpidInfo(v.rec) };
  }

  private failedInfo(rec: VmRecord, error: string): VmInfo {
    const mode = rec.mode ?? 'switchdev';
    return { name: rec.name, bridge: bridgeNameFor(rec.name), vfs: rec.vfs, ports: rec.ports, channel: this.channelPath(rec.name), rules: rec.rules.length, flows: 0, mode, state: 'failed', error };
  }

  /** Two VMs must never share a bridge or a port name: the names are derived, so a derived clash is refused up front. */
  private checkNames(name: string): void {
    for (const other of [...this.vms.keys(), ...this.failed.keys()]) {
      if (bridgeNameFor(other) === bridgeNameFor(name) || vmNameKey(other) === vmNameKey(name)) {
        throw new VpfError(Errno.EEXIST, `VM name ${name} maps to the same bridge or port names as VM ${other}; choose another name`);
      }
    }
  }

  async addVm(spec: VmSpec): Promise<VmInfo> {
    if (this.vms.has(spec.name) || this.failed.has(spec.name)) throw new VpfError(Errno.EEXIST, `VM ${spec.name} exists`);
    this.checkNames(spec.name);
    const ports: PortMap = spec.ports ?? defaultPortMap(spec.vfs);
    if (spec.hostPf && spec.hostPf.vfs.length !== spec.vfs) throw new VpfError(Errno.EINVAL, `hostPf maps ${spec.hostPf.vfs.length} VFs, the VM has ${spec.vfs}`);
    if (spec.outerTpid !== undefined && !(spec.outerTpid in TPIDS)) throw new VpfError(Errno.EINVAL, `outerTpid ${spec.outerTpid}: want 802.1Q or 802.1ad`);
    const rec: VmRecord = { name: spec.name, vfs: spec.vfs, ports, attach: spec.attach ?? {}, rules: [], nextRuleId: 1, zones: [], layout: [], ...(spec.hostPf ? { hostPf: spec.hostPf } : {}), ...(spec.outerTpid ? { outerTpid: TPIDS[spec.outerTpid] } : {}) };
    this.journal.save(rec);
    try {
      const info = this.info(await this.bringUp(rec, 'vm add'));
      await this.checkDatapath();
      return info;
    } catch (e) {
      // The caller gets the cause; nothing of the VM stays behind (journal record, bridge), so the name can be reused.
      this.log.error({ vm: rec.name, err: e }, 'vm add failed; rolled back');
      this.journal.remove(rec.name);
      await this.bridges.deleteBridge(bridgeNameFor(rec.name), this.providerOf(rec).provider).catch((err) => this.log.warn({ vm: rec.name, err }, 'removing the bridge of a failed vm add failed'));
      throw e;
    }
  }

  async delVm(name: string): Promise<void> {
    const f = this.failed.get(name);
    const rec = f?.rec ?? this.vm(name).rec;
    const v = this.vms.get(name);
    v?.close();
    this.vms.delete(name);
    this.failed.delete(name);
    await this.bridges.deleteBridge(bridgeNameFor(name), this.providerOf(rec).provider);
    this.carrier.delete(name);
    this.journal.remove(name);
    await this.releaseZones(name);
    this.log.info({ vm: name }, 'vm deleted');
  }

  /**
   * Checks each VM's declared outer TPID against the datapath's flows
   * (agent/tpidaudit.ts); a VM whose frames broke it has its VLAN filters
   * trapped again, and the operator is told which frame did it.
   */
  async auditOuterTpids(): Promise<void> {
    const declared = [...this.vms.values()].filter((v) => v.rec.outerTpid !== undefined && !v.rec.outerTpidBroken);
    if (!declared.length) return;
    const flows = await this.datapath.read();
    for (const vm of declared) {
      const [broken] = tpidViolations(flows, vm.bridge, vm.rec.outerTpid!);
      if (!broken) continue;
      this.log.error({ vm: vm.rec.name, reason: broken.reason, datapathFlow: broken.match }, 'declared outer TPID broken: VLAN filters go back to the guest\'s software');
      this.metricsRegistry.inc('vpf_outer_tpid_broken_total', { vm: vm.rec.name });
      await vm.outerTpidBroken(`${broken.reason} (datapath flow ${broken.match})`);
    }
  }

  /**
   * Frees a deleted VM's host conntrack zones and flushes their entries
   * (dpctl/flush-conntrack zone=N), so the VM that gets a zone next starts
   * with none of this one's connections.
   */
  private async releaseZones(vm: string): Promise<void> {
    for (const zone of this.zones.release(vm)) {
      await this.vswitchd.call('dpctl/flush-conntrack', `zone=${zone}`).catch((err) => this.log.warn({ vm, zone, err }, 'flushing a released conntrack zone failed'));
    }
  }

  /** Running VMs, then the ones that failed to come up (state `failed`, with the cause). */
  listVms(): VmInfo[] {
    return [...[...this.vms.values()].map((v) => this.info(v)), ...[...this.failed.values()].map(({ rec, error }) => this.failedInfo(rec, error))];
  }

  vmRules(name: string): Promise<RuleView[]> {
    return this.vm(name).rules();
  }

  explain(name: string): Promise<ExplainReport> {
    return this.vm(name).explain();
  }

  metrics(): string {
    return this.metricsRegistry.render();
  }

  async offload(): Promise<OffloadReport> {
    await this.checkDatapath();
    const flows = await this.datapath.read();
    return {
      datapathFlows: flows.length,
      offloaded: flows.filter((f) => f.offloaded).length,
      ...(this.dpFeatures ? { recircSharing: this.dpFeatures.recircSharing } : {}),
      recirculatingInSoftware: recirculatingInSoftware(flows),
      flows: flows.map(({ match, packets, offloaded, dp }) => ({ match, packets, offloaded, dp })),
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.watch);
    for (const v of this.vms.values()) v.close();
    await new Promise((r) => (this.admin ? this.admin.close(() => r(undefined)) : r(undefined)));
    this.ovsdb.close();
    this.vswitchd.close();
    this.journal.close();
    this.log.info('vpfd stopped');
  }
}


/** The uplink patch pair of a VM on the provider bridge (patch ports are not netdevs: no IFNAMSIZ limit). */
function patchNames(vm: string): { vm: string; provider: string } {
  return { vm: `vpf-${vm}-up`, provider: `vpf-${vm}-pv` };
}

function pidOf(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
