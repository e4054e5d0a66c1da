// Cookie layout (docs/cookies.md): every flow vpf installs carries
//   bits 63..60  kind (FlowKind)
//   bits 59..32  the guest rule's id (28 bits; 0 for flows of no rule)
//   bits 31..0   a 32-bit hash of the flow's CONTENT: table, priority, and the
//                match and action values (field ids, numbers, bytes), never
//                their printed text, so a printer change reinstalls nothing
// Equal cookie therefore means identical flow: the installer diffs desired and
// installed flows by cookie alone, and a restart with unchanged state sends
// zero flow mods (Antrea and OVN stamp a per-run round instead and must
// rewrite everything).
import type { FieldValue, Match, OfAction, OfNat } from '../ovs/openflow/flow.js';

export const FlowKind = {
  RULE: 1,
  TRAP: 2,
  DEFAULT: 3,
  LEGACY: 4,
  OTHER: 5,
} as const;

const RULE_ID_BITS = 28;
const MAX_RULE_ID = (1 << RULE_ID_BITS) - 1;

// MurmurHash3 (x86, 32-bit) over 32-bit words: cheap, stable across runs and machines.
let h = 0;
function word(k: number): void {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Names (field ids, action kinds) as words: a string's own hash, computed once. */
const NAME_WORDS = new Map<string, number>();
function name(s: string): void {
  let w = NAME_WORDS.get(s);
  if (w === undefined) {
    w = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) w = Math.imul(w ^ s.charCodeAt(i), 0x01000193);
    NAME_WORDS.set(s, w);
  }
  word(w);
}

// Tags keep adjacent parts apart (an absent mask is not a zero one, a list ends where it ends).
const NONE = 0x6e6f6e65, END = 0x656e6421;

function value(v: FieldValue | undefined): void {
  if (v === undefined) return word(NONE);
  if (typeof v === 'number') {
    // Up to 48 bits: the low and the high word.
    word(v | 0);
    return word((v / 4294967296) | 0);
  }
  word(v.length);
  for (let i = 0; i < v.length; i += 4) word((v[i]! << 24) | ((v[i + 1] ?? 0) << 16) | ((v[i + 2] ?? 0) << 8) | (v[i + 3] ?? 0));
}

const opt = (n: number | undefined) => (n === undefined ? word(NONE) : word(n));

function nat(n: OfNat): void {
  name(n.type);
  value(n.min);
  value(n.max);
  opt(n.portMin);
  opt(n.portMax);
  word((n.persistent ? 1 : 0) | (n.hash ? 2 : 0) | (n.random ? 4 : 0));
}

function actions(list: OfAction[]): void {
  for (const x of list) {
    name(x.a);
    switch (x.a) {
      case 'output':
        word(x.port);
        break;
      case 'resubmit':
        word(x.table);
        opt(x.port);
        break;
      case 'goto_table':
        word(x.table);
        break;
      case 'push_vlan':
        word(x.tpid);
        break;
      case 'push_mpls':
      case 'pop_mpls':
        word(x.ethertype);
        break;
      case 'set_field':
        // `mod` is a spelling (mod_dl_src vs set_field): the same Set-Field, so not hashed.
        name(x.field);
        value(x.value);
        value(x.mask);
        break;
      case 'mod_nw_ttl':
        word(x.ttl);
        break;
      case 'ct':
        word((x.commit ? 1 : 0) | (x.force ? 2 : 0));
        word(x.zone);
        opt(x.table);
        if (x.nat) nat(x.nat);
        else word(NONE);
        actions(x.exec ?? []);
        break;
      case 'meter':
        word(x.id);
        break;
      case 'clone':
        actions(x.actions);
        break;
      case 'set_queue':
        word(x.queue);
        break;
      case 'move':
        name(x.src);
        name(x.dst);
        opt(x.srcOfs);
        opt(x.dstOfs);
        opt(x.bits);
        break;
      case 'sample':
        word(x.probability);
        opt(x.collectorSetId);
        opt(x.obsDomainId);
        opt(x.obsPointId);
        break;
      case 'in_port':
      case 'pop_vlan':
      case 'dec_ttl':
      case 'ct_clear':
        break;
    }
  }
  word(END);
}

// A rule's flows mostly share one action list: its hash (a function of its content alone) is kept for the next flow.
let lastList: OfAction[] | undefined;
let lastListHash = 0;
function listHash(list: OfAction[]): number {
  if (list !== lastList) {
    const outer = h;
    h = 0;
    actions(list);
    lastListHash = h;
    lastList = list;
    h = outer;
  }
  return lastListHash;
}

/** The content hash of one flow (the cookie's low 32 bits). */
export function flowHash(table: number, priority: number, match: Match, acts: OfAction[]): number {
  const listWord = listHash(acts);
  h = 0;
  word(table);
  word(priority);
  for (const f of match) {
    name(f.field);
    value(f.value);
    value(f.mask);
  }
  word(END);
  word(listWord);
  // fmix32: every input bit reaches every output bit.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// The high word of the last (kind, rule id): a rule's flows come one after another, so one BigInt serves them all.
let lastHigh = -1;
let lastHighBig = 0n;

export function cookieOf(kind: number, ruleId: number, table: number, priority: number, match: Match, actions: OfAction[]): bigint {
  const high = ((kind << 28) | (ruleId & MAX_RULE_ID)) >>> 0;
  if (high !== lastHigh) {
    lastHigh = high;
    lastHighBig = BigInt(high) << 32n;
  }
  return lastHighBig | BigInt(flowHash(table, priority, match, actions));
}

export const cookieKind = (c: bigint): number => Number(c >> 60n);
export const cookieRuleId = (c: bigint): number => Number((c >> 32n) & BigInt(MAX_RULE_ID));
export function cookieKindName(c: bigint): string {
  const k = cookieKind(c);
  return (Object.entries(FlowKind).find(([, v]) => v === k)?.[0] ?? `kind${k}`).toLowerCase();
}
