// Per-VM bridges through ovs-vsctl (one OVSDB transaction per call: everything
// after `--` commits together). The bridge is created with fail_mode=secure in
// the same transaction, so OVS never forwards with NORMAL before our flows
// arrive (lessons of OVN and Antrea). A native RFC 7047 client is future work.
import { execa } from 'execa';

export interface BridgePort {
  name: string;
  ofport: number;
  /** 'internal' creates the device; undefined attaches an existing netdev. */
  type?: 'internal';
}

export interface BridgeSpec {
  name: string;
  datapathType: 'system' | 'netdev';
  ports: BridgePort[];
  externalIds: Record<string, string>;
}

/** A legal bridge name for a VM: IFNAMSIZ-1 = 15 characters. */
export function bridgeNameFor(vm: string): string {
  const name = `vpf-${vm}`;
  return name.length <= 15 ? name : `vpf-${vm.slice(0, 6)}${fnv(vm).toString(16).slice(0, 5)}`;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class BridgeManager {
  constructor(
    private readonly db: string,
    private readonly env: Record<string, string> = {},
  ) {}

  private async vsctl(...args: string[]): Promise<string> {
    const r = await execa('ovs-vsctl', [`--db=${this.db}`, '--timeout=10', ...args], { env: this.env, reject: false });
    if (r.exitCode !== 0) throw new Error(`ovs-vsctl: ${r.stderr.toString().trim()}`);
    return r.stdout.toString();
  }

  async ensureBridge(spec: BridgeSpec): Promise<void> {
    const ids = Object.entries(spec.externalIds).map(([k, v]) => `external_ids:${k}=${v}`);
    const args = ['--may-exist', 'add-br', spec.name, '--', 'set', 'bridge', spec.name, 'fail_mode=secure', `datapath_type=${spec.datapathType}`, 'protocols=OpenFlow10,OpenFlow13,OpenFlow14,OpenFlow15', ...ids];
    for (const p of spec.ports) {
      args.push('--', '--may-exist', 'add-port', spec.name, p.name, '--', 'set', 'interface', p.name, `ofport_request=${p.ofport}`, ...(p.type ? [`type=${p.type}`] : []));
    }
    await this.vsctl(...args);
    // Flows that use a port need its ofport: wait until every interface has the one it asked for.
    await this.vsctl('--timeout=10', 'wait-until', 'bridge', spec.name, 'fail_mode=secure');
    for (const p of spec.ports) await this.vsctl('--timeout=10', 'wait-until', 'interface', p.name, `ofport=${p.ofport}`);
  }

  async deleteBridge(name: string): Promise<void> {
    await this.vsctl('--if-exists', 'del-br', name);
  }
}
