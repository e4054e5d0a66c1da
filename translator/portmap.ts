// The VM's port map: for each representor, the OpenFlow port of its datapath
// side (`port`: the VF or the wire) and of its representor backend (`rep`: where
// slow-path packets reach the guest). The daemon and `vpfctl translate` share it.
import { UPLINK, vfIndex } from '../rules/ports.js';

export interface PortPair {
  port: number;
  rep: number;
}

export interface PortMap {
  uplink: PortPair;
  vfs: PortPair[];
}

/** Default numbering: uplink 1/2, vfN 100+N/200+N. */
export function defaultPortMap(numVfs: number): PortMap {
  return {
    uplink: { port: 1, rep: 2 },
    vfs: Array.from({ length: numVfs }, (_, n) => ({ port: 100 + n, rep: 200 + n })),
  };
}

/** The pair for representor `dev` ('uplink' | 'vfN'), or undefined if the VM has no such port. */
export function portPair(map: PortMap, dev: string): PortPair | undefined {
  if (dev === UPLINK) return map.uplink;
  // Every rule asks several times: the last map's answers are kept (a map is not changed once built).
  if (map !== lastMap) {
    lastMap = map;
    lastPairs = new Map();
  }
  if (lastPairs.has(dev)) return lastPairs.get(dev);
  let pair: PortPair | undefined;
  try {
    pair = map.vfs[vfIndex(dev)];
  } catch {
    pair = undefined;
  }
  lastPairs.set(dev, pair);
  return pair;
}
let lastMap: PortMap | undefined;
let lastPairs = new Map<string, PortPair | undefined>();

/** Every representor name of the map, uplink first. */
export function repNames(map: PortMap): string[] {
  return [UPLINK, ...map.vfs.map((_, n) => `vf${n}`)];
}

/** Validates a port map read from JSON: positive, distinct OpenFlow port numbers below OFPP_MAX. */
export function parsePortMap(json: unknown): PortMap {
  const bad = (why: string): never => {
    throw new Error(`bad port map: ${why}`);
  };
  const pair = (x: unknown, what: string): PortPair => {
    const p = x as PortPair;
    if (typeof p !== 'object' || p === null) bad(`${what} is not an object`);
    for (const k of ['port', 'rep'] as const) {
      if (!Number.isInteger(p[k]) || p[k] < 1 || p[k] >= 0xff00) bad(`${what}.${k} must be an OpenFlow port 1..65279`);
    }
    return { port: p.port, rep: p.rep };
  };
  const j = json as { uplink?: unknown; vfs?: unknown };
  if (typeof j !== 'object' || j === null) bad('not an object');
  if (!Array.isArray(j.vfs)) bad('vfs must be an array');
  const map: PortMap = { uplink: pair(j.uplink, 'uplink'), vfs: (j.vfs as unknown[]).map((v, i) => pair(v, `vfs[${i}]`)) };
  const all = [map.uplink, ...map.vfs].flatMap((p) => [p.port, p.rep]);
  if (new Set(all).size !== all.length) bad('port numbers must be distinct');
  return map;
}
