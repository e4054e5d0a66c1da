// The real-client tier's command script: what a guest types, in order. The
// same list runs against a real 6.1 kernel (test/realclient/oracle.ts, whose
// answers are committed as kernel.json) and against vpfd through nlshim
// (realclient.test.ts), and the two transcripts are compared step by step.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Step {
  /** Which group of the test it belongs to (one vitest case per group). */
  group: string;
  tool: 'tc' | 'ip' | 'devlink';
  args: string[];
  /**
   * What the kernel run executes instead, where only hardware can answer: the
   * kernel-vm's dummies have no offload, so a `skip_sw` filter is refused
   * there; the kernel runs it without `skip_sw` and the comparison drops the
   * `skip_sw` flag from vpfd's answer (normalize.ts).
   */
  kernelArgs?: string[];
}

/** Representors the corpus uses; the kernel run has dummies of these names. */
export const DEVICES = ['vf0', 'vf1', 'vf2', 'vf3', 'uplink'] as const;

const corpusFile = join(import.meta.dirname, '..', 'corpus', 'commands.txt');

/** The corpus forms (arguments after `tc filter`), as test/corpus/corpus.ts reads them. */
export function corpusForms(): string[][] {
  return readFileSync(corpusFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.trim().split(/\s+/));
}

const after = (args: string[], word: string): string | undefined => {
  const i = args.indexOf(word);
  return i >= 0 ? args[i + 1] : undefined;
};

/** Each corpus form through real tc: add, both shows, then delete what it added. */
function corpusSteps(): Step[] {
  const steps: Step[] = [];
  corpusForms().forEach((form, i) => {
    const group = `corpus ${String(i + 1).padStart(3, '0')}: tc filter ${form.join(' ')}`;
    const dev = after(form, 'dev')!;
    const dir = form.includes('egress') && form.indexOf('egress') < form.indexOf('flower') ? 'egress' : 'ingress';
    const add: Step = { group, tool: 'tc', args: ['filter', ...form] };
    if (form.includes('skip_sw')) add.kernelArgs = add.args.filter((a) => a !== 'skip_sw');
    steps.push(add);
    steps.push({ group, tool: 'tc', args: ['-s', 'filter', 'show', 'dev', dev, dir] });
    steps.push({ group, tool: 'tc', args: ['-j', '-s', 'filter', 'show', 'dev', dev, dir] });
    const prio = after(form, 'prio');
    // The filter's own chain is named before `flower`; a `chain` after it belongs to a `goto chain` action.
    const chain = after(form.slice(0, form.indexOf('flower')), 'chain') ?? '0';
    if (prio && form[0] !== 'del') steps.push({ group, tool: 'tc', args: ['filter', 'del', 'dev', dev, dir, 'chain', chain, 'prio', prio] });
  });
  return steps;
}

const tc = (group: string, line: string): Step => ({ group, tool: 'tc', args: line.split(' ') });

/** Lookups, replace, delete, dump order and chains: cls_api.c's answers. */
function filterSteps(): Step[] {
  const g = 'filters: get, replace, change, del, dump order';
  const lines = [
    'filter add dev vf0 ingress prio 1 handle 1 protocol ip flower dst_ip 10.0.0.1 action drop',
    'filter get dev vf0 ingress prio 1 handle 1 protocol ip flower',
    'filter get dev vf0 ingress prio 1 handle 99 protocol ip flower',
    'filter add dev vf0 ingress prio 1 handle 1 protocol ip flower dst_ip 10.0.0.9 action drop',
    'filter replace dev vf0 ingress prio 1 handle 1 protocol ip flower dst_ip 10.0.0.2 action pass',
    '-s filter show dev vf0 ingress',
    'filter change dev vf0 ingress prio 1 handle 1 protocol ip flower dst_ip 10.0.0.3 action drop',
    'filter get dev vf0 ingress prio 1 handle 1 protocol ip flower',
    'filter change dev vf0 ingress prio 1 handle 7 protocol ip flower dst_ip 10.0.0.3 action drop',
    'filter add dev vf0 ingress prio 1 protocol ipv6 flower action drop',
    'filter add dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.4 action drop',
    'filter add dev vf0 ingress prio 5 protocol ip flower dst_ip 10.0.0.5 action drop',
    'filter add dev vf0 ingress chain 2 prio 3 protocol ip flower dst_ip 10.0.0.6 action drop',
    'filter add dev vf0 ingress chain 1 prio 2 protocol ip flower dst_ip 10.0.0.7 action goto chain 2',
    'filter add dev vf0 ingress prio 3 protocol all flower action goto chain 1',
    'filter show dev vf0 ingress',
    '-j filter show dev vf0 ingress',
    'filter show dev vf0 ingress chain 1',
    'filter show dev vf0 ingress prio 1',
    'filter show dev vf0 egress',
    'filter del dev vf0 ingress prio 1 handle 99 protocol ip flower',
    'filter del dev vf0 ingress prio 9',
    'filter del dev vf0 ingress prio 1 handle 1 protocol ip flower',
    'filter show dev vf0 ingress prio 1',
    'filter del dev vf0 ingress chain 2',
    'filter del dev vf0 ingress',
    'filter show dev vf0 ingress',
    'filter del dev vf0 ingress chain 1',
    'filter show dev vf0 ingress',
    'chain show dev vf0 ingress',
  ];
  return lines.map((l) => tc(g, l));
}

