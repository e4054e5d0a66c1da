// One VM's data-plane bed: a private OVS, a pod (netns + veth) behind each of
// the VM's VFs (and, if asked, one behind the uplink as the wire), vpfd in
// this process, and the guest's filter requests over its channel. For tests
// that send real frames through vpfd's flows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { expect } from 'vitest';
import { DEFAULT_CONFIG, type VpfdConfig } from '../../agent/config.js';
import { Vpfd } from '../../agent/daemon.js';
import type { VmSpec } from '../../agent/admin/api.js';
import { talk } from '../../agent/ctl/channel.js';
import type { FlowerRule } from '../../rules/model.js';
import { parseError } from '../../rules/netlink/nlmsg.js';
import { encodeFilterRequest } from '../../rules/netlink/tc.js';
import { parseFilter, splitArgs } from '../../rules/tcsyntax/index.js';
import { startOvs, type PrivateOvs } from '../harness/ovs.js';
import { addPod, delPods } from './pods.js';

/** What the pods get beyond their MACs. */
export interface PodOpts {
  /** Address/prefix of each VF pod's eth0, by index (for kernel-sent IP traffic). */
  ips?: string[];
  /** MAC of a pod `<vm>w` behind the uplink, the wire; it comes last in `pods`. */
  wire?: string;
}

export class PodBed {
  d!: Vpfd;
  private seq = 1;

  private constructor(
    readonly ovs: PrivateOvs,
    readonly config: VpfdConfig,
    readonly vm: string,
    readonly pods: string[],
  ) {}

  /** Pods `<vm>0..` with `macs`, each behind the VF of its index (and `opts`); vpfd with `config` over the defaults. */
  static async start(vm: string, macs: string[], config: Partial<VpfdConfig> = {}, spec: Partial<VmSpec> = {}, opts: PodOpts = {}): Promise<PodBed> {
    const ovs = await startOvs();
    const pods: string[] = [];
    const attach: Record<string, string> = {};
    for (const [i, mac] of macs.entries()) {
      pods.push(await addPod(ovs, `${vm}${i}`, { mac, ip: opts.ips?.[i] }));
      attach[`vf${i}`] = `${vm}${i}-dp`;
    }
    if (opts.wire) {
      pods.push(await addPod(ovs, `${vm}w`, { mac: opts.wire }));
      attach.uplink = `${vm}w-dp`;
    }
    const stateDir = mkdtempSync(join(tmpdir(), `vpf-${vm}-`));
    const bed = new PodBed(ovs, { ...DEFAULT_CONFIG, stateDir, ovsdb: `unix:${ovs.dbSock}`, ovsRundir: ovs.rundir, datapathType: 'netdev', ...config }, vm, pods);
    await bed.restart();
    await bed.d.addVm({ name: vm, vfs: macs.length, attach, ...spec });
    return bed;
  }

  /** Starts vpfd (again, after a stop) on the same state. */
  async restart(): Promise<void> {
    await this.d?.stop();
    this.d = await Vpfd.start(this.config, pino({ level: 'silent' }));
  }

  /** The VM's guest channel. */
  get channel(): string {
    return this.d.channelPath(this.vm);
  }

  /** `tc filter add <line>` as the guest sends it; must be accepted. */
  async filter(line: string): Promise<void> {
    const r = parseFilter(splitArgs(line));
    if (!r.ok) throw new Error(r.error.message);
    const e = parseError((await talk(this.channel, encodeFilterRequest(r.value as FlowerRule, { seq: this.seq++ }))).at(-1)!);
    expect(e.errno, line).toBe(0);
  }

  nextSeq(): number {
    return this.seq++;
  }

  async stop(): Promise<void> {
    await this.d?.stop();
    await delPods(this.pods);
    await this.ovs.stop();
    rmSync(this.config.stateDir, { recursive: true, force: true });
  }
}
