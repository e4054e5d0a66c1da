// One OpenFlow flow as vpf programs it: what the translator produces and what
// ovs/ctl installs and diffs. Match and actions are VALUES (field ids, numbers,
// bytes), encoded straight to OpenFlow 1.5 (encode.ts). Text exists only for
// people and tools: matchText/actionsText/flowLine print ovs-ofctl syntax
// (ovs-fields(7), ovs-actions(7)) for logs, explain, dumps and the ovs-ofctl
// installer.
import { bytesToHex, bytesToIpv4, bytesToIpv6, maskPrefixLen } from '../../rules/addr.js';
import { fieldByName } from './oxm.js';

/**
 * Match and set_field fields (OVS canonical names, meta-flow.h), plus the two
 * VLAN TCI spellings the translators match on: `vlan_tci` (value/mask of the
 * whole TCI, CFI = present) and `dl_vlan` (a tagged VID).
 */
export type FieldName =
  | 'in_port' | 'eth_src' | 'eth_dst' | 'eth_type' | 'vlan_tci' | 'dl_vlan' | 'vlan_vid' | 'vlan_pcp'
  | 'mpls_label' | 'mpls_tc' | 'mpls_bos' | 'mpls_ttl'
  | 'ip_src' | 'ip_dst' | 'ipv6_src' | 'ipv6_dst' | 'ip_frag' | 'ip_dscp' | 'nw_ecn' | 'nw_ttl' | 'nw_proto'
  | 'tcp_src' | 'tcp_dst' | 'tcp_flags' | 'udp_src' | 'udp_dst' | 'sctp_src' | 'sctp_dst'
  | 'icmp_type' | 'icmp_code' | 'icmpv6_type' | 'icmpv6_code'
  | 'arp_op' | 'arp_spa' | 'arp_tpa' | 'arp_sha' | 'arp_tha'
  | `reg${number}` | 'metadata' | 'pkt_mark' | 'ct_state' | 'ct_zone' | 'ct_mark' | 'ct_label';

/**
 * A field value: a number for fields up to 48 bits (MACs and IPv4 addresses as
 * their big-endian integer), bytes for IPv6 addresses and ct_label (a label
 * shorter than 16 bytes is the integer it spells, right-aligned).
 */
export type FieldValue = number | Uint8Array;

/** One match field; no mask = exact. ip_frag and ct_state carry OVS's bit layout (ovs-fields(7)). */
export interface MatchField {
  field: FieldName;
  value: FieldValue;
  mask?: FieldValue;
}

/** A flow's match: fields in the order they are printed ([] = match all). */
export type Match = MatchField[];

/** ct(nat(...)): 'restore' is bare `nat`; address bounds as bytes (4 or 16), max only when it differs from min. */
export interface OfNat {
  type: 'src' | 'dst' | 'restore';
  min?: Uint8Array;
  max?: Uint8Array;
  portMin?: number;
  portMax?: number;
  persistent?: boolean;
  hash?: boolean;
  random?: boolean;
}

/** One action (ovs-actions(7)); `goto_table` is the Goto-Table instruction and must come last. An empty list is `drop`. */
export type OfAction =
  | { a: 'output'; port: number }
  | { a: 'in_port' }
  | { a: 'resubmit'; table: number; port?: number }
  | { a: 'goto_table'; table: number }
  | { a: 'push_vlan'; tpid: number }
  | { a: 'pop_vlan' }
  | { a: 'push_mpls'; ethertype: number }
  | { a: 'pop_mpls'; ethertype: number }
  /** `mod`: printed as mod_dl_src/mod_dl_dst/mod_nw_src/mod_nw_dst (the same Set-Field on the wire). */
  | { a: 'set_field'; field: FieldName; value: FieldValue; mask?: FieldValue; mod?: boolean }
  | { a: 'mod_nw_ttl'; ttl: number }
  | { a: 'dec_ttl' }
  | { a: 'ct'; commit?: boolean; force?: boolean; zone: number; nat?: OfNat; exec?: OfAction[]; table?: number }
  | { a: 'ct_clear' }
  | { a: 'meter'; id: number }
  | { a: 'clone'; actions: OfAction[] }
  | { a: 'set_queue'; queue: number }
  /**
   * move: copy `bits` bits (default: src's whole width) from bit `srcOfs` of src to bit `dstOfs` of dst,
   * bit 0 the least significant (ovs-actions(7) move). Offsets of 0 and a `bits` that is src's whole
   * width from bit 0 are left out, the form parse.ts reads a dump back as.
   */
  | { a: 'move'; src: FieldName; dst: FieldName; srcOfs?: number; dstOfs?: number; bits?: number }
  | { a: 'sample'; probability: number; collectorSetId?: number; obsDomainId?: number; obsPointId?: number };

