// What the translator sends to the guest's software beyond a rule's own
// match, as the property test and the offload tier's oracles model it
// (each trap is the rule's own, at its place; software then decides).
import type { FlowerMatch, FlowerRule } from '../../../rules/model.js';
import type { Emit, Packet } from '../../../rules/packet.js';
import type { OfFlow } from '../../../ovs/openflow/flow.js';
import { keysMatch, protocolMatches } from '../../../rules/classify/match.js';
import { cookieRuleId } from '../../../translator/cookie.js';
import { DEFAULT_MAX_FLOWS_PER_RULE, type Translation } from '../../../translator/index.js';
import { translateMatch } from '../../../translator/match.js';
import { HANDOFF_TABLE, impliedIpProto, PENDING_BIT, SAVED_BITS_REG, VALUE_BITS_REG } from '../../../translator/actions.js';

export const isTpid = (t: number | undefined) => t === 0x8100 || t === 0x88a8;

/**
 * A filter on a VLAN protocol (the declared one, on a VM that declares) with a
 * non-TPID vlan_ethtype (flower's type after every tag) traps frames of two or
 * more tags that carry its outer VID/PCP, offloaded or not: OpenFlow sees only
 * the second tag's TPID there (translator deeperTags). Without a declaration
 * OpenFlow cannot tell the outer TPID, so either is taken.
 */
export function deeperTagTrap(r: FlowerRule, q: Packet, outerTpid: number | undefined): boolean {
  const m = r.match;
  if (!isTpid(r.protocol) || (outerTpid !== undefined && r.protocol !== outerTpid)) return false;
  if (m.vlanEthType === undefined || isTpid(m.vlanEthType) || m.numOfVlans !== undefined) return false;
  const [o, inner] = q.vlans;
  return !!o && !!inner && (outerTpid === undefined || o.tpid === outerTpid) && (m.vlanId === undefined || o.vid === m.vlanId) && (m.vlanPrio === undefined || o.pcp === m.vlanPrio);
}

/** A rule's flow whose one action is the hand-off of chains past 0 (a variant that leaves the packet to software). */
const onlyHandsOff = (f: OfFlow) => f.actions.length === 1 && f.actions[0]!.a === 'resubmit' && f.actions[0]!.table === HANDOFF_TABLE;

/**
 * The rules whose flows hand a packet off when an earlier rule deferred mirror
 * copies (reg13 bit 15; docs/mapping.md, Misses after side effects): a later
 * rule that changes the packet, copies or meters and may go on. Read from the
 * translation, so that the oracle hands off where the flows do; that this is
 * exact is the property test's "hardware, then software" check.
 */
export function pendingHandOffs(t: Translation, rules: FlowerRule[]): (r: FlowerRule, q: Packet, emits: readonly Emit[]) => boolean {
  const ids = new Set<number>();
  for (const f of t.flows) {
    const pending = f.match.some((m) => m.field === VALUE_BITS_REG && m.value === PENDING_BIT && m.mask === PENDING_BIT);
    if (pending && onlyHandsOff(f)) ids.add(cookieRuleId(f.cookie));
  }
  const handsOff = new Set(rules.filter((_, i) => ids.has(i + 1)));
  return (r, q, emits) => handsOff.has(r) && emits.some((e) => e.copy) && protocolMatches(r, q) && keysMatch(r.match, q);
}

/**
 * The rules whose flows hand a packet off untouched when an earlier rule on its
 * path took a save slot they need (reg15; translator savingVariants): the
 * taken slot's restore would not put back what they write, or it holds a tag
 * change. Read from the translation: a flow matching reg15 whose one action
 * hands off. The slots a packet's path took are each executed rule's save
 * slots, tracked per classify pass (its packet object is one per pass).
 */
export function takenSlotHandOffs(t: Translation, rules: FlowerRule[]): (r: FlowerRule, q: Packet) => boolean {
  const slots = new Map<number, number>();
  const handOffs = new Map<number, { value: number; mask: number }[]>();
  for (const f of t.flows) {
    const id = cookieRuleId(f.cookie);
    const m = f.match.find((x) => x.field === SAVED_BITS_REG);
    let s = slots.get(id) ?? 0;
    if (m) s |= Number(m.mask);
    for (const a of f.actions) if (a.a === 'set_field' && a.field === SAVED_BITS_REG) s |= Number(a.value);
    if (s) slots.set(id, s);
    if (m && onlyHandsOff(f)) handOffs.set(id, [...(handOffs.get(id) ?? []), { value: Number(m.value), mask: Number(m.mask) }]);
  }
  const ids = new Map(rules.map((r, i) => [r, i + 1]));
  const taken = new WeakMap<Packet, number>();
  return (r, q) => {
    const id = ids.get(r)!;
    if (!protocolMatches(r, q) || !keysMatch(r.match, q)) return false;
    const now = taken.get(q) ?? 0;
    if (handOffs.get(id)?.some((h) => (now & h.mask) === h.value)) return true;
    taken.set(q, now | (slots.get(id) ?? 0));
    return false;
  };
}

/** An IPv6 later fragment of an ip_proto rule: OVS sees nw_proto 44 there, so the rule's flows trap it. */
const ipv6LaterFragmentTrap = (r: FlowerRule, m: FlowerMatch, p: Packet) =>
  r.protocol === 0x86dd && r.match.ipProto !== undefined && p.ip?.version === 6 && p.ip.frag === 'later' && p.vlans.length === 0 && keysMatch({ ...m, ipProto: undefined }, p);

