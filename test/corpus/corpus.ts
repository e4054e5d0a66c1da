// The corpus of real tc commands and what iproute2 sent for each.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
export const DEVS = ['uplink', 'vf0', 'vf1', 'vf2', 'vf3'];

export interface CorpusEntry {
  /** Arguments after `tc filter`, e.g. `add dev vf0 ingress ...`. */
  cmd: string;
  /** The RTM_*TFILTER message iproute2 sent, hex. */
  message: string;
}

export interface CorpusFile {
  ifindex: Record<string, number>;
  entries: CorpusEntry[];
}

export function corpusCommands(): string[] {
  return readFileSync(join(here, 'commands.txt'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

export function loadCaptures(): CorpusFile {
  return JSON.parse(readFileSync(join(here, 'captures.json'), 'utf8')) as CorpusFile;
}

export const capturesPath = join(here, 'captures.json');
