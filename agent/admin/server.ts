// The admin API server: HTTP+JSON on a unix socket, so access is controlled by
// the socket's file mode (0600, root) like ovs-vswitchd's unixctl socket.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import { VpfError } from '../../rules/errors.js';
import type { AdminBackend, VmSpec } from './api.js';

const MAX_BODY = 1 << 20;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errno?: number,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'request body too large');
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body) : String(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function vmSpecFrom(json: unknown): VmSpec {
  const j = json as Partial<VmSpec>;
  if (typeof j?.name !== 'string' || !/^[A-Za-z0-9_.-]{1,32}$/.test(j.name)) {
    throw new HttpError(400, 'name: 1-32 characters of [A-Za-z0-9_.-]');
  }
  if (!Number.isInteger(j.vfs) || (j.vfs as number) < 0 || (j.vfs as number) > 254) throw new HttpError(400, 'vfs: 0..254');
  return { name: j.name, vfs: j.vfs as number, ...(j.ports ? { ports: j.ports } : {}), ...(j.attach ? { attach: j.attach } : {}) };
}

async function route(backend: AdminBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://vpfd');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const m = req.method ?? 'GET';
  if (m === 'GET' && parts.length === 1 && parts[0] === 'metrics') {
    return send(res, 200, backend.metrics(), 'text/plain; version=0.0.4');
  }
  if (m === 'GET' && parts.length === 1 && parts[0] === 'offload') return send(res, 200, await backend.offload());
  if (parts[0] !== 'vms') throw new HttpError(404, `no route ${m} ${url.pathname}`);
  if (parts.length === 1 && m === 'GET') return send(res, 200, backend.listVms());
  if (parts.length === 1 && m === 'POST') return send(res, 201, await backend.addVm(vmSpecFrom(await readJson(req))));
  const name = parts[1]!;
  if (parts.length === 2 && m === 'DELETE') {
    await backend.delVm(name);
    return send(res, 200, { deleted: name });
  }
  if (parts.length === 3 && m === 'GET' && parts[2] === 'rules') return send(res, 200, await backend.vmRules(name));
  if (parts.length === 3 && m === 'GET' && parts[2] === 'explain') return send(res, 200, await backend.explain(name));
  throw new HttpError(404, `no route ${m} ${url.pathname}`);
}

export function startAdminServer(backend: AdminBackend, socketPath: string, log: Logger): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer((req, res) => {
    route(backend, req, res).catch((e: unknown) => {
      const err = e as Error;
      const status = e instanceof HttpError ? e.status : e instanceof VpfError ? (e.errno === 2 ? 404 : 409) : 500;
      const errno = e instanceof HttpError ? e.errno : e instanceof VpfError ? e.errno : undefined;
      if (status >= 500) log.error({ err, method: req.method, url: req.url }, 'admin request failed');
      send(res, status, { error: err.message, ...(errno ? { errno } : {}) });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      chmodSync(socketPath, 0o600);
      log.info({ socket: socketPath }, 'admin API listening');
      resolve(server);
    });
  });
}
