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
  const us = Math.ceil((ticks * 8) / 125);
  let bytes = Math.ceil((us * rate) / 1e6);
  while (bytes > 0 && burstToTicks(bytes - 1, rate) >= ticks) bytes--;
  while (burstToTicks(bytes, rate) < ticks) bytes++;
  return bytes;
}
