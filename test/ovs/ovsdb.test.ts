// Our OVSDB client against a real ovsdb-server + ovs-vswitchd.
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonSplitter } from '../../ovs/ovsdb/framing.js';
import { OvsdbClient, OvsdbError, ovs as atom, type Condition, type MonitorSpec, type Op, type Row, type TableUpdates } from '../../ovs/ovsdb/client.js';
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

// monitor_cond / update2 (ovsdb-server(7) 4.1.12-4.1.14). The truth each cache
// is held to is a `select` of the same columns: the plain monitor's encoding
// (one-element set = bare atom, empty set = ["set", []], sorted elements).
const DB = 'Open_vSwitch';
const COLUMNS = {
  Bridge: ['name', 'ports', 'external_ids', 'other_config', 'fail_mode', 'flood_vlans', 'stp_enable', 'datapath_type'],
  Port: ['name', 'interfaces', 'tag', 'trunks', 'external_ids'],
  Interface: ['name', 'type', 'options'],
};
const SPEC: MonitorSpec = { db: DB, tables: COLUMNS };
type Table = keyof typeof COLUMNS;
// Monitors with conditions get other Bridge columns than `c`'s: ovsdb-server
// shares one ovsdb_monitor between sessions with the same tables and columns,
// and 3.1.0 then crashes (SIGSEGV, reproduced here) on a modify after another
// session's condition went to [false] and back.
const W_BRIDGE = COLUMNS.Bridge.filter((col) => col !== 'datapath_type');
const W_SPEC: MonitorSpec = { db: DB, tables: { ...COLUMNS, Bridge: W_BRIDGE } };
/** What a conditional monitor of W_SPEC holds of Bridge. */
const wSelected = (c: OvsdbClient, where: Condition[]) => selected(c, 'Bridge', where, W_BRIDGE);

/** uuid -> row of a `select` of `columns`, rows matching ANY clause (as a monitor condition does). */
async function selected(c: OvsdbClient, table: Table, where: Condition[] = [], columns = COLUMNS[table]): Promise<Record<string, Row>> {
  const clauses = where.length ? where : [true];
  const out: Record<string, Row> = {};
  for (const w of clauses) {
    if (w === false) continue;
    const [r] = (await c.transact(DB, [{ op: 'select', table, where: w === true ? [] : [w], columns: ['_uuid', ...columns] }])) as { rows: Row[] }[];
    for (const { _uuid, ...row } of r!.rows) out[(_uuid as [string, string])[1]] = row;
  }
  return out;
}

const cached = (c: OvsdbClient, table: string): Record<string, Row> => Object.fromEntries(c.cache.get(table) ?? []);

/** Waits (on update events, at most 5 s) for the cache to reach `want`, then asserts it, so a failure shows the difference. */
async function expectCache(c: OvsdbClient, table: string, want: Record<string, Row>): Promise<void> {
  if (!isDeepStrictEqual(cached(c, table), want)) {
    await new Promise<void>((resolve) => {
      const check = () => {
        if (!isDeepStrictEqual(cached(c, table), want)) return;
        done();
      };
      const timer = setTimeout(() => done(), 5000);
      const done = () => {
        clearTimeout(timer);
        c.off('update', check);
        resolve();
      };
      c.on('update', check);
    });
  }
  expect(cached(c, table), table).toEqual(want);
}

async function expectAllCached(c: OvsdbClient, ...clients: OvsdbClient[]): Promise<void> {
  for (const t of Object.keys(COLUMNS) as Table[]) {
    const want = await selected(c, t);
    for (const x of [c, ...clients]) await expectCache(x, t, want);
  }
}

