// What the translator sends to the guest's software beyond a rule's own
// match, as the property test and the offload tier's oracles model it
// (each trap is the rule's own, at its place; software then decides).
import type { FlowerRule } from '../../../rules/model.js';
import type { Emit, Packet } from '../../../rules/packet.js';
import { keysMatch, protocolMatches } from '../../../rules/classify/match.js';
import { cookieRuleId } from '../../../translator/cookie.js';
import type { Translation } from '../../../translator/index.js';
import { HANDOFF_TABLE, PENDING_BIT, VALUE_BITS_REG } from '../../../translator/actions.js';

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
    if (pending && f.actions.length === 1 && f.actions[0]!.a === 'resubmit' && f.actions[0]!.table === HANDOFF_TABLE) ids.add(cookieRuleId(f.cookie));
  }
  const handsOff = new Set(rules.filter((_, i) => ids.has(i + 1)));
  return (r, q, emits) => handsOff.has(r) && emits.some((e) => e.copy) && protocolMatches(r, q) && keysMatch(r.match, q);
}
