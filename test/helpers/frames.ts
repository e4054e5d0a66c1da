// Raw test frames between pods (test/helpers/frames.py): send from one pod's
// eth0 while the listening pods capture, and return what each received, with
// its tag stack as read off the wire (outer tag first).
import { execa } from 'execa';

export interface Tag {
  tpid: number;
  vid: number;
  pcp: number;
}

export interface Frame {
  src: string;
  dst: string;
  tags: Tag[];
  marker: string;
}

export interface Send {
  dst: string;
  src: string;
  /** frames.py TAGS: "" or "88a8:20:0,8100:100:3", outer first. */
  tags?: string;
  count?: number;
  size?: number;
  /** Pacing between frames: the first one's upcall must not crowd out the rest on a loaded machine. */
  gapMs?: number;
}

let seq = 1;

/**
 * Sends from pod `from` and returns what each pod of `listeners` received, in
 * order, marked as this send's: what arrived until `seconds` after the sender
 * finished. The window starts at the end of the send, not at the capture's
 * start, so a sender slow to start on a loaded machine cannot outlast it.
 */
export async function traffic(from: string, f: Send, listeners: readonly string[], seconds = 2): Promise<Frame[][]> {
  const marker = `t${process.pid}x${seq++}`;
  // The capture's own limit only bounds a send that never returns; it is stopped below.
  const caps = listeners.map((p) => execa('ip', ['netns', 'exec', p, 'python3', 'test/helpers/frames.py', 'capture', 'eth0', String(seconds + 120)], { reject: false }));
  await Promise.all(caps.map((c) => new Promise<void>((resolve) => c.stdout!.once('data', () => resolve()))));
  try {
    await execa('ip', ['netns', 'exec', from, 'python3', 'test/helpers/frames.py', 'send', 'eth0', f.dst, f.src, f.tags ?? '', marker, String(f.count ?? 3), String(f.size ?? 60), String(f.gapMs ?? 5)]);
    await new Promise((r) => setTimeout(r, seconds * 1000));
  } finally {
    for (const c of caps) c.kill('SIGTERM');
  }
  const outs = await Promise.all(caps);
  return outs.map((o) =>
    o.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Frame & { ready?: boolean })
      .filter((x) => !x.ready && x.marker === marker),
  );
}