const addBridge = (name: string, row: Row = {}): Op[] => [
  { op: 'insert', table: 'Bridge', 'uuid-name': 'nb', row: { name, datapath_type: 'netdev', ...row } },
  // Bridge is not a root table: a bridge not in Open_vSwitch.bridges is collected at commit.
  { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', atom.set([atom.named('nb')])]] },
];

async function delBridges(c: OvsdbClient, names: string[]): Promise<void> {
  const [r] = (await c.transact(DB, [{ op: 'select', table: 'Bridge', where: [], columns: ['_uuid', 'name'] }])) as { rows: Row[] }[];
  const uuids = r!.rows.filter((b) => names.includes(b.name as string)).map((b) => b._uuid);
  if (uuids.length) await c.transact(DB, [{ op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', atom.set(uuids)]] }]);
}

/** A port with one patch interface (no device for ovs-vswitchd to create) added to a bridge. */
const addPort = (bridge: string, port: string, row: Row = {}): Op[] => [
  { op: 'insert', table: 'Interface', 'uuid-name': 'ni', row: { name: port, type: 'patch', options: atom.map({ peer: `${port}-peer` }) } },
  { op: 'insert', table: 'Port', 'uuid-name': 'np', row: { name: port, interfaces: atom.named('ni'), ...row } },
  { op: 'mutate', table: 'Bridge', where: [['name', '==', bridge]], mutations: [['ports', 'insert', atom.set([atom.named('np')])]] },
];

async function delPort(c: OvsdbClient, bridge: string, port: string): Promise<void> {
  const [r] = (await c.transact(DB, [{ op: 'select', table: 'Port', where: [['name', '==', port]], columns: ['_uuid'] }])) as { rows: Row[] }[];
  if (r!.rows.length) await c.transact(DB, [{ op: 'mutate', table: 'Bridge', where: [['name', '==', bridge]], mutations: [['ports', 'delete', atom.set([r!.rows[0]!._uuid])]] }]);
}

const where = (table: Table, name: string): Condition[] => (table === 'Bridge' ? [['name', '==', name]] : []);
const setBridge = (name: string, row: Row): Op => ({ op: 'update', table: 'Bridge', where: where('Bridge', name), row });
const mutateBridge = (name: string, ...mutations: unknown[]): Op => ({ op: 'mutate', table: 'Bridge', where: where('Bridge', name), mutations });

/** A unix socket in front of ovsdb-server that answers monitor_cond like an old server: "unknown method". */
function oldServerProxy(target: string, path: string): Promise<{ server: Server; methods: string[] }> {
  const methods: string[] = [];
  const server = createServer((down) => {
    const up = netConnect(target);
    const splitter = new JsonSplitter();
    down.setEncoding('utf8');
    down.on('data', (chunk: string) => {
      for (const text of splitter.push(chunk)) {
        const m = JSON.parse(text) as { method?: string; id?: unknown };
        if (m.method) methods.push(m.method);
        if (m.method === 'monitor_cond' || m.method === 'monitor_cond_change') down.write(JSON.stringify({ id: m.id, result: null, error: 'unknown method' }));
        else up.write(text);
      }
    });
    up.pipe(down);
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    down.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(path, () => resolve({ server, methods })));
}

describe('monitor_cond (update2): the cache stays equal to the database', () => {
  let ovs: PrivateOvs;
  let c: OvsdbClient;
  let plain: OvsdbClient;
  let proxy: { server: Server; methods: string[] };
  const log = pino({ level: 'silent' });
  beforeAll(async () => {
    ovs = await startOvs();
    c = new OvsdbClient(`unix:${ovs.dbSock}`, log, { echoMs: 500 });
    await c.connect();
    await c.monitor(SPEC);
    proxy = await oldServerProxy(ovs.dbSock, join(ovs.rundir, 'old-server.sock'));
    plain = new OvsdbClient(`unix:${join(ovs.rundir, 'old-server.sock')}`, log, { echoMs: 500 });
    await plain.connect();
    await plain.monitor(SPEC);
  }, 60_000);
  afterAll(async () => {
    c?.close();
    plain?.close();
    proxy?.server.close();
    await ovs?.stop();
  });

  it('follows inserts, set, map and scalar changes and deletes, in the plain monitor encoding', async () => {
    await c.transact(DB, addBridge('s1', { external_ids: atom.map({ a: '1', b: '2' }), flood_vlans: atom.set([10, 9, 100]) }));
    await c.transact(DB, addPort('s1', 's1p1', { tag: 5, trunks: atom.set([20, 3]) }));
    await expectAllCached(c, plain);
    // A row inserted with defaults left out by update2 still has every column.
    const s1 = Object.values(cached(c, 'Bridge')).find((r) => r.name === 's1')!;
    expect(s1).toMatchObject({ fail_mode: ['set', []], other_config: ['map', []], stp_enable: false, flood_vlans: ['set', [9, 10, 100]] });

    const edits: Op[][] = [
      addPort('s1', 's1p2'), // ports: one uuid -> a set of two
      addPort('s1', 's1p3'),
      [mutateBridge('s1', ['external_ids', 'insert', atom.map({ c: '3' })])], // map: add a key
      [mutateBridge('s1', ['external_ids', 'delete', atom.set(['a'])])], // remove a key
      [setBridge('s1', { external_ids: atom.map({ b: '20', c: '3', d: '4' }) })], // replace one, keep one, add one
      [setBridge('s1', { other_config: atom.map({ 'mac-table-size': '1000' }) })],
      [setBridge('s1', { fail_mode: 'secure', stp_enable: true })], // optional scalar set, boolean
      [setBridge('s1', { flood_vlans: atom.set([100, 11]) })], // integer set: add and remove at once
      [{ op: 'update', table: 'Port', where: [['name', '==', 's1p1']], row: { tag: atom.set([]), trunks: 7 } }], // optional scalar cleared; set down to one
      [setBridge('s1', { fail_mode: atom.set([]), other_config: atom.map({}) })],
    ];
    for (const ops of edits) {
      await c.transact(DB, ops);
      await expectAllCached(c, plain);
    }
    await delPort(c, 's1', 's1p2'); // a set of three ports down to two; the port row goes with it
    await expectAllCached(c, plain);
    await delPort(c, 's1', 's1p3'); // down to one: the bare uuid
    await expectAllCached(c, plain);
    await delBridges(c, ['s1']);
    await expectAllCached(c, plain);
    expect(Object.values(cached(c, 'Bridge')).some((r) => r.name === 's1')).toBe(false);
  }, 30_000);

  it("emits 'update' as the plain monitor did: new is the whole row, old the changed columns", async () => {
    await c.transact(DB, addBridge('u1', { external_ids: atom.map({ k: 'v' }) }));
    await expectAllCached(c);
    const events: TableUpdates[] = [];
    const spy = (u: TableUpdates) => events.push(u);
    c.on('update', spy);
    await c.transact(DB, [setBridge('u1', { external_ids: atom.map({ k: 'w' }) })]);
    await expectAllCached(c);
    c.off('update', spy);
    const change = events.flatMap((u) => Object.values(u.Bridge ?? {})).find((r) => r.new?.name === 'u1');
    expect(change?.old).toEqual({ external_ids: ['map', [['k', 'v']]] });
    expect(change?.new).toEqual(Object.values(await selected(c, 'Bridge')).find((r) => r.name === 'u1'));
    await delBridges(c, ['u1']);
  });

  it('a server without monitor_cond gets plain monitor, and the same cache', async () => {
    expect(proxy.methods).toContain('monitor_cond');
    expect(proxy.methods).toContain('monitor');
    await c.transact(DB, addBridge('o1', { external_ids: atom.map({ k: 'v' }) }));
    await c.transact(DB, addPort('o1', 'o1p1', { trunks: atom.set([1, 2]) }));
    await expectAllCached(c, plain);
    expect(plain.cache).toEqual(c.cache);
    await delBridges(c, ['o1']);
    await expect(plain.monitor({ ...SPEC, where: { Bridge: [['name', '==', 'x']] } })).rejects.toThrow(/conditions/);
  });

  it('random edits of maps, sets and scalars: the cache equals a select after each (property)', async () => {
    const names = ['pb0', 'pb1', 'pb2'];
    const key = fc.constantFrom('a', 'b', 'c', 'd', 'vpf-vm', 'é', 'Z');
    const val = fc.constantFrom('1', '2', 'x', '');
    const smallMap = fc.dictionary(key, val, { maxKeys: 4 });
    const bridge = fc.nat(names.length - 1).map((i) => names[i]!);
    type Edit = { kind: string; run(c: OvsdbClient, portNo: number): Promise<unknown> };
    const edit: fc.Arbitrary<Edit> = fc.oneof(
      fc.record({ b: bridge, ext: smallMap, vlans: fc.uniqueArray(fc.integer({ min: 0, max: 4095 }), { maxLength: 4 }) }).map(({ b, ext, vlans }) => ({
        kind: `add bridge ${b}`,
        run: (c) => c.transact(DB, addBridge(b, { external_ids: atom.map(ext), flood_vlans: atom.set(vlans) })).catch(() => undefined), // exists already: index violation
      })),
      bridge.map((b) => ({ kind: `del bridge ${b}`, run: (c) => delBridges(c, [b]) })),
      fc.record({ b: bridge, col: fc.constantFrom('external_ids', 'other_config'), m: smallMap }).map(({ b, col, m }) => ({
        kind: `set ${b} ${col}=${JSON.stringify(m)}`,
        run: (c) => c.transact(DB, [setBridge(b, { [col]: atom.map(m) })]),
      })),
      fc.record({ b: bridge, col: fc.constantFrom('external_ids', 'other_config'), k: key, v: val, del: fc.boolean() }).map(({ b, col, k, v, del }) => ({
        kind: `${del ? 'delete' : 'insert'} ${b} ${col}:${k}`,
        run: (c) => c.transact(DB, [mutateBridge(b, del ? [col, 'delete', atom.set([k])] : [col, 'insert', atom.map({ [k]: v })])]),
      })),
      fc.record({ b: bridge, vlans: fc.uniqueArray(fc.integer({ min: 0, max: 4095 }), { maxLength: 4 }), stp: fc.boolean(), secure: fc.boolean() }).map(({ b, vlans, stp, secure }) => ({
        kind: `set ${b} flood_vlans/stp/fail_mode`,
        run: (c) => c.transact(DB, [setBridge(b, { flood_vlans: atom.set(vlans), stp_enable: stp, fail_mode: secure ? 'secure' : atom.set([]) })]),
      })),
      fc.record({ b: bridge, tag: fc.option(fc.integer({ min: 0, max: 4095 })) }).map(({ b, tag }) => ({
        kind: `add port to ${b}`,
        run: (c, n) => c.transact(DB, addPort(b, `${b}p${n}`, tag === null ? {} : { tag })),
      })),
      fc.record({ b: bridge, nth: fc.nat() }).map(({ b, nth }) => ({
        kind: `del port of ${b}`,
        run: async (c) => {
          const ports = Object.values(await selected(c, 'Port')).map((p) => p.name as string).filter((p) => p.startsWith(`${b}p`));
          if (ports.length) await delPort(c, b, ports[nth % ports.length]!);
        },
      })),
    );
    let portNo = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async (edits) => {
        await delBridges(c, names);
        for (const e of edits) {
          await e.run(c, portNo++);
          await expectAllCached(c, plain);
        }
      }),
      { numRuns: 50, ...(process.env.VPF_SEED ? { seed: Number(process.env.VPF_SEED) } : {}) },
    );
    await delBridges(c, names);
  }, 240_000);

  it('a where condition keeps other rows out; setConditions changes which rows are in', async () => {
    await c.transact(DB, addBridge('wa', { external_ids: atom.map({ vm: 'a' }) }));
    await c.transact(DB, addBridge('wb', { external_ids: atom.map({ vm: 'b' }) }));
    await c.transact(DB, addPort('wb', 'wbp1'));
    const w = new OvsdbClient(`unix:${ovs.dbSock}`, log, { echoMs: 500 });
    await w.connect();
    try {
      const id = await w.monitor({ ...W_SPEC, where: { Bridge: [['name', '==', 'wa']] } });
      expect(Object.values(cached(w, 'Bridge')).map((r) => r.name)).toEqual(['wa']);
      expect(cached(w, 'Bridge')).toEqual(await wSelected(c, [['name', '==', 'wa']]));
      // Tables without a condition stay whole.
      expect(cached(w, 'Port')).toEqual(await selected(c, 'Port'));

      // By a map condition: a row that comes to match arrives whole, one that stops matching leaves.
      const byVm: Condition[] = [['external_ids', 'includes', atom.map({ vm: 'a' })]];
      await w.setConditions(id, { Bridge: byVm });
      expect(cached(w, 'Bridge')).toEqual(await wSelected(c, byVm));
      await c.transact(DB, [setBridge('wb', { external_ids: atom.map({ vm: 'a', x: 'y' }) })]);
      await expectCache(w, 'Bridge', await wSelected(c, byVm));
      expect(Object.values(cached(w, 'Bridge')).map((r) => r.name).sort()).toEqual(['wa', 'wb']);
      await c.transact(DB, [setBridge('wa', { external_ids: atom.map({ vm: 'c' }) })]);
      await expectCache(w, 'Bridge', await wSelected(c, byVm));
      expect(Object.values(cached(w, 'Bridge')).map((r) => r.name)).toEqual(['wb']);

      // By index, and clauses are alternatives: [false] is no row, two clauses are either.
      await w.setConditions(0, { Bridge: [false] });
      expect(cached(w, 'Bridge')).toEqual({});
      const either: Condition[] = [['name', '==', 'wa'], ['name', '==', 'wb']];
      await w.setConditions(0, { Bridge: either });
      expect(Object.values(cached(w, 'Bridge')).map((r) => r.name).sort()).toEqual(['wa', 'wb']);

      await expect(w.setConditions(id, { Nope: [] })).rejects.toThrow(/does not monitor/);
      await expect(w.setConditions(7, { Bridge: [] })).rejects.toThrow(/no monitor/);
      // A condition the server refuses leaves the old one in force.
      await expect(w.setConditions(id, { Bridge: [['no_such_column', '==', 1]] })).rejects.toThrow(OvsdbError);
      await c.transact(DB, [setBridge('wb', { other_config: atom.map({ k: 'v' }) })]);
      await expectCache(w, 'Bridge', await wSelected(c, either));
    } finally {
      w.close();
      await delBridges(c, ['wa', 'wb']);
    }
  });

  it('after ovsdb-server restarts, the resync re-issues monitor_cond with the current conditions', async () => {
    await c.transact(DB, addBridge('ra', { other_config: atom.map({ n: '1' }) }));
    await c.transact(DB, addBridge('rb'));
    const w = new OvsdbClient(`unix:${ovs.dbSock}`, log, { echoMs: 500 });
    await w.connect();
    try {
      const id = await w.monitor({ ...W_SPEC, where: { Bridge: [['name', '==', 'ra']] } });
      await w.setConditions(id, { Bridge: [['name', '==', 'rb']] });
      const reconnected = Promise.all([w, c, plain].map((x) => new Promise((r) => x.once('reconnected', r))));
      await ovs.restartOvsdbServer();
      await reconnected;
      expect(Object.values(cached(w, 'Bridge')).map((r) => r.name)).toEqual(['rb']);
      expect(cached(w, 'Bridge')).toEqual(await wSelected(c, [['name', '==', 'rb']]));
      // The monitor lives on under its id in the new session.
      await w.setConditions(id, { Bridge: [['name', '==', 'ra']] });
      expect(Object.values(cached(w, 'Bridge')).map((r) => r.name)).toEqual(['ra']);
      await c.transact(DB, [mutateBridge('ra', ['other_config', 'insert', atom.map({ m: '2' })])]);
      await expectCache(w, 'Bridge', await wSelected(c, [['name', '==', 'ra']]));
      // The plain-monitor client resynced too (the monitor with conditions it refused was not kept).
      await expectAllCached(c, plain);
    } finally {
      w.close();
      await delBridges(c, ['ra', 'rb']);
    }
  }, 30_000);
});

describe("the client's liveness checks against its own blocked event loop", () => {
  /**
   * A stand-in ovsdb-server in its own process (a blocked loop here must not block it, as it does not
   * block ovsdb-server): answers echo and list_dbs unless silent, and reports each connection and close.
   */
  async function fakeServer(silent: boolean) {
    const dir = mkdtempSync(join(tmpdir(), 'vpf-ovsdb-'));
    const path = join(dir, 'db.sock');
    const script = `
      const net = require('node:net');
      let n = 0;
      net.createServer((s) => {
        const id = ++n;
        process.stdout.write('open ' + id + '\\n');
        s.on('close', () => process.stdout.write('close ' + id + '\\n'));
        s.on('error', () => {});
        // RFC 7047 messages are bare JSON objects back to back: split them by brace depth.
        let buf = '', depth = 0, str = false, esc = false, from = 0;
        s.setEncoding('utf8');
        s.on('data', (chunk) => {
          for (let i = buf.length, all = (buf += chunk); i < all.length; i++) {
            const ch = all[i];
            if (str) { if (esc) esc = false; else if (ch === '\\\\') esc = true; else if (ch === '"') str = false; continue; }
            if (ch === '"') str = true;
            else if (ch === '{') depth++;
            else if (ch === '}' && --depth === 0) {
              const m = JSON.parse(all.slice(from, i + 1));
              from = i + 1;
              if (${silent} || m.id === undefined || m.id === null) continue;
              if (m.method === 'echo') s.write(JSON.stringify({ id: m.id, result: m.params, error: null }));
              if (m.method === 'list_dbs') s.write(JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }));
            }
          }
        });
      }).listen(process.argv[1], () => process.stdout.write('ready\\n'));`;
    const child = spawn(process.execPath, ['-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const events: string[] = [];
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const lines = out.split('\n');
      out = lines.pop()!;
      events.push(...lines);
    });
    while (!events.includes('ready')) await sleep(10);
    return {
      path,
      opened: () => events.filter((e) => e.startsWith('open')).length,
      closed: () => events.filter((e) => e.startsWith('close')).length,
      close: () => {
        child.kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** A long synchronous stretch (a journal replay, a big translation): nothing else runs. */
  const block = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };

  it('a blocked loop longer than the echo check is not a dead server: the connection stays, and a reply read late is no timeout', async () => {
    const srv = await fakeServer(false);
    const c = new OvsdbClient(`unix:${srv.path}`, pino({ level: 'silent' }), { echoMs: 100, timeoutMs: 300 });
    try {
      await c.connect();
      await sleep(150);
      for (let i = 0; i < 3; i++) {
        block(700);
        await sleep(250);
      }
      // The reply to this request arrives while the loop is blocked past its timeout; the stretch ends in the
      // check phase (setImmediate), so the next loop iteration runs its timers before it polls the socket.
      const asked = await new Promise<{ p: Promise<unknown> }>((resolve) =>
        setImmediate(() => {
          const p = c.request('list_dbs', []);
          block(700);
          resolve({ p });
        }),
      );
      await expect(asked.p).resolves.toEqual(['Open_vSwitch']);
      await sleep(50);
      expect([srv.opened(), srv.closed()]).toEqual([1, 0]);
    } finally {
      c.close();
      srv.close();
    }
  });

  // Same period, armed just after the client's: each of the test's ticks runs right after the client's,
  // in the same timers phase (as the daemon's reconcile timer may) or right after the client's check
  // (setImmediate). Blocked 1.25 periods: the client's next tick is late by a quarter period only, and
  // the answer to its last echo has been waiting in the socket.
  for (const where of ['timers', 'check'] as const)
    it(`a stretch that starts right after an echo check (${where} phase) is not the server's silence either`, async () => {
      const srv = await fakeServer(false);
      const every = 200;
      const c = new OvsdbClient(`unix:${srv.path}`, pino({ level: 'silent' }), { echoMs: every });
      try {
        await c.connect();
        let ticks = 0;
        const blocks = setInterval(() => {
          if (++ticks % 3) return;
          if (where === 'timers') block(every * 1.25);
          else setImmediate(() => block(every * 1.25));
        }, every);
        await sleep(every * 10);
        clearInterval(blocks);
        expect(ticks).toBeGreaterThanOrEqual(6);
        await sleep(50);
        expect([srv.opened(), srv.closed()]).toEqual([1, 0]);
      } finally {
        c.close();
        srv.close();
      }
    });

  it('a server that stops answering is still found dead within a few echo periods', async () => {
    const srv = await fakeServer(true);
    const c = new OvsdbClient(`unix:${srv.path}`, pino({ level: 'silent' }), { echoMs: 100 });
    try {
      await c.connect();
      const t0 = performance.now();
      while (!srv.closed() && performance.now() - t0 < 2000) await sleep(10);
      // Two periods of silence, judged at the next tick: about 300 ms.
      expect(srv.closed()).toBe(1);
      expect(performance.now() - t0).toBeLessThan(1000);
    } finally {
      c.close();
      srv.close();
    }
  });
});
