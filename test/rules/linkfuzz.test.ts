// The link and devlink decoders are the daemon's front door for the legacy
// path: whatever a guest sends, a typed error (errno > 0, extack text) or a
// request. Never a throw, never an "internal error".
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attempt, VpfError } from '../../rules/errors.js';
import { decodeDevlinkRequest, encodeEswitchRequest } from '../../rules/netlink/devlink.js';
import { decodeLinkReply, decodeLinkRequest, encodeLinkReply } from '../../rules/netlink/link.js';
import { parseMessages } from '../../rules/netlink/nlmsg.js';
import { defaultVfSettings } from '../../rules/vf.js';
import { loadLinks } from '../corpus/captureLinks.js';

const links = loadLinks();
/** Captures name the veth's ifindex; the PF of the channel is 1. */
const channel = (hex: string, kind: string) => {
  const b = Buffer.from(hex, 'hex');
  if (kind !== 'genl' && b.readInt32LE(20) === links.ifindex.uplink) b.writeInt32LE(1, 20);
  return b;
};
const samples = [
  ...links.entries.map((e) => channel(e.message, e.kind)),
  encodeEswitchRequest({ seq: 1 }, { cmd: 'eswitch-set', bus: 'pci', dev: '0000:00:00.0', mode: 'switchdev', inlineMode: 'link', encapMode: 'basic' }),
  encodeLinkReply({ seq: 1 }, { ifindex: 1, name: 'uplink', mac: '02:00:00:00:00:01', mtu: 1500, up: true }, { extMask: 1, vfs: [defaultVfSettings(), defaultVfSettings()] }),
];

function check(r: ReturnType<typeof decodeLinkRequest> | ReturnType<typeof decodeDevlinkRequest> | ReturnType<typeof decodeLinkReply>) {
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(VpfError);
    expect(r.error.errno).toBeGreaterThan(0);
    expect(r.error.message.length).toBeGreaterThan(0);
    expect(r.error.message).not.toMatch(/^internal error/);
  }
}

/** Frames the bytes as the channel does (a lying nlmsg_len is EBADMSG there), then runs every decoder. */
function decodeAll(buf: Buffer): void {
  const framed = attempt(() => parseMessages(buf));
  if (!framed.ok) {
    expect(framed.error.errno).toBeGreaterThan(0);
    return;
  }
  for (const m of framed.value) {
    check(decodeLinkRequest(m));
    check(decodeDevlinkRequest(m));
    check(decodeLinkReply(m));
  }
}

describe('legacy-path decoders under hostile input', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => decodeAll(Buffer.from(b))), { numRuns: 4000 });
  });

  it('random bytes behind a valid header and ifinfomsg / genlmsghdr', () => {
    fc.assert(
      fc.property(fc.constantFrom(16, 18, 19, 0x10, 0x100), fc.uint8Array({ minLength: 16, maxLength: 300 }), (type, body) => {
        const b = Buffer.alloc(16 + body.length);
        b.writeUInt32LE(b.length, 0);
        b.writeUInt16LE(type, 4);
        b.writeUInt16LE(5, 6);
        Buffer.from(body).copy(b, 16);
        decodeAll(b);
      }),
      { numRuns: 4000 },
    );
  });

  it('every truncation of real messages, with nlmsg_len fixed up and not', () => {
    for (const m of samples) {
      for (let n = 0; n < m.length; n++) {
        const cut = Buffer.from(m.subarray(0, n));
        decodeAll(cut);
        if (n >= 16) {
          cut.writeUInt32LE(n, 0);
          decodeAll(cut);
        }
      }
    }
  });

  it('bit flips and byte changes inside real messages (lying attribute lengths)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: samples.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), { minLength: 1, maxLength: 6 }),
        (i, edits) => {
          const m = Buffer.from(samples[i]!);
          for (const [pos, v, flip] of edits) {
            const at = 16 + (pos % (m.length - 16));
            m[at] = flip ? m[at]! ^ (1 << (v & 7)) : v;
          }
          decodeAll(m);
        },
      ),
      { numRuns: 6000 },
    );
  });
});
