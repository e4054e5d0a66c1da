// Conntrack zones per VM (agent/zones.ts): the guest's 16-bit zones land on
// distinct host zones, stay put across restarts and upgrades, and are bounded.
import { describe, expect, it } from 'vitest';
import { ZonePool, zonesOfRecord } from '../../agent/zones.js';
import { guestZones } from '../../rules/ctzone.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import type { FlowerRule } from '../../rules/model.js';

const rule = (line: string): FlowerRule => {
  const r = parseFilter(splitArgs(`dev vf0 ingress prio 1 ${line}`));
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

describe('guest zones', () => {
  it('are the zones of ct actions and an exact ct_zone match, not of ct clear', () => {
    expect(guestZones(rule('protocol ip flower ct_zone 7 action ct zone 64000 commit pipe action ct clear pipe action drop')).sort()).toEqual([64000, 7]);
    expect(guestZones(rule('protocol ip flower action ct pipe action drop'))).toEqual([0]);
    expect(guestZones(rule('protocol ip flower action ct clear pipe action drop'))).toEqual([]);
  });
});

describe('ZonePool', () => {
  it('gives two VMs naming the same guest zone two host zones', () => {
    const pool = new ZonePool();
    const a = new Map<number, number>();
    const b = new Map<number, number>();
    pool.claim('a', a, [64000]);
    pool.claim('b', b, [64000]);
    expect(a.get(64000)).not.toBe(b.get(64000));
    expect(pool.ownerOf(a.get(64000)!)).toBe('a');
    expect(pool.ownerOf(b.get(64000)!)).toBe('b');
  });

  it('keeps a zone once claimed and reports only new ones', () => {
    const pool = new ZonePool();
    const a = new Map<number, number>();
    expect(pool.claim('a', a, [5, 9])).toEqual([5, 9]);
    const before = new Map(a);
    expect(pool.claim('a', a, [9, 5])).toEqual([]);
    expect(a).toEqual(before);
  });

  it('never hands out host zone 0 nor a zone below the range', () => {
    const pool = new ZonePool({ min: 1000, max: 1001 });
    const a = new Map<number, number>();
    pool.claim('a', a, [0, 1]);
    expect([...a.values()].sort()).toEqual([1000, 1001]);
  });

  it('refuses with ENOSPC when the host range is exhausted, changing nothing', () => {
    const pool = new ZonePool({ min: 1000, max: 1001 });
    const a = new Map<number, number>();
    pool.claim('a', a, [1]);
    const b = new Map<number, number>();
    expect(() => pool.claim('b', b, [1, 2])).toThrow(/no host conntrack zone left/);
    expect(b.size).toBe(0);
    expect(pool.claim('b', b, [1])).toEqual([1]);
  });

  it('bounds the zones one VM may hold', () => {
    const pool = new ZonePool(undefined, 2);
    const a = new Map<number, number>();
    pool.claim('a', a, [1, 2]);
    expect(() => pool.claim('a', a, [3])).toThrow(expect.objectContaining({ errno: expect.any(Number), message: expect.stringMatching(/limit 2 per VM/) }));
  });

  it('frees a deleted VM\'s zones for the next VM', () => {
    const pool = new ZonePool({ min: 1000, max: 1000 });
    const a = new Map<number, number>();
    pool.claim('a', a, [64000]);
    expect(pool.release('a')).toEqual([1000]);
    const b = new Map<number, number>();
    pool.claim('b', b, [3]);
    expect(b.get(3)).toBe(1000);
  });

  it('restores a VM\'s zones after a restart so no other VM gets them', () => {
    const pool = new ZonePool({ min: 1000, max: 1001 });
    pool.restore('a', new Map([[64000, 1000]]));
    const b = new Map<number, number>();
    pool.claim('b', b, [64000]);
    expect(b.get(64000)).toBe(1001);
    expect(() => pool.restore('c', new Map([[1, 1000]]))).toThrow(/already held by VM a/);
  });
});

describe('records from before sparse zones', () => {
  it('keep zoneBase + guest zone for the zones their rules name, so an upgrade moves no connection', () => {
    const rules = [{ rule: rule('protocol ip flower action ct zone 3 pipe action drop') }, { rule: rule('protocol ip flower ct_zone 4 action drop') }];
    expect(zonesOfRecord({ zoneBase: 512, rules })).toEqual(new Map([[3, 515], [4, 516]]));
    expect(zonesOfRecord({ zones: [[3, 9000]], zoneBase: 512, rules })).toEqual(new Map([[3, 9000]]));
  });
});
