// Time <-> size conversions of the packet scheduler clock, as iproute2 does
// them for police bursts (tc/tc_core.c tc_calc_xmittime, PSCHED_SHIFT 6).

/**
 * The time to send `bytes` at `rate` B/s, first in whole microseconds
 * (tc_core_time2tick takes an unsigned int), then in psched ticks of
 * 1/15.625 us (ticks = us * 125 / 8).
 */
export function burstToTicks(bytes: number, rate: number): number {
  const us = Math.floor((1e6 * bytes) / rate);
  return Math.floor((us * 125) / 8);
}

/**
 * The smallest byte count that encodes to `ticks`: the wire keeps time, not
 * bytes, so e.g. 64k at 100mbit comes back as 65525. Parsers normalize to this
 * value too, so text and bytes agree (docs/rules.md).
 */
export function ticksToBurst(ticks: number, rate: number): number {
  // burstToTicks grows with bytes: binary search, because stepping byte by byte
  // never ends when a guest sends a huge rate (many bytes per tick) or bytes past 2^53.
  if (!(rate > 0) || !(ticks > 0)) return 0;
  let lo = 0;
  let hi = Math.min(Number.MAX_SAFE_INTEGER, Math.ceil((Math.ceil((ticks * 8) / 125) * rate) / 1e6) + 1);
  while (hi < Number.MAX_SAFE_INTEGER && burstToTicks(hi, rate) < ticks) hi = Math.min(Number.MAX_SAFE_INTEGER, hi * 2);
  while (lo < hi) {
    // Above 2^52 a float has no halves: lo + (hi - lo) / 2 would round up to hi and never end.
    const mid = lo + Math.floor((hi - lo) / 2);
    if (burstToTicks(mid, rate) >= ticks) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
