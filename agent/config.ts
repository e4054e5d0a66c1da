// vpfd's configuration: a JSON file (docs/operations.md lists every key) with
// command-line flags on top. Validation is strict and names the offending key,
// because a typo in an offload setting must not be ignored silently.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Quotas {
  /** Filters a VM may install (ENOSPC past it). */
  rulesPerVm: number;
  /** OpenFlow flows a VM's rules may expand to (ENOSPC past it). */
  flowsPerVm: number;
  /** Channel messages per second per VM before requests are answered EBUSY. */
  msgsPerSec: number;
}

export interface VpfdConfig {
  stateDir: string;
  /** OVSDB socket, `unix:/path`. */
  ovsdb: string;
  /** Where ovs-vswitchd keeps its `<bridge>.mgmt` sockets (OVS_RUNDIR). */
  ovsRundir: string;
  datapathType: 'system' | 'netdev';
  /** Open_vSwitch other_config:hw-offload; undefined = leave OVS as it is. */
  hwOffload: boolean | undefined;
  tcPolicy: 'none' | 'skip_sw' | 'skip_hw' | undefined;
  providerBridge: string | undefined;
  /** other_config:vlan-limit. Unset suits legacy 802.1ad port VLANs best (docs/legacy.md). */
  vlanLimit: number | undefined;
  quotas: Quotas;
  reconcileIntervalMs: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
}

export const DEFAULT_CONFIG: VpfdConfig = {
  stateDir: '/var/lib/vpf',
  ovsdb: 'unix:/var/run/openvswitch/db.sock',
  ovsRundir: '/var/run/openvswitch',
  datapathType: 'system',
  hwOffload: undefined,
  tcPolicy: undefined,
  providerBridge: undefined,
  vlanLimit: undefined,
  quotas: { rulesPerVm: 10_000, flowsPerVm: 100_000, msgsPerSec: 5_000 },
  reconcileIntervalMs: 30_000,
  logLevel: 'info',
};

export class ConfigError extends Error {}

type Check = (v: unknown, key: string) => unknown;
const bad = (key: string, want: string): never => {
  throw new ConfigError(`config: ${key}: expected ${want}`);
};
const str: Check = (v, k) => (typeof v === 'string' && v.length > 0 ? v : bad(k, 'a non-empty string'));
const bool: Check = (v, k) => (typeof v === 'boolean' ? v : bad(k, 'true or false'));
const posInt: Check = (v, k) => (Number.isInteger(v) && (v as number) > 0 ? v : bad(k, 'a positive integer'));
const oneOf =
  (...xs: string[]): Check =>
  (v, k) =>
    xs.includes(v as string) ? v : bad(k, xs.map((x) => `"${x}"`).join(' or '));

const TOP: Record<string, Check> = {
  stateDir: str,
  ovsdb: (v, k) => (typeof v === 'string' && v.startsWith('unix:') ? v : bad(k, 'a "unix:/path" socket')),
  ovsRundir: str,
  datapathType: oneOf('system', 'netdev'),
  hwOffload: bool,
  tcPolicy: oneOf('none', 'skip_sw', 'skip_hw'),
  providerBridge: str,
  vlanLimit: (v, k) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 2 ? v : bad(k, '0, 1 or 2')),
  reconcileIntervalMs: posInt,
  logLevel: oneOf('trace', 'debug', 'info', 'warn', 'error'),
};
const QUOTAS: Record<string, Check> = { rulesPerVm: posInt, flowsPerVm: posInt, msgsPerSec: posInt };