export interface OfFlow {
  table: number;
  priority: number;
  /** Identifies the rule and flow kind (translator/cookie.ts); unique per desired flow. */
  cookie: bigint;
  match: Match;
  actions: OfAction[];
}

/** An OpenFlow meter (OFPT_METER_MOD), installed outside bundles: OVS cannot bundle meter mods. */
export interface OfMeter {
  id: number;
  /** ovs-ofctl add-meter text after `meter=ID,`, e.g. "kbps burst stats bands=type=drop rate=1000 burst_size=64". */
  spec: string;
}

// ---- printers: ovs-ofctl text, for people and tools only ----

/** Names a match is printed with (ovs-fields(7) aliases the translators have always printed). */
const MATCH_NAME: Partial<Record<FieldName, string>> = { eth_src: 'dl_src', eth_dst: 'dl_dst', eth_type: 'dl_type', ip_src: 'nw_src', ip_dst: 'nw_dst', ip_frag: 'nw_frag' };

type Style = 'int' | 'hex' | 'mac' | 'ipv4' | 'ipv6' | 'label' | 'frag' | 'ct_state' | 'tci';
const STYLE: Partial<Record<FieldName, Style>> = {
  eth_src: 'mac', eth_dst: 'mac', arp_sha: 'mac', arp_tha: 'mac',
  ip_src: 'ipv4', ip_dst: 'ipv4', arp_spa: 'ipv4', arp_tpa: 'ipv4',
  ipv6_src: 'ipv6', ipv6_dst: 'ipv6', ct_label: 'label',
  eth_type: 'hex', tcp_flags: 'hex', ip_frag: 'frag', ct_state: 'ct_state', vlan_tci: 'tci',
};
export const fieldStyle = (f: FieldName): Style => STYLE[f] ?? 'int';

const num = (v: FieldValue): number => (typeof v === 'number' ? v : 0);
const bytes = (v: FieldValue): Uint8Array => (typeof v === 'number' ? new Uint8Array(0) : v);
const hex = (n: number) => `0x${n.toString(16)}`;

