// Regenerates captures.json from commands.txt with the real iproute2 on this
// machine: `VPF_CAPTURE_CORPUS=1 npx vite-node test/corpus/capture.ts` (root; needs strace).
import { writeFileSync } from 'node:fs';
import { captureBatch } from '../helpers/nlcapture.js';
import { capturesPath, corpusCommands, DEVS, type CorpusFile } from './corpus.js';

const TFILTER = new Set([44, 45, 46]);

export async function captureCorpus(cmds: string[]): Promise<CorpusFile> {
  const batch = await captureBatch(cmds.map((c) => ['tc', 'filter', ...c.split(/\s+/)]), DEVS);
  const failed: string[] = [];
  const entries = batch.captures.flatMap((c, i) => {
    const msg = c.messages.find((m) => TFILTER.has(m.readUInt16LE(4)));
    if (!msg) {
      failed.push(`${cmds[i]}\n    tc said: ${c.stderr.split('\n')[0]}`);
      return [];
    }
    return [{ cmd: cmds[i]!, message: msg.toString('hex') }];
  });
  if (failed.length) throw new Error(`iproute2 sent nothing for:\n  ${failed.join('\n  ')}`);
  return { ifindex: batch.ifindex, entries };
}

if (process.env.VPF_CAPTURE_CORPUS === '1') {
  const file = await captureCorpus(corpusCommands());
  writeFileSync(capturesPath, JSON.stringify(file, null, 1) + '\n');
  console.log(`captured ${file.entries.length} commands into ${capturesPath}`);
}
