// What the translator sends to the guest's software beyond a rule's own
// match, as the property test and the offload tier's oracles model it
// (each trap is the rule's own, at its place; software then decides).
import type { FlowerRule } from '../../../rules/model.js';
import type { Packet } from '../../../rules/packet.js';

const isTpid = (t: number | undefined) => t === 0x8100 || t === 0x88a8;

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