export function macText(n: number): string {
  let s = '';
  for (let i = 5; i >= 0; i--) {
    const b = Math.floor(n / 2 ** (8 * i)) & 0xff;
    s += (i < 5 ? ':' : '') + (b < 16 ? '0' : '') + b.toString(16);
  }
  return s;
}
export const ipv4Text = (n: number): string => `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;

/** mf_from_frag_string's names for (value, mask) of ip_frag (ANY = 1, LATER = 2). */
export const FRAG_NAMES: [string, number, number][] = [['no', 0, 3], ['yes', 1, 1], ['first', 1, 3], ['later', 3, 3], ['not_later', 0, 2]];
/** OVS ct_state bits in printing order (ovs-fields(7) ct_state). */
export const CT_STATE_BITS: [string, number][] = [['new', 0x01], ['est', 0x02], ['rel', 0x04], ['rpl', 0x08], ['inv', 0x10], ['trk', 0x20], ['snat', 0x40], ['dnat', 0x80]];

/** A value (and mask) as the translators print it in a match. */
function matchValueText(f: MatchField): string {
  const { value: v, mask: m } = f;
  switch (fieldStyle(f.field)) {
    case 'int':
      return m === undefined ? String(num(v)) : `${hex(num(v))}/${hex(num(m))}`;
    case 'hex':
      return m === undefined ? hex(num(v)) : `${hex(num(v))}/${hex(num(m))}`;
    case 'tci':
      return `0x${num(v).toString(16).padStart(4, '0')}/0x${num(m ?? 0xffff).toString(16).padStart(4, '0')}`;
    case 'mac':
      return m === undefined ? macText(num(v)) : `${macText(num(v))}/${macText(num(m))}`;
    case 'ipv4':
      return m === undefined ? ipv4Text(num(v)) : `${ipv4Text(num(v))}/${ipv4Text(num(m))}`;
    case 'ipv6': {
      if (m === undefined) return bytesToIpv6(bytes(v));
      // ovs-ofctl reads `/N` before a mask address (packets.c ipv6_parse_masked_len): a contiguous mask is its length.
      const len = maskPrefixLen(bytes(m));
      return `${bytesToIpv6(bytes(v))}/${len >= 0 ? len : bytesToIpv6(bytes(m))}`;
    }
    case 'label':
      return m === undefined ? `0x${bytesToHex(bytes(v))}` : `0x${bytesToHex(bytes(v))}/0x${bytesToHex(bytes(m))}`;
    case 'frag': {
      const x = FRAG_NAMES.find(([, fv, fm]) => fv === num(v) && fm === num(m ?? 3));
      return x ? x[0] : `${hex(num(v))}/${hex(num(m ?? 3))}`;
    }
    case 'ct_state': {
      let s = '';
      for (const [name, bit] of CT_STATE_BITS) if (num(m ?? 0xff) & bit) s += (num(v) & bit ? '+' : '-') + name;
      return s;
    }
  }
}

export const matchFieldText = (f: MatchField): string => `${MATCH_NAME[f.field] ?? f.field}=${matchValueText(f)}`;

/** The match as ovs-ofctl text ("" = match all). */
export function matchText(m: Match): string {
  let s = '';
  for (let i = 0; i < m.length; i++) s += (i ? ',' : '') + matchFieldText(m[i]!);
  return s;
}

/** A set_field value: integers in decimal, or hex/hex with a mask; addresses as addresses (masks too). */
function setValueText(field: FieldName, v: FieldValue, m: FieldValue | undefined): string {
  const one = (x: FieldValue, masked: boolean): string => {
    switch (fieldStyle(field)) {
      case 'mac':
        return macText(num(x));
      case 'ipv4':
        return ipv4Text(num(x));
      case 'ipv6':
        return bytesToIpv6(bytes(x));
      case 'label':
        return `0x${bytesToHex(bytes(x))}`;
      default:
        return masked ? hex(num(x)) : String(num(x));
    }
  };
  return m === undefined ? one(v, false) : `${one(v, true)}/${one(m, true)}`;
}

const MOD_NAME: Partial<Record<FieldName, string>> = { eth_src: 'mod_dl_src', eth_dst: 'mod_dl_dst', ip_src: 'mod_nw_src', ip_dst: 'mod_nw_dst' };

/**
 * Fields whose matches are not maskable but whose bits a set may write: ovs-ofctl's set_field refuses a mask
 * on them ("invalid mask"), its load: takes a bit range and sends the same masked Set-Field (ovs-actions(7)).
 */
export const LOAD_NAME: Partial<Record<FieldName, string>> = { ip_dscp: 'OXM_OF_IP_DSCP', nw_ecn: 'OXM_OF_IP_ECN', nw_ttl: 'NXM_NX_IP_TTL' };

/** A masked set of a LOAD_NAME field as load:VALUE->NAME[lo..hi]; its mask must be one run of bits. */
function loadText(name: string, value: number, mask: number): string {
  const lo = Math.log2(mask & -mask);
  const hi = 31 - Math.clz32(mask);
  if (mask !== ((2 ** (hi + 1) - 1) & ~(2 ** lo - 1))) throw new Error(`load: mask ${hex(mask)} is not one run of bits`);
  return `load:${hex(value >>> lo)}->${name}[${lo === hi ? lo : `${lo}..${hi}`}]`;
}

/**
 * move as OVS prints it (nx-match.c nxm_format_reg_move, meta-flow.c mf_format_subfield): NXM/OXM
 * names, `[]` for a whole field, `[i]` for one bit, else `[lo..hi]`. A field with no NXM name in
 * oxm.ts prints under its own name, which ovs-ofctl reads too (it then checks the widths itself).
 */
function moveText(x: Extract<OfAction, { a: 'move' }>): string {
  const src = fieldByName(x.src), dst = fieldByName(x.dst);
  const n = x.bits ?? src?.bits;
  const sub = (name: FieldName, width: number | undefined, nxm: string | undefined, ofs: number) =>
    (nxm ?? name) + (n === undefined || (ofs === 0 && n === width) ? '[]' : n === 1 ? `[${ofs}]` : `[${ofs}..${ofs + n - 1}]`);
  return `move:${sub(x.src, src?.bits, src?.nxm, x.srcOfs ?? 0)}->${sub(x.dst, dst?.bits, dst?.nxm, x.dstOfs ?? 0)}`;
}

function natText(n: OfNat): string {
  if (n.type === 'restore') return 'nat';
  const addr = (b: Uint8Array) => (b.length === 16 ? bytesToIpv6(b) : bytesToIpv4(b));
  let range = '';
  if (n.min) range = addr(n.min) + (n.max ? `-${addr(n.max)}` : '');
  // An IPv6 range with ports is bracketed (ovs-actions(7) nat): `[a]-[b]:p`.
  if (n.portMin !== undefined && n.min?.length === 16) range = `[${addr(n.min)}]${n.max ? `-[${addr(n.max)}]` : ''}`;
  if (n.portMin !== undefined) range += `:${n.portMin}${n.portMax !== undefined ? `-${n.portMax}` : ''}`;
  const flags = [n.persistent ? 'persistent' : '', n.hash ? 'hash' : '', n.random ? 'random' : ''].filter(Boolean);
  return `nat(${n.type}${range ? `=${range}` : ''}${flags.map((f) => `,${f}`).join('')})`;
}

export function actionText(x: OfAction): string {
  switch (x.a) {
    case 'output':
      return `output:${x.port}`;
    case 'in_port':
      return 'in_port';
    case 'resubmit':
      return `resubmit(${x.port ?? ''},${x.table})`;
    case 'goto_table':
      return `goto_table:${x.table}`;
    case 'push_vlan':
      return `push_vlan:${hex(x.tpid)}`;
    case 'pop_vlan':
      return 'pop_vlan';
    case 'push_mpls':
      return `push_mpls:${hex(x.ethertype)}`;
    case 'pop_mpls':
      return `pop_mpls:${hex(x.ethertype)}`;
    case 'set_field':
      if (x.mod && x.mask === undefined && MOD_NAME[x.field]) return `${MOD_NAME[x.field]}:${setValueText(x.field, x.value, undefined)}`;
      if (x.mask !== undefined && LOAD_NAME[x.field]) return loadText(LOAD_NAME[x.field]!, num(x.value) & num(x.mask), num(x.mask));
      return `set_field:${setValueText(x.field, x.value, x.mask)}->${x.field}`;
    case 'mod_nw_ttl':
      return `mod_nw_ttl:${x.ttl}`;
    case 'dec_ttl':
      return 'dec_ttl';
    case 'ct': {
      const args: string[] = [];
      if (x.commit) args.push(x.force ? 'commit,force' : 'commit');
      args.push(`zone=${x.zone}`);
      if (x.nat) args.push(natText(x.nat));
      if (x.exec?.length) args.push(`exec(${actionsText(x.exec)})`);
      if (x.table !== undefined) args.push(`table=${x.table}`);
      return `ct(${args.join(',')})`;
    }
    case 'ct_clear':
      return 'ct_clear';
    case 'meter':
      return `meter:${x.id}`;
    case 'clone':
      return `clone(${actionsText(x.actions)})`;
    case 'set_queue':
      return `set_queue:${x.queue}`;
    case 'move':
      return moveText(x);
    case 'sample': {
      const opt = (k: string, v: number | undefined) => (v ? `,${k}=${v}` : '');
      return `sample(probability=${x.probability}${opt('collector_set_id', x.collectorSetId)}${opt('obs_domain_id', x.obsDomainId)}${opt('obs_point_id', x.obsPointId)})`;
    }
  }
}

/** The actions as ovs-ofctl text ("drop" for none). */
export function actionsText(list: OfAction[]): string {
  if (!list.length) return 'drop';
  let s = '';
  for (let i = 0; i < list.length; i++) s += (i ? ',' : '') + actionText(list[i]!);
  return s;
}

/** The flow with its match and actions as text (what an ovs-ofctl dump shows), for tests and logs. */
export const flowText = (f: OfFlow): { table: number; priority: number; cookie: bigint; match: string; actions: string } => ({ table: f.table, priority: f.priority, cookie: f.cookie, match: matchText(f.match), actions: actionsText(f.actions) });

/** The line `ovs-ofctl add-flow(s)` accepts for a flow. */
export function flowLine(f: OfFlow): string {
  return textFlowLine({ table: f.table, priority: f.priority, cookie: f.cookie, match: matchText(f.match), actions: actionsText(f.actions) });
}

/** The same line for a flow known only as text (an ovs-ofctl dump). */
export function textFlowLine(f: { table: number; priority: number; cookie: bigint; match: string; actions: string }): string {
  const head = `table=${f.table},priority=${f.priority},cookie=0x${f.cookie.toString(16)}`;
  return `${head}${f.match ? ',' + f.match : ''},actions=${f.actions}`;
}

export function meterLine(m: OfMeter): string {
  return `meter=${m.id},${m.spec}`;
}
