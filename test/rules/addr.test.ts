// Addresses cross every codec: an IPv4 parser that takes "01.2.3.4" or "1.2.3"
// would let a guest name an address the kernel never would.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToIpv4, ipv4ToBytes } from '../../rules/addr.js';

/** inet_pton(AF_INET) as iproute2's get_addr accepts it here: four decimal parts 0-255, no leading zeros. */
const reference = (s: string) => {
  const p = s.split('.');
  return p.length === 4 && p.every((x) => /^(0|[1-9][0-9]{0,2})$/.test(x) && Number(x) <= 255) ? p.map(Number) : undefined;
};
const parsed = (s: string) => {
  try {
    return Array.from(ipv4ToBytes(s));
  } catch {
    return undefined;
  }
};

describe('IPv4 addresses', () => {
  it('parse exactly the dotted quads, and print back as they were', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.stringMatching(/^[0-9.]{0,16}$/), fc.string()), (s) => {
        expect(parsed(s)).toEqual(reference(s));
        if (reference(s)) expect(bytesToIpv4(ipv4ToBytes(s))).toBe(s);
      }),
      { numRuns: 20_000 },
    );
    for (const bad of ['01.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.', '.1.2.3', '1..2.3', '', '1.2.3.4 ']) expect(parsed(bad), bad).toBeUndefined();
  });
});
