/**
 * Connections from the proxy to the application (`proxy.target`) and to the
 * primary's proxy: a keep-alive agent whose dialer waits out an application
 * that is still starting, and the header rules for passing a request or an
 * answer on.
 */
import { Agent, type ClientRequestArgs, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface DialOptions {
  /** Keep dialing while the peer refuses connections, this long (LiteFS: 30 s for the application, every 100 ms). */
  readonly refusedRetryMs: number;
  readonly retryEveryMs?: number;
  /** Stops a dial in progress, retries included (the proxy closes). */
  readonly signal?: AbortSignal;
}

const DEFAULT_RETRY_EVERY_MS = 100;

/**
 * Connects to host:port; a refused connection is tried again until
 * `refusedRetryMs` has passed, so requests that arrive while the
 * application is starting wait for it instead of failing. Nothing of the
 * request has been sent when a dial fails, so the retry is always safe.
 */
export function dial(host: string, port: number, options: DialOptions): Promise<Socket> {
  const deadline = Date.now() + options.refusedRetryMs;
  const every = options.retryEveryMs ?? DEFAULT_RETRY_EVERY_MS;
  const signal = options.signal;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (signal?.aborted === true) return reject(new Error('proxy closed'));
      const socket = connect({ host, port, signal });
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.destroy();
        if (err.code === 'ECONNREFUSED' && Date.now() + every <= deadline && signal?.aborted !== true) setTimeout(attempt, every);
        else reject(err);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        // A request head and its body are separate writes: Nagle would hold the body for an ACK.
        socket.setNoDelay(true);
        resolve(socket);
      });
    };
    attempt();
  });
}

/** A keep-alive agent whose new connections come from `dial`; destroy() also stops dials in progress. */
export class UpstreamAgent extends Agent {
  private readonly closing = new AbortController();

  constructor(private readonly dialOptions: DialOptions) {
    super({ keepAlive: true, maxFreeSockets: 100, timeout: 90_000 });
  }

  override destroy(): void {
    this.closing.abort();
    super.destroy();
  }

  override createConnection(options: ClientRequestArgs, oncreate?: (err: Error | null, socket: Duplex) => void): Duplex | null | undefined {
    const host = options.host ?? options.hostname ?? 'localhost';
    const port = Number(options.port ?? 80);
    dial(host, port, { ...this.dialOptions, signal: this.closing.signal }).then(
      (socket) => oncreate?.(null, socket),
      (err: Error) => oncreate?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1):
 * never passed on. Node frames the body itself on each side.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

/** The end-to-end headers of a message, for the next hop (also drops those named in its `Connection` header). */
export function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The head of a request as raw HTTP/1.1 text, for a protocol upgrade
 * (WebSocket) that is tunnelled byte for byte once the head is sent.
 */
export function rawRequestHead(method: string, target: string, rawHeaders: readonly string[], extra: readonly [string, string][] = []): string {
  const lines = [`${method} ${target} HTTP/1.1`];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) lines.push(`${rawHeaders[i]}: ${rawHeaders[i + 1]}`);
  for (const [name, value] of extra) lines.push(`${name}: ${value}`);
  return lines.join('\r\n') + '\r\n\r\n';
}
