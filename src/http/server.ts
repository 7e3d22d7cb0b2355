/**
 * The node HTTP API server (ref §9.1–9.2): one port, HTTP/1.1 and h2c, the
 * endpoints and status codes of LiteFS v0.5.11 with its plain-text error
 * bodies, and `Litefs-Id` / `Litefs-Cluster-Id` on every answer except
 * /metrics and /debug/*. What the answers contain comes from an `ApiNode`.
 * Addition: a request whose `Litefs-Cluster-Id` names another cluster gets
 * 412 Precondition Failed.
 */
import { type HaltLock, formatHaltLock } from './halt-lock.js';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { register as defaultRegistry, type Registry } from 'prom-client';
import { ApiError, DatabaseNotFoundError, type ApiNode } from './api.js';
import { CLUSTER_ID_HEADER, isValidClusterID } from './cluster-id.js';
import { WireFormatError } from './errors.js';
import { encodeEvent } from './events.js';
import { FEATURES_HEADER, SNAPSHOT_REASON_FEATURE } from './frames.js';
import { goJSON, goQuote } from './gotext.js';
import { createDualProtocolListener, type DualProtocolListener } from './listener.js';
import { httpMetrics, type HTTPMetrics } from './metrics.js';
import { formatNodeID, parseNodeID } from './node-id.js';
import { decodePosMap } from './posmap.js';
import { Reply, type RawResponse } from './reply.js';
import { StreamSession } from './stream-session.js';

type Request = IncomingMessage | Http2ServerRequest;

export interface ApiServerOptions {
  readonly node: ApiNode;
  /** Registry served at /metrics; prom-client's default, as LiteFS serves Prometheus's default registry. */
  readonly registry?: Registry;
  /** Time allowed to send one snapshot on /stream; 0 = no limit. LiteFS defaults it to the retention period. */
  readonly snapshotTimeoutMs?: number;
  /** Largest /stream request body read (a position map of ~16 bytes + name per database). */
  readonly maxPosMapBytes?: number;
  /** One line per unexpected condition (a stream that failed, a handler that threw after its headers). */
  readonly log?: (line: string) => void;
}

const DEFAULT_MAX_POS_MAP_BYTES = 64 << 20;

/** The methods each known path accepts; any other method gets 405. */
const ROUTES: Readonly<Record<string, readonly string[]>> = {
  '/events': ['GET'],
  '/export': ['GET'],
  '/halt': ['POST', 'DELETE'],
  '/handoff': ['POST'],
  '/import': ['POST'],
  '/info': ['GET'],
  '/litefs-ts/halt': ['POST'],
  '/promote': ['POST'],
  '/stream': ['POST'],
  '/tx': ['POST'],
};

/** What Go's DetectContentType says for JSON or text bodies. */
const SNIFFED_TEXT = 'text/plain; charset=utf-8';
/** ... and for a SQLite database file. */
const SNIFFED_BINARY = 'application/octet-stream';

export class ApiServer {
  private readonly node: ApiNode;
  private readonly registry: Registry;
  private readonly metrics: HTTPMetrics;
  private readonly snapshotTimeoutMs: number;
  private readonly maxPosMapBytes: number;
  private readonly log: (line: string) => void;
  private readonly listener: DualProtocolListener;
  /** Aborted by close(): long-lived responses (/stream, /events) end on it. */
  private readonly closing = new AbortController();
  private readonly active = new Set<Promise<void>>();

