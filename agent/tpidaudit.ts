// The audit behind a VM's declared outer TPID (docs/mapping.md, VLAN matches).
//
// OpenFlow cannot match a VLAN tag's TPID (lib/meta-flow.xml), so a filter on
// `protocol 802.1Q` is exact on the bridge only if every tagged frame reaching
// the VM's rules carries 0x8100 outside. The operator declares that per VM;
// vpfd checks it against the facts: datapath megaflows keep the TPID exact
// (ofproto-dpif-xlate.c wildcards vlans[].tpid only for untagged packets), so
// one datapath flow through the VM's rule tables with another outer TPID
// proves the declaration wrong and the VM goes back to trapping its VLAN filters.
import type { TracedFlow } from './hwfacts.js';

export const TPID_8021Q = 0x8100;
export const TPID_8021AD = 0x88a8;
const isTpid = (t: number) => t === TPID_8021Q || t === TPID_8021AD;

export interface TpidViolation {
  /** The datapath flow's key, as dpctl printed it: what the operator looks for. */
  match: string;
  /** What broke the declaration. */
  reason: string;
}

/**
 * Ethertypes along a datapath key, outermost first: `eth_type(0x88a8),vlan(..),
 * encap(eth_type(0x8100),vlan(..),encap(eth_type(0x0800),..))` gives
 * [0x88a8, 0x8100, 0x0800] (odp-util.c prints each tag's encapsulated type
 * inside its encap()).
 */
export function keyEthTypes(key: string): number[] {
  const out: number[] = [];
  const re = /eth_type\((0x[0-9a-f]+)(?:\/0x[0-9a-f]+)?\)/gi;
  for (let m = re.exec(key); m; m = re.exec(key)) out.push(Number(m[1]));
  return out;
}

/**
 * Datapath flows of `bridge` that break `declared` (the outer TPID every tagged
 * frame of the VM carries). Only flows that reached a
 * rule table count: what a guest sends on a representor leaves untouched
 * (table 0) and meets no rule.
 */
export function tpidViolations(flows: readonly TracedFlow[], bridge: string, declared: number): TpidViolation[] {
  const out: TpidViolation[] = [];
  for (const f of flows) {
    if (!f.steps.some((s) => s.bridge === bridge && s.table > 0)) continue;
    const types = keyEthTypes(f.match);
    const outer = types[0];
    if (outer !== undefined && isTpid(outer) && outer !== declared) {
      out.push({ match: f.match, reason: `outer TPID 0x${outer.toString(16)} where 0x${declared.toString(16)} was declared` });
    }
  }
  return out;
}
