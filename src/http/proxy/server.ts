/**
 * The HTTP proxy in front of the application (`proxy:` in litefs.yml,
 * ref §12.6): reads are served by the local node once it has every
 * transaction the client has seen (the `__txid` cookie), writes run on the
 * primary and set that cookie. Where LiteFS can only answer a write on a
 * replica with Fly.io's `fly-replay` header, this proxy forwards the write
 * to the primary's proxy itself (ARCHITECTURE §3.10), so it works on any
 * network; `fly-replay` stays available for Fly.io. WebSocket upgrades are
 * tunnelled under the same rules.
 */
import { STATUS_CODES, createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Reply } from '../reply.js';
import { compileGlob } from './glob.js';
import { requestPath, routeRequest, type RouteRules } from './route.js';
import { readTXIDCookie, txidSetCookie } from './txid-cookie.js';
import { UpstreamAgent, dial, endToEndHeaders, rawRequestHead } from './upstream.js';

/** What the proxy needs to know of its node. */
export interface ProxyNode {
  isPrimary(): boolean;
  /** The primary as this replica knows it (its lease hostname and API URL); null while unknown. */
  knownPrimary(): { readonly hostname: string; readonly advertiseURL: string } | null;
  /** How far this replica trails its primary (0 on the primary). */
  lagMs(): number;
  /** The database's TXID as this thread last heard it; undefined for a database this node does not have. */
  txid(db: string): bigint | undefined;
  /** The database's TXID including every commit that has returned to its client; undefined as above. */
  currentTXID(db: string): Promise<bigint | undefined>;
  /** Resolves at the next change of a position or of the role or primary, or after `ms`. */
  changed(ms: number): Promise<void>;
}

/** How a replica hands on a write. */
export type WriteRouting = 'forward' | 'fly-replay';

export interface ProxyOptions {
  /** Listen address (undefined host: every interface). */
  readonly host: string | undefined;
  readonly port: number;
  /** The application. */
  readonly target: { readonly host: string; readonly port: number };
  /** The database whose TXID the `__txid` cookie carries. */
  readonly db: string;
  /** `/litefs/health` answers 503 beyond this lag; 0 = never. */
  readonly maxLagMs: number;
  readonly passthrough: readonly string[];
  readonly alwaysForward: readonly string[];
  /** How long a write waits for this node to be primary or to know the primary. */
  readonly primaryRedirectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly readHeaderTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /**
   * `forward`: a replica sends the write to the primary's proxy, at the host
   * of the primary's advertise URL and this proxy's port (every node runs its
   * proxy on the same port). `fly-replay`: LiteFS's answer for Fly.io's edge.
   */
  readonly writes: WriteRouting;
  /** One line per request when set (proxy.debug). */
  readonly debug: boolean;
  readonly log: (line: string) => void;
  /** How long a refused connection to the application is retried (LiteFS: 30 s; it may still be starting). */
  readonly targetRetryMs?: number;
  /** How long a read waits for its cookie's TXID (LiteFS: 5 s). */
  readonly readWaitMs?: number;
}

/** Marks a write one proxy forwarded to another: it is never forwarded again. */
export const FORWARDED_HEADER = 'litefs-proxy-forwarded';

const DEFAULT_TARGET_RETRY_MS = 30_000;
const DEFAULT_READ_WAIT_MS = 5_000;
/** Longest single wait between two looks at the node's state. */
const RECHECK_MS = 100;

export class ProxyServer {
  private readonly server: Server;
  private readonly rules: RouteRules;
  private readonly targetAgent: UpstreamAgent;
  /** To the primary's proxy: a refused connection fails at once (the primary may have moved). */
  private readonly primaryAgent = new UpstreamAgent({ refusedRetryMs: 0 });
  /** Every upgraded connection, from its upgrade request on, and the far end of each tunnel: the server no longer tracks them. */
  private readonly tunnels = new Set<Duplex>();
  /** Aborts dials for tunnels when the proxy closes. */
  private readonly closing = new AbortController();