/**
 * A packet of another protocol than an offloaded filter's port rewrite implies (no ip_proto on the filter):
 * the rule's flows take only that protocol's packets and trap the rest, IPv6 later fragments (nw_proto 44) too.
 */
function otherProtocolTrap(r: FlowerRule, p: Packet): boolean {
  const proto = impliedIpProto(r);
  if (proto === undefined || !protocolMatches(r, p) || !keysMatch(r.match, p)) return false;
  return p.ip?.proto !== proto || (p.ip.version === 6 && p.ip.frag === 'later');
}

/**
 * A frame of two or more tags under an offloaded `protocol all` filter on `num_of_vlans 1` without vlan_ethtype,
 * with the rule's other keys (its outer VID/PCP, MACs): OpenFlow sees a tag there too, so the rule traps it.
 */
function multiTagTrap(r: FlowerRule, p: Packet): boolean {
  const m = r.match;
  if (r.protocol !== 0x0003 || m.numOfVlans !== 1 || m.vlanEthType !== undefined || p.vlans.length < 2) return false;
  return keysMatch({ ...m, numOfVlans: p.vlans.length }, p);
}

/** Keys OpenFlow cannot state: a trap drops them (translator/match.ts, superset mode). */
const inexpressible = (r: FlowerRule) => {
  const m = r.match;
  return isTpid(r.protocol) || (m.numOfVlans ?? 0) >= 1 || m.encKeyId !== undefined || !!(m.encSrcIp || m.encDstIp || m.encDstPort || m.encTos || m.encTtl || m.encOpts);
};

/** Whether the rule's trap match, as OpenFlow can state it, needs more flows than a rule may have. */
function trapNeedsTooManyFlows(r: FlowerRule): boolean {
  try {
    translateMatch(r, { zone: (z) => z, maxFlowsPerRule: DEFAULT_MAX_FLOWS_PER_RULE }, 'superset');
    return false;
  } catch {
    return true;
  }
}

/**
 * What a not-offloaded rule's trap flows take: exactly its match when OpenFlow
 * can state it; else a tag with the rule's outer VID/PCP (any TPID) or its
 * protocol, and the keys OpenFlow can state.
 */
function trapCovers(r: FlowerRule, p: Packet): boolean {
  // A match that needs more flows than a rule may have is trapped by its protocol alone (trapMatches):
  // broader, and harmless, since the guest's software re-runs the whole chain on what it is handed.
  if (trapNeedsTooManyFlows(r)) {
    if (r.protocol === 0x0003) return true;
    if (isTpid(r.protocol)) return p.vlans.length > 0;
    return p.vlans.length === 0 && p.ethType === r.protocol;
  }
  if (!inexpressible(r)) return (protocolMatches(r, p) && keysMatch(r.match, p)) || ipv6LaterFragmentTrap(r, r.match, p);
  const m = r.match;
  const relaxed: FlowerMatch = { ...m, ethType: undefined, vlanId: undefined, vlanPrio: undefined, vlanEthType: undefined, cvlanId: undefined, cvlanPrio: undefined, cvlanEthType: undefined, numOfVlans: undefined, encKeyId: undefined, encSrcIp: undefined, encDstIp: undefined, encDstPort: undefined, encTos: undefined, encTtl: undefined, encOpts: undefined };
  let gate: boolean;
  if (isTpid(r.protocol) || (r.protocol === 0x0003 && (m.numOfVlans ?? 0) >= 1)) {
    const tag = p.vlans[0];
    // With vlan-limit 1, OVS's dl_type is the type after the outer tag.
    const after = p.vlans[1]?.tpid ?? p.ethType;
    gate = !!tag && (m.vlanId === undefined || tag.vid === m.vlanId) && (m.vlanPrio === undefined || tag.pcp === m.vlanPrio) && (m.vlanEthType === undefined || isTpid(m.vlanEthType) || after === m.vlanEthType);
  } else gate = protocolMatches(r, p);
  return (gate && keysMatch(relaxed, p)) || ipv6LaterFragmentTrap(r, relaxed, p);
}

/**
 * Every trap of a translation, as classify's `trapped` hook: a not-offloaded
 * rule's trap over what its flows take (none for a filter on the other VLAN
 * protocol of a declaring VM: it matches no frame there), IPv6 later fragments
 * of offloaded ip_proto rules, the other protocols of a port rewrite without
 * ip_proto, frames of more tags than a num_of_vlans 1 filter counts, deeper tags, hand-offs under deferred copies
 * and hand-offs where an earlier rule took a save slot.
 */
export function hardwareTraps(t: Translation, rules: FlowerRule[], outerTpid: number | undefined): (r: FlowerRule, q: Packet, emits: readonly Emit[]) => boolean {
  const notOffloaded = new Set(rules.filter((_, i) => !t.perRule.get(i + 1)!.offloaded));
  const pendingHandOff = pendingHandOffs(t, rules);
  const takenSlotHandOff = takenSlotHandOffs(t, rules);
  return (r, q, emits) =>
    (notOffloaded.has(r) && trapCovers(r, q) && !(outerTpid !== undefined && isTpid(r.protocol) && r.protocol !== outerTpid)) ||
    (!notOffloaded.has(r) && (ipv6LaterFragmentTrap(r, r.match, q) || otherProtocolTrap(r, q) || multiTagTrap(r, q))) ||
    deeperTagTrap(r, q, outerTpid) ||
    pendingHandOff(r, q, emits) ||
    // Last: it records the slots of a rule that runs.
    takenSlotHandOff(r, q);
}
