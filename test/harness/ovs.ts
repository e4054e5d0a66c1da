// A private Open vSwitch for tests and the demo: its own run directory, its own
// network namespace (two userspace-datapath instances in one namespace collide on
// the `ovs-netdev` tap), datapath_type=netdev. Started and stopped by the caller;
// never touches a system OVS.
import { execa } from 'execa';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PrivateOvs {
  /** Network namespace the daemons (and their bridges' ports) live in. */
  netns: string;
  rundir: string;
  /** OVSDB unix socket path (no `unix:` prefix). */
  dbSock: string;
  /** unixctl socket of ovs-vswitchd, for `ovs-appctl -t`. */
  vswitchdCtl: string;
  /** Environment that points ovs-* tools at this instance. */
  env: Record<string, string>;
  /** `ovs-vsctl` against this instance. */
  vsctl(...args: string[]): Promise<string>;
  /** `ovs-ofctl -O OpenFlow15` with the bridge's management socket as target. */
  ofctl(cmd: string, bridge: string, ...args: string[]): Promise<string>;
  /** `ovs-appctl -t <vswitchd>`. */
  appctl(...args: string[]): Promise<string>;
  /** The management socket path of a bridge (`<rundir>/<br>.mgmt`). */
  mgmt(bridge: string): string;
  /** Kill and restart ovs-vswitchd only (flows are lost, OVSDB kept). */
  restartVswitchd(): Promise<void>;
  /** Kill and restart ovsdb-server on the same database file and socket. */
  restartOvsdbServer(): Promise<void>;
  stop(): Promise<void>;
}

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
let counter = 0;

async function waitFor(path: string, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!existsSync(path)) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function pidOf(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

export async function startOvs(opts: { netns?: string; extraVswitchdArgs?: string[] } = {}): Promise<PrivateOvs> {
  const rundir = mkdtempSync(join(tmpdir(), 'vpf-ovs-'));
  const netns = opts.netns ?? `vpft${process.pid}x${counter++}`;
  const env = {
    OVS_RUNDIR: rundir,
    OVS_DBDIR: rundir,
    OVS_LOGDIR: rundir,
    OVS_SYSCONFDIR: rundir,
    OVS_PKGDATADIR: '/usr/share/openvswitch',
  };
  const run = (cmd: string, args: string[]) => execa(cmd, args, { env, extendEnv: true });
  const inNs = (cmd: string, args: string[]) => run('ip', ['netns', 'exec', netns, cmd, ...args]);
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const dbSock = join(rundir, 'db.sock');
  await run('ovsdb-tool', ['create', join(rundir, 'conf.db'), SCHEMA]);
  const startOvsdb = async () => {
    await inNs('ovsdb-server', [
      join(rundir, 'conf.db'),
      `--remote=punix:${dbSock}`,
      `--pidfile=${join(rundir, 'ovsdb-server.pid')}`,
      `--unixctl=${join(rundir, 'ovsdb-server.ctl')}`,
      `--log-file=${join(rundir, 'ovsdb-server.log')}`,
      '--detach',
    ]);
    await waitFor(dbSock);
  };
  await startOvsdb();
  await run('ovs-vsctl', [`--db=unix:${dbSock}`, '--no-wait', 'init']);
  const vswitchdCtl = join(rundir, 'ovs-vswitchd.ctl');
  const startVswitchd = async () => {
    await inNs('ovs-vswitchd', [
      `unix:${dbSock}`,
      `--pidfile=${join(rundir, 'ovs-vswitchd.pid')}`,
      `--unixctl=${vswitchdCtl}`,
      `--log-file=${join(rundir, 'ovs-vswitchd.log')}`,
      '--detach',
      ...(opts.extraVswitchdArgs ?? []),
    ]);
    await waitFor(vswitchdCtl);
  };
  await startVswitchd();

  const ovs: PrivateOvs = {
    netns,
    rundir,
    dbSock,
    vswitchdCtl,
    env,
    async vsctl(...args) {
      return (await run('ovs-vsctl', [`--db=unix:${dbSock}`, ...args])).stdout;
    },
    async ofctl(cmd, bridge, ...args) {
      return (await run('ovs-ofctl', ['-O', 'OpenFlow15', cmd, ovs.mgmt(bridge), ...args])).stdout;
    },
    async appctl(...args) {
      return (await run('ovs-appctl', ['-t', vswitchdCtl, ...args])).stdout;
    },
    mgmt: (bridge) => join(rundir, `${bridge}.mgmt`),
    async restartOvsdbServer() {
      await killAndWait(join(rundir, 'ovsdb-server.pid'));
      rmSync(dbSock, { force: true });
      rmSync(join(rundir, 'ovsdb-server.ctl'), { force: true });
      await startOvsdb();
    },
    async restartVswitchd() {
      await killAndWait(join(rundir, 'ovs-vswitchd.pid'));
      rmSync(vswitchdCtl, { force: true });
      await startVswitchd();
    },
    async stop() {
      const signal = (sig: NodeJS.Signals) => {
        for (const name of ['ovs-vswitchd', 'ovsdb-server']) {
          const pid = pidOf(join(rundir, `${name}.pid`));
          if (pid) {
            try {
              process.kill(pid, sig);
            } catch {}
          }
        }
      };
      signal('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      signal('SIGKILL');
      await execa('ip', ['netns', 'del', netns], { reject: false });
      rmSync(rundir, { recursive: true, force: true });
    },
  };
  return ovs;
}

async function killAndWait(pidFile: string): Promise<void> {
  const pid = pidOf(pidFile);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
  const t0 = Date.now();
  while (Date.now() - t0 < 5000) {
    try {
      process.kill(pid, 0);
      await new Promise((r) => setTimeout(r, 20));
    } catch {
      break;
    }
  }
  rmSync(pidFile, { force: true });
}

/** Add a netdev bridge with secure fail mode (no NORMAL forwarding before our flows). */
export async function addTestBridge(ovs: PrivateOvs, name: string): Promise<void> {
  await ovs.vsctl(
    'add-br', name, '--', 'set', 'bridge', name, 'datapath_type=netdev', 'fail_mode=secure',
    'protocols=OpenFlow10,OpenFlow13,OpenFlow15',
  );
}