  constructor(
    private readonly node: ProxyNode,
    private readonly options: ProxyOptions,
  ) {
    this.rules = { passthrough: options.passthrough.map(compileGlob), alwaysForward: options.alwaysForward.map(compileGlob) };
    this.targetAgent = new UpstreamAgent({ refusedRetryMs: options.targetRetryMs ?? DEFAULT_TARGET_RETRY_MS });
    const read = options.readTimeoutMs;
    // Go: a zero ReadHeaderTimeout means ReadTimeout; Node wants headers' limit within the request's.
    const header = options.readHeaderTimeoutMs > 0 ? options.readHeaderTimeoutMs : read;
    this.server = createServer({
      requestTimeout: read,
      headersTimeout: read > 0 ? Math.min(header, read) : header,
      keepAliveTimeout: options.idleTimeoutMs,
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.tunnels.add(socket);
      socket.once('close', () => this.tunnels.delete(socket));
      this.handleUpgrade(req, socket, head).catch((err: unknown) => {
        this.options.log(`proxy: upgrade ${req.url ?? ''}: ${errorText(err)}`);
        socket.destroy();
      });
    });
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  /** Stops listening and cuts every connection, upstream ones too. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    this.closing.abort();
    for (const end of this.tunnels) end.destroy();
    this.targetAgent.destroy();
    this.primaryAgent.destroy();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const route = routeRequest(method, requestPath(req.url ?? '/'), this.rules);
    if (this.options.debug) this.options.log(`proxy: ${method} ${req.url ?? ''}: ${route}`);
    if (this.options.writeTimeoutMs > 0) {
      // Go's WriteTimeout: the answer must be written this long after the request head arrived.
      const timer = setTimeout(() => res.destroy(), this.options.writeTimeoutMs);
      res.once('close', () => clearTimeout(timer));
    }
    switch (route) {
      case 'passthrough':
        return this.pass(req, res, this.options.target, this.targetAgent, { setCookie: false });
      case 'health':
        return this.health(res);
      case 'read': {
        const waited = await this.waitForCookie(req, () => responseGone(res));
        if (waited === 'gone') return;
        if (waited === 'timeout') return new Reply(res, false).error(504, 'Proxy timeout');
        return this.pass(req, res, this.options.target, this.targetAgent, { setCookie: false });
      }
      case 'write':
        return this.write(req, res);
    }
  }

  private health(res: ServerResponse): void {
    const lag = this.node.lagMs();
    if (this.options.maxLagMs > 0 && lag > this.options.maxLagMs) return new Reply(res, false).error(503, 'Replication lag exceeded');
    new Reply(res, false).send(200, 'OK\n', 'text/plain; charset=utf-8');
  }

  /**
   * Read-your-writes: waits until the tracked database has reached the
   * TXID of the request's `__txid` cookie. A database this node does not
   * have, or no cookie, needs no wait. `gone`: the client left meanwhile
   * (seen within RECHECK_MS).
   */
  private async waitForCookie(req: IncomingMessage, clientGone: () => boolean): Promise<'ok' | 'timeout' | 'gone'> {
    const want = readTXIDCookie(req.headers.cookie);
    if (want === 0n) return 'ok';
    const db = this.options.db;
    let have = this.node.txid(db);
    // On the primary the last commits may not have reached this thread yet; ask the store.
    if (have !== undefined && have < want && this.node.isPrimary()) have = await this.node.currentTXID(db);
    const deadline = Date.now() + (this.options.readWaitMs ?? DEFAULT_READ_WAIT_MS);
    while (have !== undefined && have < want) {
      const left = deadline - Date.now();
      if (clientGone()) return 'gone';
      if (left <= 0) return 'timeout';
      await this.node.changed(Math.min(left, RECHECK_MS));
      have = this.node.txid(db);
    }
    return clientGone() ? 'gone' : 'ok';
  }

  /** A write runs on the primary; a replica forwards it or, on Fly.io, asks the edge to replay it there. */
  private async write(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const to = await this.writeDestination(req, () => responseGone(res));
    switch (to.kind) {
      case 'local':
        return this.pass(req, res, this.options.target, this.targetAgent, { setCookie: true });
      case 'primary':
        return this.pass(req, res, { host: to.host, port: this.options.port }, this.primaryAgent, { setCookie: false, forwardedTo: to.hostname });
      case 'replay':
        res.setHeader('fly-replay', `instance=${to.hostname}`);
        res.writeHead(200).end();
        return;
      case 'none':
        return new Reply(res, false).error(to.status, to.message);
      case 'gone':
        return;
    }
  }

  /**
   * Where a write goes: this node's application while primary; else the
   * primary's proxy (or, on Fly.io, a `fly-replay` answer), once a primary
   * is known, waiting for one up to primary-redirect-timeout.
   */
  private async writeDestination(req: IncomingMessage, clientGone: () => boolean): Promise<WriteDestination> {
    const deadline = Date.now() + this.options.primaryRedirectTimeoutMs;
    const forwarded = req.headers[FORWARDED_HEADER] !== undefined;
    for (;;) {
      if (clientGone()) return { kind: 'gone' };
      if (this.node.isPrimary()) return { kind: 'local' };
      // A write forwarded here is never forwarded again: one hop, never a loop.
      const primary = forwarded ? null : this.node.knownPrimary();
      if (primary !== null) {
        if (this.options.writes === 'fly-replay') return { kind: 'replay', hostname: primary.hostname };
        const host = primaryHost(primary.advertiseURL);
        if (host === undefined) return { kind: 'none', status: 502, message: `Proxy error: cannot forward to the primary: invalid advertise URL ${JSON.stringify(primary.advertiseURL)}` };
        return { kind: 'primary', host, hostname: primary.hostname };
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const why = forwarded ? 'forwarded write reached a node that is not the primary' : 'no primary available';
        return { kind: 'none', status: 503, message: `Proxy error: ${why}` };
      }
      await this.node.changed(Math.min(left, RECHECK_MS));
    }
  }

  /**
   * Sends the request on to `to` and streams the answer back (flushed as it
   * comes: server-sent events work). `setCookie`: this node is the primary
   * and the request a write, so the answer carries the database's TXID after
   * it.
   */
  private pass(
    req: IncomingMessage,
    res: ServerResponse,
    to: { readonly host: string; readonly port: number },
    agent: UpstreamAgent,
    how: { readonly setCookie: boolean; readonly forwardedTo?: string },
    retried = false,
  ): void {
    if (responseGone(res)) return;
    const headers = endToEndHeaders(req.headers);
    if (how.forwardedTo !== undefined) headers[FORWARDED_HEADER] = '1';
    const client = req.socket.remoteAddress;
    if (client !== undefined) headers['x-forwarded-for'] = req.headers['x-forwarded-for'] === undefined ? client : `${req.headers['x-forwarded-for']}, ${client}`;
    const upstream = httpRequest({ host: to.host, port: to.port, method: req.method, path: req.url, headers, agent });
    const cancel = (): void => {
      if (!res.writableFinished) upstream.destroy();
    };
    res.once('close', cancel);
    upstream.on('response', (answer) => {
      this.answer(answer, res, how.setCookie).catch((err: unknown) => this.fail(res, err));
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      res.off('close', cancel);
      // A kept-alive connection the application closed just as it was reused: safe to send again only without a body.
      const bodiless = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
      if (!retried && upstream.reusedSocket && bodiless && !res.headersSent && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        return this.pass(req, res, to, agent, how, true);
      }
      if (res.headersSent) return void res.destroy();
      const where = how.forwardedTo === undefined ? '' : ` (forwarding to the primary ${how.forwardedTo})`;
      new Reply(res, false).error(502, `Proxy error: ${err.message}${where}`);
    });
    // A retry sends a request whose (empty) body has already been read.
    if (req.readableEnded) upstream.end();
    else req.pipe(upstream);
  }

  private async answer(answer: IncomingMessage, res: ServerResponse, setCookie: boolean): Promise<void> {
    const headers: OutgoingHttpHeaders = endToEndHeaders(answer.headers);
    if (setCookie) {
      const txid = await this.node.currentTXID(this.options.db);
      if (txid !== undefined) headers['set-cookie'] = [...setCookieList(headers['set-cookie']), txidSetCookie(txid, Date.now())];
    }
    if (res.destroyed) return void answer.destroy();
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
    // A streamed answer (no length: server-sent events, long polls) shows its head at once; others go out with their body.
    if (answer.headers['content-length'] === undefined) res.flushHeaders();
    answer.pipe(res);
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const method = req.method ?? 'GET';
    const route = routeRequest(method, requestPath(req.url ?? '/'), this.rules);
    if (this.options.debug) this.options.log(`proxy: upgrade ${method} ${req.url ?? ''}: ${route}`);
    // An upgraded socket stays half-open: a client that left shows as its end.
    const socketGone = (): boolean => socket.destroyed || socket.readableEnded;
    const waited = route === 'read' ? await this.waitForCookie(req, socketGone) : 'ok';
    if (waited === 'gone') return void socket.destroy();
    if (waited === 'timeout') return rawError(socket, 504, 'Proxy timeout');
    if (route === 'health') return rawError(socket, 400, 'Bad Request');
    let to: { host: string; port: number } = this.options.target;
    let retryMs = this.options.targetRetryMs ?? DEFAULT_TARGET_RETRY_MS;
    // A second X-Forwarded-For line is the same as appending to the first (a list-valued header).
    const extra: [string, string][] = req.socket.remoteAddress === undefined ? [] : [['X-Forwarded-For', req.socket.remoteAddress]];
    const destination: WriteDestination = route === 'write' ? await this.writeDestination(req, socketGone) : { kind: 'local' };
    switch (destination.kind) {
      case 'local':
        break;
      case 'primary':
        to = { host: destination.host, port: this.options.port };
        retryMs = 0;
        extra.push([FORWARDED_HEADER, '1']);
        break;
      case 'replay':
        return void socket.end(`HTTP/1.1 200 OK\r\nFly-Replay: instance=${destination.hostname}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      case 'none':
        return rawError(socket, destination.status, destination.message);
      case 'gone':
        return void socket.destroy();
    }
    let upstream: Socket;
    try {
      upstream = await dial(to.host, to.port, { refusedRetryMs: retryMs, signal: this.closing.signal });
    } catch (err) {
      return rawError(socket, 502, `Proxy error: ${errorText(err)}`);
    }
    if (socket.destroyed) return void upstream.destroy();
    upstream.write(rawRequestHead(method, req.url ?? '/', req.rawHeaders, extra));
    if (head.length > 0) upstream.write(head);
    for (const [end, other] of [
      [upstream, socket],
      [socket, upstream],
    ] as const) {
      this.tunnels.add(end);
      end.on('error', () => other.destroy());
      end.once('close', () => {
        this.tunnels.delete(end);
        other.destroy();
      });
    }
    upstream.pipe(socket).pipe(upstream);
  }

  private fail(res: ServerResponse, err: unknown): void {
    this.options.log(`proxy: ${errorText(err)}`);
    if (!res.headersSent) new Reply(res, false).error(500, `Proxy error: ${errorText(err)}`);
    else res.destroy();
  }
}

type WriteDestination =
  | { readonly kind: 'local' }
  | { readonly kind: 'primary'; readonly host: string; readonly hostname: string }
  | { readonly kind: 'replay'; readonly hostname: string }
  | { readonly kind: 'none'; readonly status: number; readonly message: string }
  /** The client left while the write waited for a primary. */
  | { readonly kind: 'gone' };

/** The client of an HTTP request has gone (its connection closed). */
function responseGone(res: ServerResponse): boolean {
  return res.destroyed || res.socket === null || res.socket.destroyed;
}

/** The host part of the primary's advertise URL (its proxy listens there too). */
function primaryHost(advertiseURL: string): string | undefined {
  try {
    const host = new URL(advertiseURL).hostname;
    // URL keeps IPv6 literals bracketed; net.connect wants them bare.
    return host === '' ? undefined : host.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return undefined;
  }
}

function setCookieList(value: OutgoingHttpHeaders[string]): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

/** Go's http.Error on a connection that asked for an upgrade (no HTTP response object exists yet). */
function rawError(socket: Duplex, status: number, message: string): void {
  const body = message + '\n';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
