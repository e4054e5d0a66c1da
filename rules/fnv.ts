// FNV-1a, 32 bits, over a string's UTF-16 code units: short stable names
// (ovs/bridge.ts) and hash-table keys that stay small (agent/ruletable.ts).
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
