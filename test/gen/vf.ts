// Random legacy VF settings for tests (rules/vf.ts), with the MACs a test wants.
import fc from 'fast-check';
import { defaultVfSettings, VLAN_PROTO_8021AD, VLAN_PROTO_8021Q, type VfSettings } from '../../rules/vf.js';

export function arbVfSettings(macs: string[]): fc.Arbitrary<VfSettings> {
  return fc
    .record({
      mac: fc.constantFrom(...macs),
      vlan: fc.constantFrom(0, 10, 4095),
      qos: fc.integer({ min: 0, max: 7 }),
      vlanProto: fc.constantFrom(VLAN_PROTO_8021Q, VLAN_PROTO_8021AD),
      spoofchk: fc.boolean(),
      trust: fc.boolean(),
      promisc: fc.boolean(),
      linkState: fc.constantFrom('auto' as const, 'enable' as const, 'disable' as const),
      maxTxRate: fc.constantFrom(0, 100),
    })
    .map((v) => ({ ...defaultVfSettings(), ...v }));
}
