/**
 * Client for another node's API, speaking h2c with prior knowledge as Go
 * LiteFS's client does for every call (ref §9.1). Only the scheme and host of
 * the given URL are used; paths are fixed.
 */
import { type HaltLock, parseHaltLock } from './halt-lock.js';
import {
  connect,
  constants as h2constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { FrameReader } from './frame-reader.js';
import { FEATURES_HEADER } from './frames.js';
import { CLUSTER_ID_HEADER } from './cluster-id.js';
import { formatNodeID, parseNodeID } from './node-id.js';
import { encodePosMap, type PosMap } from './posmap.js';
import type { NodeInfo } from './api.js';

/** A non-200 answer; `message` is the server's plain-text error body without its newline. */
export class ApiClientError extends Error {
  readonly status: number;
  readonly path: string;

  constructor(status: number, path: string, body: string) {
    super(body !== '' ? body : `invalid response: code=${status}`);
    this.name = new.target.name;
    this.status = status;
    this.path = path;
  }
}

export interface NodeClientOptions {
  /** This node's id, sent as `Litefs-Id` where LiteFS sends it (/stream, /halt, /tx). */
  readonly nodeID?: bigint;
  /** Highest epoch this node has seen; sent as `Litefs-Epoch` on /stream (ARCHITECTURE §3.2). */
  readonly epoch?: () => bigint | undefined;
  /**
   * litefs-ts protocol features this node understands, sent on /stream as
   * `Litefs-Features: a,b` (e.g. `snapshot-reason`). Go primaries ignore the
   * header; ours send the matching extra frames only when asked.
   */
  readonly features?: readonly string[];
  /**
   * This node's cluster id ('' while it has none), sent on every request as
   * `Litefs-Cluster-Id` when set; litefs-ts servers refuse a request from
   * another cluster (412). Go LiteFS never sends it, and ignores it.
   */
  readonly clusterID?: () => string;
}

/** Identity headers of a response, for the caller's cluster-id and epoch checks. */
export interface PeerHeaders {
  /** `Litefs-Id` of the answering node, undefined if absent or malformed. */
  readonly nodeID: bigint | undefined;
  /** `Litefs-Cluster-Id`, '' if absent. */
  readonly clusterID: string;
  /** `Litefs-Epoch`, undefined if absent (Go nodes never send it) or malformed. */
  readonly epoch: bigint | undefined;
}

export interface ReplicationStream {
  readonly peer: PeerHeaders;
  readonly frames: FrameReader;
  /** Cancels the HTTP/2 stream. */
  close(): void;
}

/** Largest error body read from a non-200 answer. */
const MAX_ERROR_BODY = 64 * 1024;

interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly stream: ClientHttp2Stream;
}

export class NodeClient {
  readonly origin: string;
  private readonly options: NodeClientOptions;
  private session: ClientHttp2Session | undefined;

