// vpfctl's side of the admin API: one HTTP request over the daemon's unix socket.
import { request } from 'node:http';
import type { ApiError } from './api.js';

export class AdminClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errno?: number,
  ) {
    super(message);
  }
}

export function adminRequest<T>(socketPath: string, method: string, path: string, body?: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          const isJson = (res.headers['content-type'] ?? '').startsWith('application/json');
          const value = isJson ? JSON.parse(text) : text;
          if (status >= 400) {
            const e = value as ApiError;
            reject(new AdminClientError(e.error ?? text, status, e.errno));
          } else resolve(value as T);
        });
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? `vpfd is not running (no ${socketPath})` : e.message;
      reject(new AdminClientError(why, 0));
    });
    if (payload) req.write(payload);
    req.end();
  });
}
