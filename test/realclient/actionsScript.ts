// The real-client tier's script for shared police actions (issue 11 section 4):
// what a guest OVS with hw-offload does to tc's action API (RTM_*ACTION) and the
// filters that reference a police by index, step by step. It runs against a real
// 6.1 kernel (actionsOracle.ts, answers in kernel-actions.json) and against vpfd
// (actions.test.ts), and the transcripts are compared.
import type { Step } from './script.js';

const tc = (group: string, line: string): Step => ({ group, tool: 'tc', args: line.split(' ') });

/** Representors the script uses; the kernel run has dummies of these names. */
export const ACTION_DEVICES = ['vf0', 'vf1', 'vf2'] as const;

function group(name: string, lines: string[]): Step[] {
  return lines.map((l) => tc(name, l));
}

export function actionsScript(): Step[] {
  return [
    ...group('setup', ACTION_DEVICES.map((d) => `qdisc add dev ${d} clsact`)),
    ...group('standalone police: add, get, ls, EEXIST, ENOENT', [
      'actions add action police rate 1mbit burst 10k index 5',
      'actions add action police rate 1mbit burst 10k index 5',
      'actions ls action police',
      'actions get action police index 5',
      'actions get action police index 9',
      'actions del action police index 9',
      '-j actions ls action police',
    ]),
    ...group('filters bind a shared police by index', [
      'filter add dev vf0 ingress prio 1 protocol ip flower dst_ip 10.0.0.1 action police index 5',
      'filter show dev vf0 ingress',
      'filter add dev vf1 ingress prio 1 protocol ip flower dst_ip 10.0.0.2 action police rate 2mbit burst 20k conform-exceed drop/pipe index 5 action mirred egress redirect dev vf2',
      'filter show dev vf1 ingress',
      'actions ls action police',
      'actions del action police index 5',
      'actions flush action police',
      'filter add dev vf0 ingress prio 2 protocol ip flower dst_ip 10.0.0.3 action police rate 3mbit burst 30k conform-exceed drop',
      'filter add dev vf0 ingress prio 3 protocol ip flower dst_ip 10.0.0.4 action police index 7',
      'actions ls action police',
    ]),
    ...group('replace a shared police: every filter follows', [
      'actions replace action police rate 4mbit burst 40k conform-exceed drop index 5',
      'filter show dev vf0 ingress prio 1',
      'filter show dev vf1 ingress',
      'actions change action police rate 5mbit burst 10k index 9',
      'actions get action police index 9',
      'actions add action police pkts_rate 1000 pkts_burst 100 index 3',
      'actions ls action police',
    ]),
    ...group('unbind, delete and flush', [
      'filter del dev vf0 ingress prio 1',
      'filter del dev vf1 ingress prio 1',
      'actions get action police index 5',
      'actions flush action police',
      'actions ls action police',
      'filter del dev vf0 ingress',
      'actions flush action police',
      'actions ls action police',
      'actions flush action police',
      'actions del action police index 5',
    ]),
  ];
}
