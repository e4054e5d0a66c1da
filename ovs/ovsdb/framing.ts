// OVSDB's JSON-RPC runs over a plain stream with no delimiter between JSON
// values (RFC 7047 section 4). This splitter finds where each top-level value
// ends by tracking depth outside strings, in one pass over each chunk.

export class JsonSplitter {
  private buf = '';
  private scanned = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;

  /** Feeds bytes (as text); returns every complete top-level JSON text. */
  push(chunk: string): string[] {
    this.buf += chunk;
    const out: string[] = [];
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true; // backslash
        else if (c === 0x22) this.inString = false; // quote
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        if (this.depth++ === 0) this.start = i;
      } else if (c === 0x7d || c === 0x5d) {
        if (--this.depth === 0) {
          out.push(this.buf.slice(this.start, i + 1));
          this.buf = this.buf.slice(i + 1);
          i = -1;
          this.start = -1;
        } else if (this.depth < 0) throw new Error('OVSDB stream: unbalanced JSON');
      } else if (this.depth === 0 && c > 0x20) throw new Error(`OVSDB stream: unexpected '${String.fromCharCode(c)}' between messages`);
    }
    this.scanned = this.buf.length;
    if (this.buf.length > 64 << 20) throw new Error('OVSDB stream: message larger than 64 MiB');
    return out;
  }
}
