/** Minimal test clients: raw HTTP/1.1 bytes over a socket, and HTTP/2 via node:http2 with headers kept in wire order. */
import { connect as netConnect } from 'node:net';
import { connect as h2connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';

/**
 * Sends `request` (optionally one byte at a time) and collects the response
 * bytes until `done(bytes)` is true and then `settleMs` pass with nothing
 * more arriving, or `timeoutMs` pass in total.
 */
export function rawHTTP1(
  port: number,
  request: Buffer,
  opts: { done?: (bytes: Buffer) => boolean; settleMs?: number; timeoutMs?: number; trickle?: boolean } = {},
): Promise<Buffer> {
  const done = opts.done ?? completeHTTP1;
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let settle: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(overall);
      clearTimeout(settle);
      sock.destroy();
      resolve(Buffer.concat(parts));
    };
    const overall = setTimeout(finish, opts.timeoutMs ?? 5000);
    sock.on('error', reject);
    sock.on('data', (d) => {
      parts.push(d);
      clearTimeout(settle);
      if (done(Buffer.concat(parts))) settle = setTimeout(finish, opts.settleMs ?? 50);
    });
    sock.on('connect', async () => {
      if (!opts.trickle) return void sock.write(request);
      for (let i = 0; i < request.length; i++) {
        sock.write(request.subarray(i, i + 1));
        await new Promise((r) => setImmediate(r));
      }
    });
  });
}

export interface ParsedHTTP1 {
  statusLine: string;
  headers: [string, string][];
  /** Body after transfer decoding. */
  body: Buffer;
  complete: boolean;
}

export function parseHTTP1(raw: Buffer): ParsedHTTP1 {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { statusLine: '', headers: [], body: Buffer.alloc(0), complete: false };
  const lines = raw.toString('latin1', 0, end).split('\r\n');
  const headers = lines.slice(1).map((l): [string, string] => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()];
  });
  const rest = raw.subarray(end + 4);
  const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
  const cl = get('content-length');
  if (cl !== undefined) {
    const n = Number(cl);
    return { statusLine: lines[0]!, headers, body: rest.subarray(0, n), complete: rest.length >= n };
  }
  if (get('transfer-encoding') === 'chunked') {
    const parts: Buffer[] = [];
    let off = 0;
    for (;;) {
      const eol = rest.indexOf('\r\n', off);
      if (eol < 0) break;
      const n = parseInt(rest.toString('latin1', off, eol), 16);
      if (n === 0) return { statusLine: lines[0]!, headers, body: Buffer.concat(parts), complete: true };
      if (rest.length < eol + 2 + n + 2) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + n));
      off = eol + 2 + n + 2;
    }
    return { statusLine: lines[0]!, headers, body: Buffer.concat(parts), complete: false };
  }
  return { statusLine: lines[0]!, headers, body: rest, complete: true };
}

export function completeHTTP1(raw: Buffer): boolean {
  return parseHTTP1(raw).complete;
}

export interface H2Response {
  status: number;
  /** Response headers in wire order, without pseudo-headers. */
  headers: [string, string][];
  body: Buffer;
}

/**
 * One HTTP/2 request. With `until`, the response is read only until
 * `until(body)` holds, then the stream is cancelled (as curl --max-time cut
 * the recorded streams).
 */
export function h2(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: Buffer,
  until?: (body: Buffer) => boolean,
  timeoutMs = 5000,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    const parts: Buffer[] = [];
    let status = 0;
    let list: [string, string][] = [];
    const timer = setTimeout(() => {
      req.close();
      reject(new Error(`h2 ${String(headers[':path'])}: timed out with ${Buffer.concat(parts).length} body bytes`));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      resolve({ status, headers: list, body: Buffer.concat(parts) });
    };
    req.on('response', (h, flags) => {
      void flags;
      status = Number(h[':status']);
      list = Object.entries(h)
        .filter(([k]) => !k.startsWith(':'))
        .map(([k, v]) => [k, String(v)]);
    });
    req.on('data', (d: Buffer) => {
      parts.push(d);
      if (until && until(Buffer.concat(parts))) {
        req.close();
        finish();
      }
    });
    req.on('end', finish);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (body !== undefined) req.end(body);
  });
}

export function h2session(port: number): ClientHttp2Session {
  return h2connect(`http://127.0.0.1:${port}`);
}
