// Our OVSDB client against a real ovsdb-server + ovs-vswitchd.
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonSplitter } from '../../ovs/ovsdb/framing.js';
import { OvsdbClient, OvsdbError } from '../../ovs/ovsdb/client.js';
import { BRIDGE_MONITOR, BridgeManager } from '../../ovs/bridge.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';

describe('JSON stream framing', () => {
  it('finds every message however the stream is cut', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue().map((v) => ({ id: 1, result: v })), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (msgs, cuts) => {
        const text = msgs.map((m) => JSON.stringify(m)).join('');
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const s = new JsonSplitter();
        const got: string[] = [];
        let last = 0;
        for (const p of [...points, text.length]) {
          got.push(...s.push(text.slice(last, p)));
          last = p;
        }
        expect(got.map((g) => JSON.parse(g))).toEqual(msgs.map((m) => JSON.parse(JSON.stringify(m))));
      }),
      { numRuns: 500 },
    );
  });
  it('refuses garbage between messages instead of guessing', () => {
    expect(() => new JsonSplitter().push('{"a":1} nonsense')).toThrow(/unexpected/);
  });
});

describe('OVSDB client and bridge manager on a real ovsdb-server', () => {
  let ovs: PrivateOvs;
  let c: OvsdbClient;
  beforeAll(async () => {
    ovs = await startOvs();
    c = new OvsdbClient(`unix:${ovs.dbSock}`, pino({ level: 'silent' }), { echoMs: 500 });
    await c.connect();
    await c.monitor(BRIDGE_MONITOR);
  }, 60_000);
  afterAll(async () => {
    c?.close();
    await ovs?.stop();
  });

  it('transacts and reports an operation error as a typed error', async () => {
    expect(await c.request('list_dbs', [])).toContain('Open_vSwitch');
    await expect(c.transact('Open_vSwitch', [{ op: 'insert', table: 'Bridge', row: { name: 'x', fail_mode: 'bogus' } }])).rejects.toThrow(OvsdbError);
  });

  it('a bridge is secure from its very first appearance, and its ports get the ofports they asked for', async () => {
    const seen: unknown[] = [];
    const spy = (u: Record<string, Record<string, { new?: Record<string, unknown> }>>) => {
      for (const row of Object.values(u.Bridge ?? {})) if (row.new?.name === 'vpf-t') seen.push(row.new.fail_mode);
    };
    c.on('update', spy);
    const bm = new BridgeManager(c);
    await bm.ensureBridge({ name: 'vpf-t', datapathType: 'netdev', ports: [{ name: 't-p0', ofport: 100, type: 'internal' }, { name: 't-r0', ofport: 200, type: 'internal' }], externalIds: { 'vpf-vm': 't' } });
    c.off('update', spy);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((f) => f === 'secure')).toBe(true);
    expect((await ovs.vsctl('get', 'interface', 't-r0', 'ofport')).trim()).toBe('200');
    // Ensuring again changes nothing.
    const before = await ovs.vsctl('--columns=_uuid', 'list', 'port');
    await bm.ensureBridge({ name: 'vpf-t', datapathType: 'netdev', ports: [{ name: 't-p0', ofport: 100, type: 'internal' }, { name: 't-r0', ofport: 200, type: 'internal' }], externalIds: { 'vpf-vm': 't' } });
    expect(await ovs.vsctl('--columns=_uuid', 'list', 'port')).toBe(before);
  });

  it('the monitor sees changes made by others', async () => {
    await ovs.vsctl('add-br', 'other', '--', 'set', 'bridge', 'other', 'datapath_type=netdev');
    for (let i = 0; i < 50 && ![...(c.cache.get('Bridge')?.values() ?? [])].some((r) => r.name === 'other'); i++) await new Promise((r) => setTimeout(r, 50));
    expect([...c.cache.get('Bridge')!.values()].some((r) => r.name === 'other')).toBe(true);
    await new BridgeManager(c).deleteBridge('other');
    expect(await ovs.vsctl('list-br')).not.toContain('other');
  });

  it('reconnects after ovsdb-server restarts, resyncs its cache and says so', async () => {
    const reconnected = new Promise((r) => c.once('reconnected', r));
    await ovs.restartOvsdbServer();
    await reconnected;
    expect([...c.cache.get('Bridge')!.values()].some((r) => r.name === 'vpf-t')).toBe(true);
    expect(await c.request('list_dbs', [])).toContain('Open_vSwitch');
  }, 30_000);
});
