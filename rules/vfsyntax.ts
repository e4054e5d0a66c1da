// `ip link set DEV vf N ...` syntax (ip/iplink.c iplink_parse_vf, iproute2 6.1);
// what `ip link show` prints is the real ip's (vpfctl vf show runs it). Error
// texts are iproute2's where it has one, without its "Error: " prefix.
import { Errno, VpfError, attempt, type Result } from './errors.js';
import { VfLinkState, VLAN_PROTO_8021AD, VLAN_PROTO_8021Q, type VfRequest } from './vf.js';

/** lib/utils.c matches(): the word may abbreviate the keyword ("ma" is "mac"). */
const matches = (word: string, keyword: string) => keyword.startsWith(word);

const invarg = (msg: string, arg: string, errno: number = Errno.EINVAL) => new VpfError(errno, `argument "${arg}" is wrong: ${msg}`, arg);
const incomplete = () => new VpfError(Errno.EINVAL, 'Command line is not complete. Try option "help"');

/** lib/utils.c get_unsigned (strtoul base 0: decimal, 0x hex, leading-0 octal), u32. */
function getUnsigned(s: string): number | undefined {
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = parseInt(s.slice(2), 16);
  else if (/^0[0-7]*$/.test(s)) v = parseInt(s, 8);
  else if (/^[1-9][0-9]*$/.test(s)) v = Number(s);
  else return undefined;
  return v <= 0xffffffff ? v : undefined;
}

/** get_integer: a signed int (the `vf` number). */
function getInteger(s: string): number | undefined {
  const neg = s.startsWith('-');
  const v = getUnsigned(neg ? s.slice(1) : s);
  if (v === undefined || v > 0x7fffffff) return undefined;
  return neg ? -v : v;
}

