// Network namespaces standing in for what sits behind a bridge port: a pod
// behind a VF, or the wire behind the uplink. Each gets eth0, whose veth peer
// `<name>-dp` is in the private OVS's namespace, ready to attach. Namespace
// names are host-wide, so a pod's carries this process's pid: two runs on one
// machine never take each other's.
import { execa } from 'execa';
import type { PrivateOvs } from '../harness/ovs.js';

const sh = (...a: string[]) => execa(a[0]!, a.slice(1));

/** Pod `name` (its port `<name>-dp` in `ovs`'s namespace); returns its namespace. */
export async function addPod(ovs: PrivateOvs, name: string, opts: { mac?: string; ip?: string } = {}): Promise<string> {
  const port = `${name}-dp`;
  name = `vpft${process.pid}-${name}`;
  await sh('ip', 'netns', 'add', name);
  await sh('ip', 'link', 'add', port, 'netns', ovs.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
  if (opts.mac) await sh('ip', '-n', name, 'link', 'set', 'eth0', 'address', opts.mac);
  if (opts.ip) await sh('ip', '-n', name, 'addr', 'add', opts.ip, 'dev', 'eth0');
  await sh('ip', '-n', name, 'link', 'set', 'eth0', 'up');
  await sh('ip', '-n', ovs.netns, 'link', 'set', port, 'up');
  // Userspace-datapath forwarding delivers what the veth hands it: offloaded (empty) checksums would arrive bad.
  await execa('ip', ['netns', 'exec', name, 'ethtool', '-K', 'eth0', 'tx', 'off'], { reject: false });
  await execa('ip', ['netns', 'exec', ovs.netns, 'ethtool', '-K', port, 'tx', 'off'], { reject: false });
  return name;
}

/** Deletes the pods' namespaces (as addPod returned them). */
export async function delPods(names: string[]): Promise<void> {
  for (const p of names) await execa('ip', ['netns', 'del', p], { reject: false });
}
