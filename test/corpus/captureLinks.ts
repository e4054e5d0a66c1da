// Captures what the real iproute2 sends for legacy VF settings, rx modes, link
// queries and the devlink family lookup: `VPF_CAPTURE_LINKS=1 npx vite-node
// test/corpus/captureLinks.ts` (root; needs strace) rewrites links.json.
// The capture namespace's PF is a veth named `uplink`; vfN has ifindex N + 2.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureBatch } from '../helpers/nlcapture.js';

export const linksPath = join(dirname(fileURLToPath(import.meta.url)), 'links.json');
export const LINK_DEVS = ['uplink', 'vf0', 'vf1'];

/** argv after the tool name; the kind says which message of the capture is kept. */
export const LINK_COMMANDS: { kind: 'setvf' | 'rxmode' | 'get' | 'dump' | 'genl'; argv: string[] }[] = [
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'mac', '02:00:00:00:00:01'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '1', 'vlan', '100', 'qos', '3'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '1', 'vlan', '100', 'proto', '802.1ad'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'spoofchk', 'on'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'trust', 'on'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'state', 'disable'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'rate', '100'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'max_tx_rate', '100', 'min_tx_rate', '10'] },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'query_rss', 'on'] },
  {
    kind: 'setvf',
    argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '1', 'mac', '02:00:00:00:00:02', 'vlan', '7', 'qos', '5', 'proto', '802.1ad', 'spoofchk', 'off', 'min_tx_rate', '5', 'trust', 'on', 'max_tx_rate', '50', 'state', 'enable'],
  },
  { kind: 'setvf', argv: ['ip', 'link', 'set', 'dev', 'uplink', 'vf', '0', 'mac', '02:00:00:00:00:01', 'vf', '1', 'vlan', '200', 'spoofchk', 'on'] },
  { kind: 'rxmode', argv: ['ip', 'link', 'set', 'dev', 'vf0', 'promisc', 'on'] },
  { kind: 'rxmode', argv: ['ip', 'link', 'set', 'dev', 'vf1', 'allmulticast', 'on'] },
  { kind: 'rxmode', argv: ['ip', 'link', 'set', 'dev', 'vf0', 'promisc', 'off'] },
  { kind: 'get', argv: ['ip', 'link', 'show', 'dev', 'uplink'] },
  { kind: 'dump', argv: ['ip', 'link', 'show'] },
  { kind: 'dump', argv: ['ip', '-s', 'link', 'show'] },
  { kind: 'genl', argv: ['devlink', 'dev', 'eswitch', 'show', 'pci/0000:01:00.0'] },
];

export interface LinkCapture {
  kind: string;
  argv: string[];
  /** The message kept, hex: the last RTM_NEWLINK (setvf, rxmode), GETLINK (get, dump) or nlctrl request. */
  message: string;
}

export interface LinksFile {
  ifindex: Record<string, number>;
  entries: LinkCapture[];
}

function pick(kind: string, messages: Buffer[]): Buffer | undefined {
  const type = (m: Buffer) => m.readUInt16LE(4);
  const flags = (m: Buffer) => m.readUInt16LE(6);
  const of = (f: (m: Buffer) => boolean) => messages.filter(f).pop();
  if (kind === 'setvf') return of((m) => type(m) === 16 && m.length > 32);
  if (kind === 'rxmode') return of((m) => type(m) === 16 && m.length === 32);
  // GETLINK with IFLA_IFNAME and AF_PACKET family is what `ip link show dev X` really asks for.
  if (kind === 'get') return of((m) => type(m) === 18 && (flags(m) & 0x300) !== 0x300 && m.readUInt8(16) === 17);
  if (kind === 'dump') return of((m) => type(m) === 18 && (flags(m) & 0x300) === 0x300);
  return of((m) => type(m) === 0x10);
}

export async function captureLinks(cmds = LINK_COMMANDS): Promise<LinksFile> {
  const batch = await captureBatch(cmds.map((c) => c.argv), LINK_DEVS);
  const entries = batch.captures.map((c, i) => {
    const m = pick(cmds[i]!.kind, c.messages);
    if (!m) throw new Error(`nothing captured for ${c.argv.join(' ')}: ${c.stderr}`);
    return { kind: cmds[i]!.kind, argv: c.argv, message: m.toString('hex') };
  });
  return { ifindex: batch.ifindex, entries };
}

export function loadLinks(): LinksFile {
  return JSON.parse(readFileSync(linksPath, 'utf8')) as LinksFile;
}

if (process.env.VPF_CAPTURE_LINKS === '1') {
  const file = await captureLinks();
  writeFileSync(linksPath, JSON.stringify(file, null, 1) + '\n');
  console.log(`captured ${file.entries.length} commands into ${linksPath}`);
}