/** Merge a parsed JSON object over `base`, rejecting unknown keys and wrong types. */
export function applyConfig(base: VpfdConfig, json: unknown): VpfdConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError('config: expected a JSON object');
  const out: VpfdConfig = { ...base, quotas: { ...base.quotas } };
  for (const [k, v] of Object.entries(json)) {
    if (k === 'quotas') {
      if (typeof v !== 'object' || v === null) bad('quotas', 'an object');
      for (const [qk, qv] of Object.entries(v as object)) {
        const check = QUOTAS[qk];
        if (!check) throw new ConfigError(`config: unknown key quotas.${qk}`);
        (out.quotas as unknown as Record<string, unknown>)[qk] = check(qv, `quotas.${qk}`);
      }
      continue;
    }
    const check = TOP[k];
    if (!check) throw new ConfigError(`config: unknown key ${k}`);
    (out as unknown as Record<string, unknown>)[k] = check(v, k);
  }
  return out;
}

export function loadConfigFile(path: string, base: VpfdConfig = DEFAULT_CONFIG): VpfdConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`config: cannot read ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config: ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return applyConfig(base, json);
}

/** Command-line flags and the config key each sets (docs/operations.md lists the keys). */
const FLAG_KEYS: Record<string, [keyof VpfdConfig, (s: string) => unknown, string]> = {
  'state-dir': ['stateDir', String, 'DIR'],
  ovsdb: ['ovsdb', (s) => (s.startsWith('unix:') ? s : `unix:${s}`), '[unix:]PATH'],
  'ovs-rundir': ['ovsRundir', String, 'DIR'],
  datapath: ['datapathType', String, 'system|netdev'],
  'hw-offload': ['hwOffload', (s) => s === 'true', 'true|false'],
  'tc-policy': ['tcPolicy', String, 'none|skip_sw|skip_hw'],
  'provider-bridge': ['providerBridge', String, 'BRIDGE'],
  'vlan-limit': ['vlanLimit', Number, '0|1|2'],
  'reconcile-interval-ms': ['reconcileIntervalMs', Number, 'MS'],
  'log-level': ['logLevel', String, 'trace|debug|info|warn|error'],
};

/** `vpfd --help`: every flag with its default, like the usage of the tools vpfd sits beside. */
export function usage(): string {
  const flags = Object.entries(FLAG_KEYS).map(([flag, [key, , value]]) => {
    const def = DEFAULT_CONFIG[key];
    return (`  --${flag} ${value}`.padEnd(48) + (def === undefined ? '' : `default ${String(def)}`)).trimEnd();
  });
  return [
    'usage: vpfd [--config FILE] [FLAG VALUE]...',
    '       vpfd --help | --version',
    '',
    'The per-hypervisor vpf daemon. Flags override the JSON config file',
    '(--config, or $VPF_CONFIG); docs/operations.md lists every key.',
    '',
    '  --config FILE'.padEnd(48) + 'JSON config file',
    ...flags,
    '',
  ].join('\n');
}

/** package.json's version, found from dist/agent/ or (vite-node) agent/. */
export function packageVersion(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, '..', '..', 'package.json'), join(here, '..', 'package.json')]) {
    try {
      return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    } catch {
      // next candidate
    }
  }
  return 'unknown';
}

/** What the command line asks for: --help or --version win over everything else, as in iproute2 and OVS tools. */
export function commandOf(argv: string[]): 'help' | 'version' | 'run' {
  if (argv.some((a) => a === '--help' || a === '-h')) return 'help';
  if (argv.some((a) => a === '--version' || a === '-V')) return 'version';
  return 'run';
}

/** Flags `--state-dir X --ovsdb Y --datapath netdev ...` override the file; `--config F` names it. */
export function configFromArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): VpfdConfig {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = argv[i + 1];
      if (v === undefined) throw new ConfigError(`${a} needs a value`);
      flags.set(a.slice(2), v);
      i++;
    }
  }
  let cfg = DEFAULT_CONFIG;
  const file = flags.get('config') ?? env.VPF_CONFIG;
  if (file) cfg = loadConfigFile(file, cfg);
  const over: Record<string, unknown> = {};
  for (const [flag, value] of flags) {
    if (flag === 'config') continue;
    const spec = FLAG_KEYS[flag];
    if (!spec) throw new ConfigError(`unknown flag --${flag}`);
    over[spec[0]] = spec[1](value);
  }
  return applyConfig(cfg, over);
}
