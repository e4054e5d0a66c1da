// Per-VM bridges over our OVSDB client. The bridge is inserted with
// fail_mode=secure, its ports and interfaces, and its place in
// Open_vSwitch.bridges in ONE transaction: OVS never sees the bridge without
// the secure fail mode (else it forwards with NORMAL until our flows arrive),
// and a bridge not referenced from the root table would be garbage-collected
// (OVN, Antrea). Flows that use a port wait until its requested ofport is set.
import { createHash } from 'node:crypto';
import { ovs, type OvsdbClient, type Op, type Row } from './ovsdb/client.js';
import { fnv1a } from '../rules/fnv.js';

export interface BridgePort {
  name: string;
  ofport: number;
  /** 'internal' creates the device; 'patch' joins `peer`; undefined attaches an existing netdev. */
  type?: 'internal' | 'patch';
  /** For a patch port: the port at the other end. */
  peer?: string;
  /** Written to the Port and Interface rows: the human names behind a short netdev name. */
  externalIds?: Record<string, string>;
}

export interface BridgeSpec {
  name: string;
  datapathType: 'system' | 'netdev';
  ports: BridgePort[];
  externalIds: Record<string, string>;
  /**
   * The other end of the VM's patch ports: created on the provider bridge in
   * the same transaction as their peers (a half patch pair forwards nothing).
   */
  provider?: { bridge: string; ports: { name: string; peer: string }[] };
}

const DB = 'Open_vSwitch';
export const BRIDGE_MONITOR = {
  db: DB,
  tables: {
    Open_vSwitch: ['bridges', 'other_config'],
    Bridge: ['name', 'ports', 'fail_mode', 'external_ids'],
    Port: ['name', 'interfaces'],
    Interface: ['name', 'ofport', 'ofport_request', 'error', 'link_state'],
  },
};

/**
 * A VM's netdev-name key: 8 hex digits of SHA-256 of its name. Netdev names
 * have at most 15 characters (IFNAMSIZ - 1), VM names up to 32, so a prefix of
 * the name cannot tell VMs apart (tenant1/tenant2); the daemon refuses a VM
 * whose key another VM already has, so keys are unique among running VMs.
 */
export function vmNameKey(vm: string): string {
  return createHash('sha256').update(vm).digest('hex').slice(0, 8);
}

/** The internal port of a VM's bridge: `v<key><p|r><tag>` (tag `u` = uplink, N = vfN), at most 15 characters for tags up to 5. */
export function internalPortName(vm: string, role: 'port' | 'rep', tag: string): string {
  return `v${vmNameKey(vm)}${role === 'port' ? 'p' : 'r'}${tag}`;
}

/** A legal bridge name for a VM: IFNAMSIZ-1 = 15 characters. */
export function bridgeNameFor(vm: string): string {
  const name = `vpf-${vm}`;
  return name.length <= 15 ? name : `vpf-${vm.slice(0, 6)}${fnv1a(vm).toString(16).slice(0, 5)}`;
}

/** Insert ops for one port with one interface, named i<tag> and p<tag> in the transaction. */
function portOps(tag: string, name: string, iface: Row, port: Row = {}): Op[] {
  return [
    { op: 'insert', table: 'Interface', 'uuid-name': `i${tag}`, row: { name, ...iface } },
    { op: 'insert', table: 'Port', 'uuid-name': `p${tag}`, row: { name, interfaces: ovs.named(`i${tag}`), ...port } },
  ];
}

const uuidsOf = (v: unknown): string[] => {
  const a = v as [string, unknown];
  if (a?.[0] === 'uuid') return [a[1] as string];
  if (a?.[0] === 'set') return (a[1] as [string, string][]).map((x) => x[1]);
  return [];
};

export class BridgeManager {
  constructor(private readonly db: OvsdbClient) {}

  private table(name: string): Map<string, Row> {
    return this.db.cache.get(name) ?? new Map();
  }

  private rootUuid(): string {
    const root = [...this.table('Open_vSwitch').keys()][0];
    if (!root) throw new Error('ovsdb: no Open_vSwitch row (is the database initialized?)');
    return root;
  }

  private findBridge(name: string): [string, Row] | undefined {
    return [...this.table('Bridge')].find(([, r]) => r.name === name);
  }

  private portNames(bridge: Row): Set<string> {
    const ports = this.table('Port');
    return new Set(uuidsOf(bridge.ports).map((u) => ports.get(u)?.name as string));
  }