  constructor(options: ApiServerOptions) {
    this.node = options.node;
    this.registry = options.registry ?? defaultRegistry;
    this.metrics = httpMetrics(this.registry);
    this.snapshotTimeoutMs = options.snapshotTimeoutMs ?? 0;
    this.maxPosMapBytes = options.maxPosMapBytes ?? DEFAULT_MAX_POS_MAP_BYTES;
    this.log = options.log ?? (() => {});
    this.listener = createDualProtocolListener((req, res, http2) => {
      const done = this.handle(req, new Reply(res as RawResponse, http2), http2).catch((err: unknown) => {
        this.log(`http: ${req.method} ${req.url}: ${errorMessage(err)}`);
      });
      this.active.add(done);
      void done.finally(() => this.active.delete(done));
    });
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(port: number, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const server = this.listener.server;
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo {
    return this.listener.server.address() as AddressInfo;
  }

  /** Ends open streams (each gets its End frame), then closes the port and every connection. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.race([Promise.allSettled([...this.active]), new Promise((r) => setTimeout(r, 1000))]);
    await this.listener.close();
  }

  private async handle(req: Request, reply: Reply, http2: boolean): Promise<void> {
    req.on('error', () => {}); // a client that resets mid-body is handled where the body is read
    const { path, query } = splitTarget(req.url ?? '/');
    const method = req.method ?? 'GET';

    if (path === '/metrics') return this.serveMetrics(reply);
    if (path.startsWith('/debug/')) {
      // Go's expvar and pprof are not reproduced; like them, no Litefs headers.
      return reply.error(404, '404 page not found');
    }

    reply.set('Litefs-Id', formatNodeID(this.node.nodeID));
    const clusterID = this.node.clusterID();
    if (clusterID !== '') reply.set('Litefs-Cluster-Id', clusterID);

    const methods = ROUTES[path];
    if (methods === undefined) return reply.error(404, '404 page not found');
    if (!methods.includes(method)) return reply.error(405, 'method not allowed');
    const mismatch = clusterMismatch(clusterID, headerValue(req, CLUSTER_ID_HEADER));
    if (mismatch !== undefined) return reply.error(412, mismatch);

    const signal = this.requestSignal(reply);
    try {
      switch (path) {
        case '/events':
          return await this.getEvents(reply, signal);
        case '/export':
          return await this.getExport(reply, query, signal);
        case '/halt':
          return method === 'POST' ? await this.postHalt(req, reply, query, signal) : await this.deleteHalt(req, reply, query);
        case '/handoff':
          return await this.postHandoff(reply, query, signal);
        case '/import':
          return await this.postImport(req, reply, query, signal);
        case '/info':
          return this.getInfo(reply);
        case '/litefs-ts/halt':
          return await this.postHoldHalt(reply, query, signal);
        case '/promote':
          await this.node.promote(signal);
          return reply.send(200, '');
        case '/stream':
          return await this.postStream(req, reply, query, http2);
        case '/tx':
          return await this.postTx(req, reply, query, signal);
      }
    } catch (err) {
      this.fail(reply, err instanceof ApiError ? err.status : 500, errorMessage(err));
    }
  }

  /** Sends an error if nothing was sent yet; otherwise the response can only be cut off. */
  private fail(reply: Reply, status: number, message: string): void {
    if (!reply.headersSent) return reply.error(status, message);
    this.log(`http: error after response started: ${message}`);
    reply.abort();
  }

  /** Aborts when the response closes (client gone, or finished) or the server closes. */
  private requestSignal(reply: Reply): AbortSignal {
    const gone = new AbortController();
    reply.onClose(() => gone.abort());
    return AbortSignal.any([gone.signal, this.closing.signal]);
  }

  private async serveMetrics(reply: Reply): Promise<void> {
    const text = await this.registry.metrics();
    reply.set('Content-Type', this.registry.contentType);
    reply.start(200);
    await reply.write(Buffer.from(text, 'utf8'));
    reply.end();
  }

  private getInfo(reply: Reply): void {
    const info = this.node.info();
    const obj: Record<string, unknown> = {};
    if (info.clusterID !== '') obj.clusterID = info.clusterID;
    obj.isPrimary = info.isPrimary;
    obj.candidate = info.candidate;
    obj.path = info.path;
    obj.primary = { hostname: info.primaryHostname };
    reply.send(200, goJSON(obj, '  ') + '\n', SNIFFED_TEXT);
  }

  private async getExport(reply: Reply, query: URLSearchParams, signal: AbortSignal): Promise<void> {
    const name = query.get('name') ?? '';
    if (name === '') return reply.error(400, 'name required');
    const body = this.node.exportDatabase(name, signal);
    if (body === undefined) return reply.error(404, 'database not found');
    const it = body[Symbol.asyncIterator]();
    try {
      // Go sends the header with the first write, so an export that fails before it still gets a 500.
      let next = await it.next();
      if (next.done) return reply.send(200, '');
      reply.start(200, SNIFFED_BINARY);
      while (!next.done) {
        if (!(await reply.write(next.value))) return;
        next = await it.next();
      }
      reply.end();
    } catch (err) {
      this.fail(reply, 500, `write snapshot: ${errorMessage(err)}`);
    } finally {
      await it.return?.();
    }
  }

  private async postImport(req: Request, reply: Reply, query: URLSearchParams, signal: AbortSignal): Promise<void> {
    const name = query.get('name') ?? '';
    if (name === '') return reply.error(400, 'name required');
    await this.node.importDatabase(name, req, signal);
    reply.send(200, '');
  }

  private async postHalt(req: Request, reply: Reply, query: URLSearchParams, signal: AbortSignal): Promise<void> {
    const name = query.get('name') ?? '';
    const lockID = parseInt64(query.get('id') ?? '');
    if (lockID === undefined) return reply.error(400, `invalid id: ${goQuote(query.get('id') ?? '')}`);
    if (this.fromSelf(req)) return reply.error(400, 'cannot remotely halt self');
    let lock: HaltLock;
    try {
      lock = await this.node.acquireHaltLock(name, lockID, signal, parseNodeID(headerValue(req, 'litefs-id')) ?? 0n);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      return reply.error(500, `acquire halt lock: ${errorMessage(err)}`);
    }
    reply.send(200, formatHaltLock(lock) + '\n', SNIFFED_TEXT);
  }

  private async deleteHalt(req: Request, reply: Reply, query: URLSearchParams): Promise<void> {
    const name = query.get('name') ?? '';
    const lockID = parseInt64(query.get('id') ?? '');
    if (lockID === undefined) return reply.error(400, `invalid id: ${goQuote(query.get('id') ?? '')}`);
    if (this.fromSelf(req)) return reply.error(400, 'cannot remotely unhalt self');
    try {
      await this.node.releaseHaltLock(name, lockID);
    } catch (err) {
      // LiteFS v0.5.11 dereferences a nil database here (ref §15); we answer 404 as its code intends.
      if (err instanceof DatabaseNotFoundError) return reply.error(404, `database not found: ${goQuote(name)}`);
      throw err;
    }
    reply.send(200, '');
  }

  private async postTx(req: Request, reply: Reply, query: URLSearchParams, signal: AbortSignal): Promise<void> {
    const name = query.get('name') ?? '';
    if (this.fromSelf(req)) return reply.error(400, 'cannot remotely halt self');
    try {
      await this.node.applyForwardedTx(name, query.get('lockID') ?? '', req, signal);
    } catch (err) {
      if (err instanceof DatabaseNotFoundError) return reply.error(404, `database not found: ${goQuote(name)}`);
      throw err;
    }
    reply.send(200, '');
  }

  /**
   * litefs-ts: a HALT lock for a program on this node, held while the
   * request stays open: `held` and a newline once it is, then nothing until
   * the client closes the request (which releases it).
   */
  private async postHoldHalt(reply: Reply, query: URLSearchParams, signal: AbortSignal): Promise<void> {
    const name = query.get('name') ?? '';
    if (name === '') return reply.error(400, 'name required');
    if (this.node.holdHaltLock === undefined) return reply.error(404, '404 page not found');
    let release: () => Promise<void>;
    try {
      release = await this.node.holdHaltLock(name, signal);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      return reply.error(500, `acquire halt lock: ${errorMessage(err)}`);
    }
    try {
      reply.start(200, SNIFFED_TEXT);
      if (await reply.write(Buffer.from('held\n', 'utf8'))) {
        await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      }
      reply.end();
    } finally {
      await release();
    }
  }

  private async postHandoff(reply: Reply, query: URLSearchParams, signal: AbortSignal): Promise<void> {
    const nodeID = parseNodeID(query.get('nodeID') ?? '');
    if (nodeID === undefined) return reply.error(400, 'invalid node id');
    try {
      await this.node.handoff(nodeID, signal);
    } catch (err) {
      return reply.error(500, `cannot handoff: ${errorMessage(err)}`);
    }
    reply.send(200, '');
  }

  private async getEvents(reply: Reply, signal: AbortSignal): Promise<void> {
    const sub = this.node.subscribeEvents();
    try {
      reply.set('Content-Type', 'application/json');
      reply.start(200);
      for (;;) {
        const ev = await sub.next(signal);
        if (ev === undefined || !(await reply.write(Buffer.from(encodeEvent(ev), 'utf8')))) break;
      }
      reply.end();
    } finally {
      sub.close();
    }
  }

  /** The `Litefs-Id` request header parses to this node's id (missing or malformed reads as 0, as in Go). */
  private fromSelf(req: Request): boolean {
    return (parseNodeID(headerValue(req, 'litefs-id')) ?? 0n) === this.node.nodeID;
  }

  private async postStream(req: Request, reply: Reply, query: URLSearchParams, http2: boolean): Promise<void> {
    if (!http2) return reply.error(426, 'Upgrade to HTTP/2 required');
    const replicaID = parseNodeID(headerValue(req, 'litefs-id')) ?? 0n;
    if (replicaID === this.node.nodeID) return reply.error(400, 'cannot connect to self');

    const source = this.node.replication;
    const primary = source.primarySignal();
    if (primary === undefined || primary.aborted) return reply.error(503, 'context canceled');

    this.metrics.streamCount.inc();
    const subscription = source.subscribeChanges(replicaID);
    try {
      let positions;
      try {
        positions = decodePosMap(await readBody(req, this.maxPosMapBytes));
      } catch (err) {
        if (err instanceof WireFormatError || err instanceof ApiError) {
          return reply.error(err instanceof ApiError ? err.status : 400, err.message);
        }
        throw err;
      }
      const filter = new Set((query.get('filter') ?? '').split(',').filter((n) => n !== ''));

      const epoch = this.node.epoch?.();
      // ARCHITECTURE §3.2: a replica that has seen a newer term than ours
      // knows this node was deposed; streaming to it would hand it old data.
      const seen = parseEpoch(headerValue(req, 'litefs-epoch'));
      if (epoch !== undefined && seen !== undefined && seen > epoch) {
        this.node.onNewerEpoch?.(seen);
        return reply.error(409, `stale primary: epoch ${epoch} is older than the replica's ${seen}`);
      }
      if (epoch !== undefined) reply.set('Litefs-Epoch', epoch.toString());
      reply.start(200);

      const signal = AbortSignal.any([primary, this.requestSignal(reply)]);
      const session = new StreamSession({
        source,
        positions,
        filter,
        subscription,
        signal,
        snapshotTimeoutMs: this.snapshotTimeoutMs,
        snapshotReasons: requestedFeatures(req).has(SNAPSHOT_REASON_FEATURE),
        write: (bytes) => reply.write(bytes),
        onFrame: (db, type) => this.metrics.frameSendCount.inc({ db, type }),
      });
      try {
        await session.run();
      } catch (err) {
        // Go writes its error text into the open body; resetting the stream
        // gives the replica the same outcome (drop and reconnect) without garbage frames.
        this.log(`http: stream error: ${errorMessage(err)}`);
        reply.abort();
        return;
      }
      if (!reply.gone) await session.sendEnd();
      reply.end();
    } finally {
      subscription.close();
      this.metrics.streamCount.dec();
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function headerValue(req: Request, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/**
 * ARCHITECTURE §2: a litefs-ts client names its cluster; a request from
 * another cluster is refused (412) before it can read or change anything, so
 * two clusters never merge. A missing header (Go LiteFS never sends one),
 * a malformed one, or a node that has no id yet accepts the request.
 */
function clusterMismatch(local: string, requested: string): string | undefined {
  if (local === '' || !isValidClusterID(requested) || requested === local) return undefined;
  return `cluster id mismatch: this node is ${local}, the request is from ${requested}`;
}

/** Feature names in `Litefs-Features` (comma-separated, any case, possibly repeated). */
function requestedFeatures(req: Request): Set<string> {
  const v = req.headers[FEATURES_HEADER];
  const all = Array.isArray(v) ? v.join(',') : (v ?? '');
  return new Set(all.split(',').map((f) => f.trim().toLowerCase()).filter((f) => f !== ''));
}

/** Path (percent-decoded, as Go's r.URL.Path) and query of a request target. */
function splitTarget(target: string): { path: string; query: URLSearchParams } {
  let t = target;
  const scheme = /^https?:\/\/[^/]*/i.exec(t); // absolute-form targets
  if (scheme) t = t.slice(scheme[0].length) || '/';
  const q = t.indexOf('?');
  const rawPath = q < 0 ? t : t.slice(0, q);
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    path = rawPath;
  }
  return { path, query: new URLSearchParams(q < 0 ? '' : t.slice(q + 1)) };
}

/** strconv.ParseInt(s, 10, 64). */
function parseInt64(s: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v >= -(1n << 63n) && v < 1n << 63n ? v : undefined;
}

/** Reads a whole request body, refusing (413) more than `limit` bytes without buffering them. */
async function readBody(req: Request, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ApiError(413, 'request body too large');
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** `Litefs-Epoch` as sent: a decimal u64; undefined if absent or malformed (Go nodes never send it). */
function parseEpoch(text: string): bigint | undefined {
  return /^[0-9]{1,20}$/.test(text) ? BigInt(text) : undefined;
}
