// vpfctl vm add|del|list: register a VM with the daemon (its bridge, ports and channel).
import { readFileSync } from 'node:fs';
import { adminRequest } from '../admin/client.js';
import type { OffloadReport, VmInfo, VmSpec } from '../admin/api.js';
import { parsePortMap } from '../../translator/portmap.js';
import { adminSocket, out, runCommand, takeStateDir, UsageError } from './common.js';

export const usage = 'vm add NAME --vfs N [--ports FILE] [--attach vf0=IFNAME,rep0=IFNAME,...] [--host-pf PF --host-vfs H0,H1,...] [--outer-tpid 802.1Q|802.1ad] | vm del NAME | vm list | vm offload';

function parseAttach(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of spec.split(',').filter(Boolean)) {
    const m = /^(uplink|uplinkrep|vf\d+|rep\d+)=([^\s/]{1,15})$/.exec(part);
    if (!m) throw new UsageError(`bad --attach entry '${part}' (want vfN=IFNAME, repN=IFNAME, uplink=IFNAME or uplinkrep=IFNAME)`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

export function parseVmAdd(args: string[]): VmSpec {
  const [name, ...rest] = args;
  if (!name || name.startsWith('-')) throw new UsageError('vm add needs a NAME');
  let vfs: number | undefined;
  const spec: VmSpec = { name, vfs: 0 };
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i]!;
    const v = rest[i + 1];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    if (flag === '--vfs') {
      vfs = Number(v);
      if (!Number.isInteger(vfs) || vfs < 0 || vfs > 254) throw new UsageError('--vfs takes 0..254');
    } else if (flag === '--ports') {
      try {
        spec.ports = parsePortMap(JSON.parse(readFileSync(v, 'utf8')));
      } catch (e) {
        throw new UsageError(`--ports ${v}: ${(e as Error).message}`);
      }
    } else if (flag === '--attach') spec.attach = parseAttach(v);
    else if (flag === '--host-pf') spec.hostPf = { pf: v, vfs: spec.hostPf?.vfs ?? [] };
    else if (flag === '--host-vfs') {
      const hv = v.split(',').map(Number);
      if (hv.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError('--host-vfs takes host VF indexes: 0,1,...');
      spec.hostPf = { pf: spec.hostPf?.pf ?? '', vfs: hv };
    }
    else if (flag === '--outer-tpid') {
      if (v !== '802.1Q' && v !== '802.1ad') throw new UsageError('--outer-tpid takes 802.1Q or 802.1ad');
      spec.outerTpid = v;
    } else throw new UsageError(`unknown option ${flag}`);
  }
  if (vfs === undefined) vfs = spec.ports?.vfs.length;
  if (vfs === undefined) throw new UsageError('vm add needs --vfs N (or --ports FILE)');
  if (spec.ports && spec.ports.vfs.length !== vfs) throw new UsageError(`--vfs ${vfs} but the port map has ${spec.ports.vfs.length} VFs`);
  spec.vfs = vfs;
  if (spec.hostPf && (!spec.hostPf.pf || spec.hostPf.vfs.length !== vfs)) throw new UsageError(`--host-pf PF needs --host-vfs with one host VF per guest VF (${vfs})`);
  return spec;
}

export function formatVmList(vms: VmInfo[]): string {
  if (vms.length === 0) return 'no VMs';
  const rows = vms.map((v) => [v.name, v.state === 'failed' ? `failed: ${v.error ?? ''}` : v.outerTpidBroken ? `up, outer TPID ${v.outerTpid} broken` : 'up', v.bridge, String(v.vfs), v.mode, String(v.rules), String(v.flows), v.channel]);
  const head = ['VM', 'STATE', 'BRIDGE', 'VFS', 'MODE', 'RULES', 'FLOWS', 'CHANNEL'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function run(argv: string[]): Promise<number> {
  return runCommand('vm', async () => {
    const args = [...argv];
    const sock = adminSocket(takeStateDir(args));
    const [sub, ...rest] = args;
    switch (sub) {
      case 'add': {
        const info = await adminRequest<VmInfo>(sock, 'POST', '/vms', parseVmAdd(rest));
        out(`vm ${info.name}: bridge ${info.bridge}, ${info.vfs} VFs, channel ${info.channel}`);
        return 0;
      }
      case 'del': {
        if (!rest[0]) throw new UsageError('vm del needs a NAME');
        await adminRequest(sock, 'DELETE', `/vms/${encodeURIComponent(rest[0])}`);
        out(`vm ${rest[0]}: deleted`);
        return 0;
      }
      case 'list':
        out(formatVmList(await adminRequest<VmInfo[]>(sock, 'GET', '/vms')));
        return 0;
      case 'offload': {
        // The NIC holds datapath flows, which traffic creates: this is the operator's view of hardware.
        const r = await adminRequest<OffloadReport>(sock, 'GET', '/offload');
        out(`${r.offloaded} of ${r.datapathFlows} datapath flows are in hardware`);
        if (r.recircSharing === false) out(`this kernel cannot offload flows that recirculate (no tc recirculation sharing: CONFIG_NET_TC_SKB_EXT); ${r.recirculatingInSoftware} such flows are in software`);
        for (const f of r.flows) out(`  ${f.offloaded ? `offloaded (${f.dp})` : 'software'}  packets:${f.packets}  ${f.match}`);
        return 0;
      }
      default:
        throw new UsageError(`usage: vpfctl ${usage}`);
    }
  });
}