/** cls_flower.c fl_ht_insert_unique: a key already in its mask's table (whatever the actions or flags) is EEXIST. */
function duplicateSteps(): Step[] {
  const g = 'filters: a key its mask already holds';
  const lines = [
    'filter add dev vf2 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action drop',
    'filter add dev vf2 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action pass',
    'filter add dev vf2 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 skip_hw action drop',
    'filter add dev vf2 ingress prio 1 protocol ip flower dst_ip 10.0.1.1/16 action drop',
    'filter add dev vf2 ingress prio 1 protocol ip flower dst_ip 10.0.2.2/16 action drop',
    'filter add dev vf2 ingress prio 1 protocol ip flower dst_ip 10.0.0.2 action drop',
    'filter add dev vf2 ingress prio 2 protocol ip flower dst_ip 10.0.0.1 action drop',
    'filter add dev vf2 ingress chain 1 prio 1 protocol ip flower dst_ip 10.0.0.1 action drop',
    'filter show dev vf2 ingress',
    'filter del dev vf2 ingress',
    'filter del dev vf2 ingress chain 1',
    'filter show dev vf2 ingress',
  ];
  return lines.map((l) => tc(g, l));
}

function chainSteps(): Step[] {
  const g = 'chains: add, get, show, del';
  const lines = [
    'chain add dev vf1 ingress chain 5',
    'chain add dev vf1 ingress chain 3',
    'chain show dev vf1 ingress',
    '-j chain show dev vf1 ingress',
    'chain get dev vf1 ingress chain 5',
    'chain get dev vf1 ingress chain 7',
    'chain add dev vf1 ingress chain 5',
    'filter add dev vf1 ingress chain 5 prio 1 protocol ip flower dst_ip 10.0.0.1 action drop',
    'filter show dev vf1 ingress',
    'chain del dev vf1 ingress chain 5',
    'chain show dev vf1 ingress',
    'filter show dev vf1 ingress',
    'chain del dev vf1 ingress chain 5',
    'chain del dev vf1 ingress chain 3',
    'chain show dev vf1 ingress',
  ];
  return lines.map((l) => tc(g, l));
}

/** Refusals: tc's own parse errors, unknown devices, and the kernel's extack lines. */
function errorSteps(): Step[] {
  const g = 'errors: what tc prints and its exit code';
  const lines = [
    'filter add dev vf9 ingress prio 1 protocol ip flower action drop',
    'filter add dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.300 action drop',
    'filter add dev vf0 ingress prio 1 protocol ip flower ip_proto tcp dst_port 99999 action drop',
    'filter add dev vf0 ingress prio 1 protocol ip flower bogus_key 1 action drop',
    'filter add dev vf0 ingress prio 1 protocol ip flower action mirred egress redirect dev vf9',
    'filter add dev vf0 ingress prio 1 protocol ip flower action goto chain',
    'filter add dev vf0 ingress prio 1 protocol ip flower vlan_id 5 action drop',
    'filter add dev vf0 ingress prio 1 protocol 802.1Q flower vlan_id 5000 action drop',
    'filter add dev vf0 ingress prio 1 protocol ip flower skip_hw skip_sw action drop',
    'filter add dev vf0 ingress prio 1 protocol ipv4 flower ip_proto udp dst_port 53 action drop',
    'filter add dev vf0 ingress prio 2 protocol ip flower dst_mac 2:0:0:0:0:1 action drop',
    'filter show dev vf0 ingress',
    'filter del dev vf0 ingress',
    'filter show dev vf9 ingress',
    'chain get dev vf0 ingress chain 0',
    'filter get dev vf0 ingress prio 1 protocol ip flower',
  ];
  return lines.map((l) => tc(g, l));
}

/** Setup every run shares: the clsact qdiscs the guest adds before its filters. */
export function setupSteps(): Step[] {
  return DEVICES.map((d) => tc('setup', `qdisc add dev ${d} clsact`));
}

/** The tc script, in order: it runs on a real kernel as one sequence. */
export function tcScript(): Step[] {
  return [...setupSteps(), ...corpusSteps(), ...filterSteps(), ...duplicateSteps(), ...chainSteps(), ...errorSteps()];
}
