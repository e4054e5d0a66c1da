// Durable per-VM state: one JSON snapshot per VM, written temp + fsync +
// rename (+ fsync of the directory), so kill -9 at any moment leaves either the
// old or the new state, never a torn file. A guest request is acknowledged only
// after its state is durable and installed.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { FlowerRule } from '../rules/model.js';
import type { PortMap } from '../translator/portmap.js';

export interface VmRecord {
  name: string;
  vfs: number;
  ports: PortMap;
  attach: Record<string, string>;
  /** Guest rules in install order (the kernel's mask order depends on it). */
  rules: { id: number; rule: FlowerRule; installedAt: number }[];
  nextRuleId: number;
  /** Host conntrack zone base for this VM's guest zones. */
  zoneBase: number;
  /** The translator's table layout, kept so changes stay incremental across restarts. */
  layout: [string, number][];
}

export class Journal {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private path(vm: string): string {
    return join(this.dir, `${vm}.json`);
  }

  save(rec: VmRecord): void {
    const tmp = `${this.path(rec.name)}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(rec));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path(rec.name));
    const dfd = openSync(this.dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  remove(vm: string): void {
    rmSync(this.path(vm), { force: true });
  }

  loadAll(): VmRecord[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as VmRecord);
  }
}