  async ensureBridge(spec: BridgeSpec): Promise<void> {
    const existing = this.findBridge(spec.name);
    const ops: Op[] = [];
    const have = existing ? this.portNames(existing[1]) : new Set<string>();
    const newPorts: string[] = [];
    spec.ports.forEach((p, i) => {
      if (have.has(p.name)) return;
      const ids = p.externalIds ? { external_ids: ovs.map(p.externalIds) } : {};
      ops.push(...portOps(`${i}`, p.name, { ofport_request: p.ofport, ...(p.type ? { type: p.type } : {}), ...(p.peer ? { options: ovs.map({ peer: p.peer }) } : {}), ...ids }, ids));
      newPorts.push(`p${i}`);
    });
    // The bridge is the VM's alone: ports it no longer names (an older naming scheme, a detached netdev) leave in
    // the same transaction, so a renamed port never fights its predecessor for the requested ofport.
    const wanted = new Set(spec.ports.map((p) => p.name));
    const stale = existing ? uuidsOf(existing[1].ports).filter((u) => !wanted.has(this.table('Port').get(u)?.name as string)) : [];
    if (spec.provider) {
      const prov = this.findBridge(spec.provider.bridge);
      if (!prov) throw new Error(`provider bridge ${spec.provider.bridge} does not exist`);
      const onProv = this.portNames(prov[1]);
      const add = spec.provider.ports.filter((p) => !onProv.has(p.name));
      add.forEach((p, i) => ops.push(...portOps(`v${i}`, p.name, { type: 'patch', options: ovs.map({ peer: p.peer }) })));
      if (add.length) ops.push({ op: 'mutate', table: 'Bridge', where: [['_uuid', '==', ovs.uuid(prov[0])]], mutations: [['ports', 'insert', ovs.set(add.map((_, i) => ovs.named(`pv${i}`)))]] });
    }
    const settings = {
      fail_mode: 'secure',
      datapath_type: spec.datapathType,
      protocols: ovs.set(['OpenFlow10', 'OpenFlow13', 'OpenFlow14', 'OpenFlow15']),
      external_ids: ovs.map(spec.externalIds),
    };
    if (!existing) {
      ops.push({ op: 'insert', table: 'Bridge', 'uuid-name': 'br', row: { name: spec.name, ...settings, ports: ovs.set(newPorts.map(ovs.named)) } });
      ops.push({ op: 'mutate', table: 'Open_vSwitch', where: [['_uuid', '==', ovs.uuid(this.rootUuid())]], mutations: [['bridges', 'insert', ovs.set([ovs.named('br')])]] });
    } else {
      const where = [['_uuid', '==', ovs.uuid(existing[0])]];
      ops.push({ op: 'update', table: 'Bridge', where, row: settings });
      if (stale.length) ops.push({ op: 'mutate', table: 'Bridge', where, mutations: [['ports', 'delete', ovs.set(stale.map(ovs.uuid))]] });
      if (newPorts.length) ops.push({ op: 'mutate', table: 'Bridge', where, mutations: [['ports', 'insert', ovs.set(newPorts.map(ovs.named))]] });
    }
    await this.db.transact(DB, [...ops, { op: 'comment', comment: `vpfd: ensure bridge ${spec.name}` }]);
    await this.waitForOfports(spec);
  }

  /** Resolves once every port's interface reports the ofport it asked for; names the ones that did not. */
  private waitForOfports(spec: BridgeSpec, timeoutMs = 10_000): Promise<void> {
    const pending = () =>
      spec.ports.filter((p) => ![...this.table('Interface').values()].some((r) => r.name === p.name && r.ofport === p.ofport));
    return new Promise((resolve, reject) => {
      if (!pending().length) return resolve();
      const onUpdate = () => {
        if (pending().length) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        const why = pending().map((p) => {
          const row = [...this.table('Interface').values()].find((r) => r.name === p.name);
          return `${p.name} (ofport ${JSON.stringify(row?.ofport)}${row?.error && typeof row.error === 'string' ? `, ${row.error}` : ''})`;
        });
        reject(new Error(`ports without their requested ofport: ${why.join(', ')}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.db.off('update', onUpdate);
      };
      this.db.on('update', onUpdate);
    });
  }

  /**
   * Open_vSwitch other_config keys vpf owns by configuration: hw-offload,
   * tc-policy, vlan-limit. ovs-vswitchd reads hw-offload only at start
   * (vswitch.xml), so a change needs its restart: the caller logs that.
   * Returns the keys whose value changed.
   */
  async setOtherConfig(wanted: Record<string, string>): Promise<string[]> {
    const root = this.table('Open_vSwitch').get(this.rootUuid()) ?? {};
    const now = new Map(((root.other_config as [string, [string, string][]] | undefined)?.[1] ?? []) as [string, string][]);
    const changed = Object.entries(wanted).filter(([k, v]) => now.get(k) !== v);
    if (!changed.length) return [];
    const where = [['_uuid', '==', ovs.uuid(this.rootUuid())]];
    await this.db.transact(DB, [
      { op: 'mutate', table: 'Open_vSwitch', where, mutations: [['other_config', 'delete', ovs.set(changed.map(([k]) => k))]] },
      { op: 'mutate', table: 'Open_vSwitch', where, mutations: [['other_config', 'insert', ovs.map(Object.fromEntries(changed))]] },
    ]);
    return changed.map(([k]) => k);
  }

  /** Removes the bridge and, from the provider bridge, the patch ports named in `provider`. */
  async deleteBridge(name: string, provider?: BridgeSpec['provider']): Promise<void> {
    const b = this.findBridge(name);
    // Ports and interfaces are not root rows: OVSDB collects them once no bridge refers to them.
    const ops: Op[] = [];
    if (b) ops.push({ op: 'mutate', table: 'Open_vSwitch', where: [['_uuid', '==', ovs.uuid(this.rootUuid())]], mutations: [['bridges', 'delete', ovs.set([ovs.uuid(b[0])])]] });
    const prov = provider && this.findBridge(provider.bridge);
    if (prov) {
      const names = new Set(provider.ports.map((p) => p.name));
      const ports = this.table('Port');
      const gone = uuidsOf(prov[1].ports).filter((u) => names.has(ports.get(u)?.name as string));
      if (gone.length) ops.push({ op: 'mutate', table: 'Bridge', where: [['_uuid', '==', ovs.uuid(prov[0])]], mutations: [['ports', 'delete', ovs.set(gone.map(ovs.uuid))]] });
    }
    if (ops.length) await this.db.transact(DB, ops);
  }

  /** An interface's link_state as ovs-vswitchd reports it (undefined until it does). */
  linkState(iface: string): 'up' | 'down' | undefined {
    const row = [...this.table('Interface').values()].find((r) => r.name === iface);
    return row?.link_state === 'up' || row?.link_state === 'down' ? row.link_state : undefined;
  }
}