/** lib/ll_addr.c ll_addr_a2n for an Ethernet PF: hex bytes separated by ':', exactly 6 of them. */
function parseLladdr(arg: string): string {
  if (arg.includes('.')) throw new VpfError(Errno.EINVAL, `Invalid address length 4 - must be 6 bytes`, 'mac');
  const parts = arg.split(':');
  const bytes: number[] = [];
  for (const p of parts.slice(0, 32)) {
    const m = /^\s*(?:0[xX])?([0-9a-fA-F]+)/.exec(p);
    const v = m ? parseInt(m[1]!, 16) : NaN;
    if (!m || v > 255) throw new VpfError(Errno.EINVAL, `"${p}" is invalid lladdr.`, 'mac');
    bytes.push(v);
  }
  if (bytes.length !== 6) throw new VpfError(Errno.EINVAL, `Invalid address length ${bytes.length} - must be 6 bytes`, 'mac');
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** parse_on_off → parse_one_of(msg, val, {"off","on"}). */
function onOff(key: string, val: string): boolean {
  if (matches(val, 'off')) return false;
  if (matches(val, 'on')) return true;
  throw new VpfError(Errno.EINVAL, `argument of "${key}" must be one of "off", "on", not "${val}"`, key);
}

/** lib/ll_proto.c ll_proto_a2n for the two VLAN TPIDs (names, case-insensitive, or a number). */
function vlanProto(arg: string): number {
  const byName: Record<string, number> = { '802.1q': VLAN_PROTO_8021Q, '802.1ad': VLAN_PROTO_8021AD };
  let p = byName[arg.toLowerCase()];
  if (p === undefined) {
    const n = getUnsigned(arg);
    if (n === undefined || n > 0xffff) throw invarg('protocol is invalid', arg);
    p = n;
  }
  if (p !== VLAN_PROTO_8021Q && p !== VLAN_PROTO_8021AD) throw invarg('Invalid "vlan protocol" value - supported 802.1Q, 802.1ad', arg);
  return p;
}

export interface VfParseOpts {
  /**
   * The VF's current rates: iproute2 dumps links to fill the one of
   * min_tx_rate/max_tx_rate the command leaves out (ipaddr_get_vf_rate). Absent: 0.
   */
  currentRate?: (vf: number) => { min: number; max: number } | undefined;
}

/**
 * Parses `vf N [mac X] [vlan V [qos Q] [proto 802.1Q|802.1ad]] [rate R]
 * [max_tx_rate M] [min_tx_rate M] [spoofchk on|off] [trust on|off]
 * [state auto|enable|disable] [query_rss on|off]` from args[i] ("vf"); returns
 * the request and the index after the clause. Keys are inserted in command-line
 * order, with `rate` (IFLA_VF_RATE) last, as iproute2 orders the attributes.
 */
function parseClause(args: string[], start: number, opts: VfParseOpts): { req: VfRequest; next: number } {
  let i = start + 1;
  const vfArg = args[i];
  if (vfArg === undefined) throw incomplete();
  const vf = getInteger(vfArg);
  if (vf === undefined) throw invarg('Invalid "vf" value', vfArg);
  i++;
  // iproute2 scans ahead for the new rate API before parsing (the scan runs to the end of argv).
  const rest = args.slice(i);
  const newRateApi = rest.some((w) => matches(w, 'max_tx_rate') || matches(w, 'min_tx_rate'));
  const overrideLegacy = rest.some((w) => matches(w, 'max_tx_rate'));
  let min: number | undefined;
  let max: number | undefined;
  const req: VfRequest = { vf };
  const value = () => {
    i++;
    const v = args[i];
    if (v === undefined) throw incomplete();
    return v;
  };
  const first = i;
  for (; i < args.length; i++) {
    const w = args[i]!;
    if (matches(w, 'mac')) {
      req.mac = parseLladdr(value());
    } else if (matches(w, 'vlan')) {
      const vArg = value();
      const vlan = getUnsigned(vArg);
      if (vlan === undefined || vlan > 4095) throw invarg('Invalid "vlan" value', vArg);
      let qos = 0;
      let proto = VLAN_PROTO_8021Q;
      if (args[i + 1] !== undefined && matches(args[i + 1]!, 'qos')) {
        i++;
        const q = value();
        const n = getUnsigned(q);
        if (n === undefined) throw invarg('Invalid "qos" value', q);
        qos = n;
      }
      if (args[i + 1] !== undefined && matches(args[i + 1]!, 'proto')) {
        i++;
        proto = vlanProto(value());
      }
      if (proto !== VLAN_PROTO_8021Q && args[i + 1] !== undefined && matches(args[i + 1]!, 'vlan')) {
        // iproute2 would send a second IFLA_VF_VLAN_INFO; the kernel refuses it (MAX_VLAN_LIST_LEN 1).
        throw new VpfError(Errno.EOPNOTSUPP, 'one vlan per vf clause: the kernel takes a single IFLA_VF_VLAN_INFO', 'vlan');
      }
      // A repeated 802.1Q `vlan` is a repeated IFLA_VF_VLAN, of which the kernel keeps the last.
      req.vlan = { vlan, qos, proto };
    } else if (matches(w, 'rate')) {
      const r = value();
      const n = getUnsigned(r);
      if (n === undefined) throw invarg('Invalid "rate" value', r);
      if (!newRateApi) req.txRate = n;
      else if (!overrideLegacy) max = n;
    } else if (matches(w, 'max_tx_rate')) {
      const r = value();
      const n = getUnsigned(r);
      if (n === undefined) throw invarg('Invalid "max tx rate" value', r);
      max = n;
    } else if (matches(w, 'min_tx_rate')) {
      const r = value();
      const n = getUnsigned(r);
      if (n === undefined) throw invarg('Invalid "min tx rate" value', r);
      min = n;
    } else if (matches(w, 'spoofchk')) {
      req.spoofchk = onOff('spoofchk', value());
    } else if (matches(w, 'query_rss')) {
      req.rssQuery = onOff('query_rss', value());
    } else if (matches(w, 'trust')) {
      req.trust = onOff('trust', value());
    } else if (matches(w, 'state')) {
      const s = value();
      if (matches(s, 'auto')) req.linkState = VfLinkState.AUTO;
      else if (matches(s, 'enable')) req.linkState = VfLinkState.ENABLE;
      else if (matches(s, 'disable')) req.linkState = VfLinkState.DISABLE;
      else throw invarg('Invalid "state" value', s);
    } else if (matches(w, 'node_guid') || matches(w, 'port_guid')) {
      throw new VpfError(Errno.EOPNOTSUPP, `${w}: InfiniBand GUIDs do not apply to an Ethernet PF`, w);
    } else break;
  }
  if (i === first) throw incomplete();
  if (newRateApi) {
    const cur = opts.currentRate?.(vf);
    const mn = min ?? cur?.min ?? 0;
    const mx = max ?? cur?.max ?? 0;
    if (mx && mn > mx) throw new VpfError(Errno.EINVAL, `Invalid min_tx_rate ${mn} - must be <= max_tx_rate ${mx}`, 'min_tx_rate');
    req.rate = { min: mn, max: mx };
  }
  return { req, next: i };
}

/** One `vf N ...` clause (args[0] is "vf"); anything after the clause is an error. */
export function parseVfArgs(args: string[], opts: VfParseOpts = {}): Result<VfRequest> {
  return attempt(() => {
    if (args[0] !== 'vf') throw new VpfError(Errno.EINVAL, `expected "vf", got "${args[0] ?? ''}"`);
    const { req, next } = parseClause(args, 0, opts);
    if (next < args.length) throw new VpfError(Errno.EINVAL, `either "dev" is duplicate, or "${args[next]}" is a garbage.`, args[next]);
    return req;
  });
}

/** Several clauses (`vf 0 mac .. vf 1 vlan ..`), one request each, in order: iproute2 sends one IFLA_VFINFO_LIST per clause. */
export function parseVfCommand(args: string[], opts: VfParseOpts = {}): Result<VfRequest[]> {
  return attempt(() => {
    const out: VfRequest[] = [];
    let i = 0;
    while (i < args.length) {
      if (args[i] !== 'vf') throw new VpfError(Errno.EINVAL, `either "dev" is duplicate, or "${args[i]}" is a garbage.`, args[i]);
      const { req, next } = parseClause(args, i, opts);
      out.push(req);
      i = next;
    }
    if (!out.length) throw incomplete();
    return out;
  });
}
