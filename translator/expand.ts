// Expansions of flower matches OpenFlow cannot state in one value/mask
// (ovs-fields(7): tp_* are maskable but have no ranges; nw_ttl, icmp_type,
// arp_op, ct_zone are not maskable at all). Exact, never approximate.

export interface ValueMask {
  value: number;
  mask: number;
}

/** The minimal set of value/mask prefixes covering [min, max] of a `bits`-wide field. */
export function rangeToPrefixes(min: number, max: number, bits = 16): ValueMask[] {
  const out: ValueMask[] = [];
  const full = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  let lo = min;
  while (lo <= max) {
    // The largest aligned block starting at lo that stays within max.
    let size = lo === 0 ? 2 ** bits : lo & -lo;
    while (lo + size - 1 > max) size /= 2;
    out.push({ value: lo, mask: (full & ~(size - 1)) >>> 0 });
    lo += size;
  }
  return out;
}

/** Every value of a `bits`-wide field selected by value/mask, or undefined past `cap`. */
export function enumerateMasked(value: number, mask: number, bits: number, cap: number): number[] | undefined {
  const free = ((2 ** bits - 1) & ~mask) >>> 0;
  let n = 1;
  for (let b = free; b; b &= b - 1) n *= 2;
  if (n > cap) return undefined;
  const base = value & mask;
  const out: number[] = [];
  // Walk the subsets of the free bits.
  let sub = 0;
  do {
    out.push((base | sub) >>> 0);
    sub = (sub - free) & free;
  } while (sub !== 0);
  return out.sort((a, b) => a - b);
}
