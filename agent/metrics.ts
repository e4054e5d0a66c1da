// A small Prometheus text registry: counters and gauges with labels, and one
// histogram for install latency. Rendered by GET /metrics on the admin socket.

type Labels = Record<string, string | number>;
const key = (l: Labels) => Object.entries(l).sort().map(([k, v]) => `${k}="${String(v).replace(/"/g, '\\"')}"`).join(',');

export class Metrics {
  private counters = new Map<string, Map<string, number>>();
  private gauges = new Map<string, Map<string, number>>();
  private help = new Map<string, string>();
  private buckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
  private hist = new Map<string, { counts: number[]; sum: number; n: number }>();

  inc(name: string, labels: Labels = {}, by = 1, help = ''): void {
    const m = this.counters.get(name) ?? new Map<string, number>();
    m.set(key(labels), (m.get(key(labels)) ?? 0) + by);
    this.counters.set(name, m);
    if (help) this.help.set(name, help);
  }

  set(name: string, labels: Labels, value: number, help = ''): void {
    this.put(this.gauges, name, labels, value, help);
  }

  /** A counter kept elsewhere (e.g. by the flow installer), reported as it stands. */
  setTotal(name: string, labels: Labels, value: number, help = ''): void {
    this.put(this.counters, name, labels, value, help);
  }

  private put(family: Map<string, Map<string, number>>, name: string, labels: Labels, value: number, help: string): void {
    const m = family.get(name) ?? new Map<string, number>();
    m.set(key(labels), value);
    family.set(name, m);
    if (help) this.help.set(name, help);
  }

  observe(name: string, labels: Labels, seconds: number, help = ''): void {
    const k = `${name}{${key(labels)}}`;
    const h = this.hist.get(k) ?? { counts: this.buckets.map(() => 0), sum: 0, n: 0 };
    this.buckets.forEach((b, i) => {
      if (seconds <= b) h.counts[i]!++;
    });
    h.sum += seconds;
    h.n++;
    this.hist.set(k, h);
    if (help) this.help.set(name, help);
  }

  render(): string {
    const out: string[] = [];
    const emit = (type: string, name: string, m: Map<string, number>) => {
      if (this.help.has(name)) out.push(`# HELP ${name} ${this.help.get(name)}`);
      out.push(`# TYPE ${name} ${type}`);
      for (const [l, v] of m) out.push(`${name}${l ? `{${l}}` : ''} ${v}`);
    };
    for (const [n, m] of this.counters) emit('counter', n, m);
    for (const [n, m] of this.gauges) emit('gauge', n, m);
    // One HELP/TYPE per family, then every label set's series (the text format wants a family together).
    const byName = [...this.hist].sort(([a], [b]) => (a < b ? -1 : 1));
    let last = '';
    for (const [k, h] of byName) {
      const name = k.slice(0, k.indexOf('{'));
      const labels = k.slice(k.indexOf('{') + 1, -1);
      const sep = labels ? `${labels},` : '';
      if (name !== last) {
        if (this.help.has(name)) out.push(`# HELP ${name} ${this.help.get(name)}`);
        out.push(`# TYPE ${name} histogram`);
        last = name;
      }
      this.buckets.forEach((b, i) => out.push(`${name}_bucket{${sep}le="${b}"} ${h.counts[i]}`));
      out.push(`${name}_bucket{${sep}le="+Inf"} ${h.n}`, `${name}_sum{${labels}} ${h.sum}`, `${name}_count{${labels}} ${h.n}`);
    }
    return out.join('\n') + '\n';
  }
}
