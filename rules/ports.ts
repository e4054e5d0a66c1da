// Representor naming on the guest channel (docs/protocol.md): the uplink
// representor is ifindex 1 and vfN's is N+2. Text uses the names `uplink`, `vfN`.

export const UPLINK = 'uplink';

/** name -> ifindex, for bytes captured on a real host (vpfctl rule decode --devs). */
export type DevMap = ReadonlyMap<string, number>;

export function isRepName(name: string): boolean {
  return name === UPLINK || /^vf(0|[1-9][0-9]{0,2})$/.test(name);
}

/** The VF number of `vfN`, or -1 for the uplink. Throws on anything else. */
export function vfIndex(name: string): number {
  if (name === UPLINK) return -1;
  const m = /^vf(0|[1-9][0-9]{0,2})$/.exec(name);
  if (!m) throw new Error(`not a representor name: ${name}`);
  return Number(m[1]);
}

export function devIfindex(name: string, devs?: DevMap): number | undefined {
  if (devs) return devs.get(name);
  if (!isRepName(name)) return undefined;
  return name === UPLINK ? 1 : vfIndex(name) + 2;
}

export function devName(ifindex: number, devs?: DevMap): string | undefined {
  if (devs) {
    for (const [n, i] of devs) if (i === ifindex) return n;
    return undefined;
  }
  if (ifindex === 1) return UPLINK;
  if (ifindex >= 2 && ifindex < 2 + 1000) return `vf${ifindex - 2}`;
  return undefined;
}

export function parseDevMap(spec: string): DevMap {
  const m = new Map<string, number>();
  for (const part of spec.split(',').filter(Boolean)) {
    const [name, idx] = part.split('=');
    const n = Number(idx);
    if (!name || !Number.isInteger(n) || n <= 0) throw new Error(`bad --devs entry '${part}' (want name=ifindex)`);
    m.set(name, n);
  }
  return m;
}