  constructor(baseURL: string, options: NodeClientOptions = {}) {
    const u = new URL(baseURL);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`invalid URL scheme: ${baseURL}`);
    if (u.host === '') throw new TypeError(`URL host required: ${baseURL}`);
    this.origin = `${u.protocol}//${u.host}`;
    this.options = options;
  }

  /** GET /info. */
  async info(signal?: AbortSignal): Promise<NodeInfo> {
    const res = await this.request('GET', '/info', {}, undefined, signal);
    const body = await this.expectOK(res, '/info');
    const v = JSON.parse(body.toString('utf8')) as {
      clusterID?: string;
      isPrimary?: boolean;
      candidate?: boolean;
      path?: string;
      primary?: { hostname?: string };
    };
    return {
      clusterID: v.clusterID ?? '',
      isPrimary: v.isPrimary === true,
      candidate: v.candidate === true,
      path: v.path ?? '',
      primaryHostname: v.primary?.hostname ?? '',
    };
  }

  /** GET /export?name=: the raw database file, streamed. A 404 throws ApiClientError with status 404. */
  async export(name: string, signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
    const path = `/export?${new URLSearchParams({ name })}`;
    const res = await this.request('GET', path, {}, undefined, signal);
    if (res.status !== 200) await this.expectOK(res, path);
    return res.stream as AsyncIterable<Buffer>;
  }

  /** POST /import?name= with the SQLite file as body. */
  async import(name: string, body: Uint8Array | AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    const path = `/import?${new URLSearchParams({ name })}`;
    await this.expectOK(await this.request('POST', path, {}, body, signal), path);
  }

  /**
   * POST /stream with this node's positions; resolves once the primary
   * answered 200, with a frame reader over the response body.
   */
  async stream(positions: PosMap, filter: readonly string[] = [], signal?: AbortSignal): Promise<ReplicationStream> {
    const path = filter.length > 0 ? `/stream?${new URLSearchParams({ filter: filter.join(',') })}` : '/stream';
    const headers: OutgoingHttpHeaders = this.idHeader();
    const epoch = this.options.epoch?.();
    if (epoch !== undefined) headers['litefs-epoch'] = epoch.toString();
    const features = this.options.features ?? [];
    if (features.length > 0) headers[FEATURES_HEADER] = features.join(',');
    const res = await this.request('POST', path, headers, encodePosMap(positions), signal);
    if (res.status !== 200) await this.expectOK(res, path);
    return {
      peer: peerHeaders(res.headers),
      frames: new FrameReader(res.stream as AsyncIterable<Buffer>),
      close: () => res.stream.close(h2constants.NGHTTP2_CANCEL),
    };
  }

  /** POST /halt: acquire the primary's HALT lock. */
  async acquireHaltLock(name: string, lockID: bigint, signal?: AbortSignal): Promise<HaltLock> {
    const path = `/halt?${new URLSearchParams({ id: lockID.toString(), name })}`;
    const body = await this.expectOK(await this.request('POST', path, this.idHeader(), undefined, signal), path);
    return parseHaltLock(body.toString('utf8'));
  }

  /** DELETE /halt. */
  async releaseHaltLock(name: string, lockID: bigint, signal?: AbortSignal): Promise<void> {
    const path = `/halt?${new URLSearchParams({ id: lockID.toString(), name })}`;
    await this.expectOK(await this.request('DELETE', path, this.idHeader(), undefined, signal), path);
  }

  /** POST /tx: a forwarded write's LTX file (raw, not chunked). */
  async commit(name: string, lockID: bigint, ltx: Uint8Array | AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<void> {
    const path = `/tx?${new URLSearchParams({ lockID: lockID.toString(), name })}`;
    await this.expectOK(await this.request('POST', path, this.idHeader(), ltx, signal), path);
  }

  /** POST /handoff?nodeID=: ask this (primary) node to hand its lease to `nodeID`. */
  async handoff(nodeID: bigint, signal?: AbortSignal): Promise<void> {
    const path = `/handoff?${new URLSearchParams({ nodeID: formatNodeID(nodeID) })}`;
    await this.expectOK(await this.request('POST', path, {}, undefined, signal), path);
  }

  /** POST /promote (to the local node). */
  async promote(signal?: AbortSignal): Promise<void> {
    await this.expectOK(await this.request('POST', '/promote', {}, undefined, signal), '/promote');
  }

  /** Closes the HTTP/2 connection (open streams are cancelled). */
  close(): void {
    this.session?.destroy();
    this.session = undefined;
  }

  private idHeader(): OutgoingHttpHeaders {
    return this.options.nodeID === undefined ? {} : { 'litefs-id': formatNodeID(this.options.nodeID) };
  }

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(this.origin);
    // Errors surface on the requests; an idle connection that fails is just dropped.
    session.on('error', () => {});
    session.once('close', () => {
      if (this.session === session) this.session = undefined;
    });
    this.session = session;
    return session;
  }

  private request(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body: Uint8Array | AsyncIterable<Uint8Array> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    return new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      const all: OutgoingHttpHeaders = { ':method': method, ':path': path, ...headers };
      const clusterID = this.options.clusterID?.() ?? '';
      if (clusterID !== '') all[CLUSTER_ID_HEADER] = clusterID;
      if (body instanceof Uint8Array) all['content-length'] = String(body.length);
      const stream = this.connection().request(all, { endStream: body === undefined, signal });
      // A session whose socket dies before it connects may close the stream without an error event.
      const closed = (): void => reject(new Error(`${method} ${path}: connection to ${this.origin} closed before a response`));
      const aborted = (): void => {
        stream.destroy();
        reject(signal?.reason instanceof Error ? signal.reason : new Error(`${method} ${path}: aborted`));
      };
      signal?.addEventListener('abort', aborted, { once: true });
      stream.once('error', reject);
      stream.once('close', closed);
      stream.once('response', (h) => {
        stream.removeListener('error', reject);
        stream.removeListener('close', closed);
        signal?.removeEventListener('abort', aborted);
        // Later errors reach whoever reads the body.
        resolve({ status: Number(h[':status']), headers: h, stream });
      });
      if (body instanceof Uint8Array) stream.end(body);
      else if (body !== undefined) void pump(body, stream).catch((err: unknown) => stream.destroy(err as Error));
    });
  }

  /** Reads the body; throws ApiClientError unless the status is 200. */
  private async expectOK(res: Response, path: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.stream as AsyncIterable<Buffer>) {
      if (res.status !== 200 && size + chunk.length > MAX_ERROR_BODY) {
        res.stream.close(h2constants.NGHTTP2_CANCEL);
        break;
      }
      parts.push(chunk);
      size += chunk.length;
    }
    const body = Buffer.concat(parts);
    if (res.status !== 200) throw new ApiClientError(res.status, path, body.toString('utf8').replace(/\n$/, ''));
    return body;
  }
}

async function pump(body: AsyncIterable<Uint8Array>, stream: ClientHttp2Stream): Promise<void> {
  for await (const chunk of body) {
    if (stream.destroyed) return;
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          stream.removeListener('drain', done);
          stream.removeListener('close', done);
          resolve();
        };
        stream.once('drain', done);
        stream.once('close', done);
      });
    }
  }
  if (!stream.destroyed) stream.end();
}

function peerHeaders(h: IncomingHttpHeaders): PeerHeaders {
  const one = (name: string): string => {
    const v = h[name];
    return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
  };
  const epochText = one('litefs-epoch');
  return {
    nodeID: parseNodeID(one('litefs-id')),
    clusterID: one(CLUSTER_ID_HEADER),
    epoch: /^[0-9]+$/.test(epochText) ? BigInt(epochText) : undefined,
  };
}
