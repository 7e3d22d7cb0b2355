import { type LeaseBackend, StoreLease, StorePresence } from './store-lease.js';
import { parseJSON, snippet, storeRequest } from './http.js';
import {
  type ClusterPositions,
  type Lease,
  type Leaser,
  type PositionRecord,
  type Presence,
  type PrimaryInfo,
  ClusterIDConflictError,
  LeaseExpiredError,
  LeaseStoreError,
  NoPrimaryError,
  PrimaryExistsError,
  decodePositionRecord,
  decodePrimaryInfo,
  defaultMarginMs,
  encodePositionRecord,
  encodePrimaryInfo,
  isObject,
  monotonicNow,
} from './lease.js';

/**
 * lease.type: consul (reference §10.3): a session with a TTL and
 * Behavior "delete", and the lease key acquired with that session, exactly as
 * LiteFS lays them out, so a litefs-ts node and a Go LiteFS node see the same
 * keys. The epoch is the ModifyIndex of the acquiring KV write (a Raft index:
 * strictly increasing), read back right after the acquire. Renewal cadence
 * (TTL/2) is the caller's loop.
 */
export interface ConsulLeaserOptions {
  /** e.g. 'http://127.0.0.1:8500' or 'https://:TOKEN@consul-host/PREFIX'. */
  readonly url: string;
  /** The lease key (lease.consul.key), unique per cluster. */
  readonly key: string;
  readonly hostname: string;
  readonly advertiseURL: string;
  /** Session TTL; default 10 s (Consul's minimum). */
  readonly ttlMs?: number;
  /** Session lock-delay; default 1 s. */
  readonly lockDelayMs?: number;
  /** Per-request timeout. Default 5 s. */
  readonly requestTimeoutMs?: number;
  /** Deadline margin; default defaultMarginMs(ttl). */
  readonly marginMs?: number;
}

const STORE = 'consul';
const INDEX_PLACEHOLDER = '__litefs_epoch_index__';

/** One entry of GET /v1/kv/<key>. */
interface KVEntry {
  readonly value: string;
  readonly session: string;
  readonly modifyIndex: bigint;
}

export class ConsulLeaser implements Leaser {
  readonly type = 'consul';
  readonly hostname: string;
  readonly advertiseURL: string;
  readonly ttlMs: number;
  readonly marginMs: number;
  readonly lockDelayMs: number;
  /** `<prefix>/<key>`, LiteFS's lease key. */
  readonly leaseKey: string;
  private readonly base: string;
  private readonly token: string;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private registered = false;

  constructor(opts: ConsulLeaserOptions) {
    if (opts.key === '') throw new Error('consul lease: key required (lease.consul.key)');
    if (opts.hostname === '') throw new Error('consul lease: hostname required (lease.hostname)');
    if (opts.advertiseURL === '') throw new Error('consul lease: advertise URL required (lease.advertise-url)');
    const u = new URL(opts.url);
    this.base = `${u.protocol}//${u.host}`;
    this.token = decodeURIComponent(u.password);
    this.prefix = u.pathname.replace(/^\/+/, '').replace(/\/+$/, '');
    this.leaseKey = this.prefix === '' ? opts.key : `${this.prefix}/${opts.key}`;
    this.hostname = opts.hostname;
    this.advertiseURL = opts.advertiseURL;
    this.ttlMs = opts.ttlMs ?? 10_000;
    this.lockDelayMs = opts.lockDelayMs ?? 1000;
    this.timeoutMs = opts.requestTimeoutMs ?? 5000;
    this.marginMs = opts.marginMs ?? defaultMarginMs(this.ttlMs);
  }

  get clusterIDKey(): string {
    return `${this.leaseKey}/clusterid`;
  }

  async acquire(signal?: AbortSignal): Promise<Lease> {
    await this.registerNode(signal);
    const sentAt = monotonicNow();
    const session = await this.createSession(signal);
    let won = false;
    try {
      const epoch = await this.acquireKey(session, signal);
      if (epoch === null) throw new PrimaryExistsError(await this.primaryInfo(signal).catch(() => null));
      won = true;
      return new StoreLease(this.leaseBackend(), session, epoch, sentAt);
    } finally {
      if (!won) await this.destroySession(session).catch(() => undefined);
    }
  }

  async acquireExisting(sessionID: string, signal?: AbortSignal): Promise<Lease> {
    const sentAt = monotonicNow();
    await this.renewSession(sessionID, signal);
    const epoch = await this.acquireKey(sessionID, signal);
    if (epoch === null) throw new LeaseExpiredError(sessionID, 'the lease key is held by another session');
    return new StoreLease(this.leaseBackend(), sessionID, epoch, sentAt);
  }

  async primaryInfo(signal?: AbortSignal): Promise<PrimaryInfo> {
    const entry = await this.getKey(this.leaseKey, signal);
    // A released key (clean close) stays in Consul without a session: nobody holds it.
    if (entry === null || entry.session === '' || entry.value === '') throw new NoPrimaryError();
    const info = decodePrimaryInfo(entry.value);
    if (!info) throw new LeaseStoreError(STORE, 'malformed', 'primary info', `key ${this.leaseKey} holds ${snippet(entry.value)}`);
    return info;
  }

  async clusterID(signal?: AbortSignal): Promise<string> {
    return (await this.getKey(this.clusterIDKey, signal))?.value ?? '';
  }

  /** Creates the key only if absent (?cas=0), unlike LiteFS's racy get-then-put. */
  async setClusterID(id: string, signal?: AbortSignal): Promise<void> {
    const res = await this.request('PUT', `/v1/kv/${keyPath(this.clusterIDKey)}?cas=0`, signal, id);
    if (expectBool(res.text, 'kv cas') === true) return;
    const existing = await this.clusterID(signal);
    if (existing !== id) throw new ClusterIDConflictError(existing, id);
  }

  get positionsKey(): string {
    return `${this.leaseKey}/positions`;
  }

  get nodesPrefix(): string {
    return `${this.leaseKey}/nodes/`;
  }

  /** One Consul transaction: the lease key must still be this session's write at `epoch`, then set. */
  async publishPrimaryPositions(lease: Lease, record: PositionRecord, signal?: AbortSignal): Promise<void> {
    const ops = [
      { KV: { Verb: 'check-session', Key: this.leaseKey, Session: lease.id } },
      { KV: { Verb: 'check-index', Key: this.leaseKey, Index: INDEX_PLACEHOLDER } },
      { KV: { Verb: 'set', Key: this.positionsKey, Value: Buffer.from(encodePositionRecord(record)).toString('base64') } },
    ];
    // Index is a uint64 JSON number: write the bigint's digits exactly rather than through a double.
    const body = JSON.stringify(ops).replace(`"${INDEX_PLACEHOLDER}"`, lease.epoch.toString());
    const res = await this.request('PUT', '/v1/txn', signal, body, [409]);
    if (res.status === 409) throw new LeaseExpiredError(lease.id, `epoch ${lease.epoch} no longer holds the lease key`);
  }

  async openPresence(nodeID: string, record: PositionRecord, signal?: AbortSignal): Promise<Presence> {
    await this.registerNode(signal);
    // Lock-delay 0: a node whose presence session lapsed may take its key back at once.
    const session = await this.createSession(signal, 'litefs-presence', 0);
    const key = `${this.nodesPrefix}${nodeID}`;
    const presence = new StorePresence(
      { ttlMs: this.ttlMs, keepAlive: (id, sig) => this.renewSession(id, sig), release: (id) => this.destroySession(id) },
      session,
      (r, sig) => this.putLocked(key, session, encodePositionRecord(r), sig),
    );
    try {
      await presence.publish(record, signal);
    } catch (e) {
      await presence.close().catch(() => undefined);
      throw e;
    }
    return presence;
  }

  async positions(signal?: AbortSignal): Promise<ClusterPositions> {
    const primary = await this.getKey(this.positionsKey, signal);
    const res = await this.request('GET', `/v1/kv/${keyPath(this.nodesPrefix)}?recurse&consistent`, signal, undefined, [404]);
    const candidates: PositionRecord[] = [];
    if (res.status !== 404) {
      const v = parseJSON(STORE, 'kv get', res.text);
      if (!Array.isArray(v)) throw new LeaseStoreError(STORE, 'malformed', 'kv get', `expected entries, got ${snippet(res.text)}`);
      for (const e of v) {
        if (!isObject(e)) throw new LeaseStoreError(STORE, 'malformed', 'kv get', `unexpected entry ${snippet(res.text)}`);
        // Only records still locked by a live session count (Behavior delete removes the rest).
        if (typeof e['Session'] !== 'string' || e['Session'] === '') continue;
        const value = typeof e['Value'] === 'string' ? Buffer.from(e['Value'], 'base64').toString('utf8') : '';
        candidates.push(positionRecord(value, String(e['Key'])));
      }
    }
    return { primary: primary === null || primary.value === '' ? null : positionRecord(primary.value, this.positionsKey), candidates };
  }

  /** PUT ?acquire for a presence key (it stays locked by, and dies with, the presence session). */
  private leaseBackend(): LeaseBackend {
    return {
      ttlMs: this.ttlMs,
      marginMs: this.marginMs,
      keepAlive: (id, signal) => this.renewSession(id, signal),
      checkHolder: (id, epoch, signal) => this.checkHolder(id, epoch, signal),
      release: (id) => this.release(id),
    };
  }

  async putLocked(key: string, session: string, value: string, signal?: AbortSignal): Promise<void> {
    const res = await this.request('PUT', `/v1/kv/${keyPath(key)}?acquire=${encodeURIComponent(session)}`, signal, value);
    if (!expectBool(res.text, 'kv acquire')) {
      throw new LeaseStoreError(STORE, 'rejected', 'kv acquire', `presence key ${key} is held by another session`);
    }
  }

  /** Throws LeaseExpiredError unless the lease key is still this session's write at `epoch`. */
  async checkHolder(session: string, epoch: bigint, signal?: AbortSignal): Promise<void> {
    const entry = await this.getKey(this.leaseKey, signal);
    if (entry === null || entry.session !== session) throw new LeaseExpiredError(session, 'the lease key is no longer held by this session');
    if (entry.modifyIndex !== epoch) {
      throw new LeaseExpiredError(session, `superseded: the lease key was rewritten at index ${entry.modifyIndex} (epoch ${epoch} is over)`);
    }
  }

  async close(): Promise<void> {}

  /** Session renewal; 404 (or an empty answer) means Consul dropped it. */
  async renewSession(id: string, signal?: AbortSignal): Promise<void> {
    const res = await this.request('PUT', `/v1/session/renew/${encodeURIComponent(id)}`, signal, undefined, [404]);
    if (res.status === 404) throw new LeaseExpiredError(id, 'consul session not found');
    const v = parseJSON(STORE, 'session renew', res.text);
    if (v === null || (Array.isArray(v) && v.length === 0)) throw new LeaseExpiredError(id, 'consul session not found');
    if (!Array.isArray(v)) throw new LeaseStoreError(STORE, 'malformed', 'session renew', `expected an array, got ${snippet(res.text)}`);
  }

  /** LiteFS order: release the key, then destroy the session. */
  async release(id: string): Promise<void> {
    let first: unknown = null;
    try {
      await this.request('PUT', `/v1/kv/${keyPath(this.leaseKey)}?release=${encodeURIComponent(id)}`);
    } catch (e) {
      first = e;
    }
    await this.destroySession(id);
    if (first !== null) throw first;
  }

  private async registerNode(signal?: AbortSignal): Promise<void> {
    // Sessions must belong to a catalog node; with a key prefix (no local agent, Fly's shared Consul) LiteFS registers one.
    if (this.prefix === '' || this.registered) return;
    await this.request('PUT', '/v1/catalog/register', signal, JSON.stringify({ Node: this.nodeName(), Address: 'localhost' }));
    this.registered = true;
  }

  private nodeName(): string {
    return `${this.prefix}/litefs`;
  }

  private async createSession(signal?: AbortSignal, name = 'litefs', lockDelayMs = this.lockDelayMs): Promise<string> {
    // Key order and values as LiteFS sends them (reference §10.3).
    const body: Record<string, unknown> = { Checks: [], Name: name };
    if (this.prefix !== '') body['Node'] = this.nodeName();
    body['LockDelay'] = `${lockDelayMs}ms`;
    body['Behavior'] = 'delete';
    body['TTL'] = `${Math.ceil(this.ttlMs / 1000)}s`;
    const res = await this.request('PUT', '/v1/session/create', signal, JSON.stringify(body));
    const v = parseJSON(STORE, 'session create', res.text);
    const id = isObject(v) ? v['ID'] : undefined;
    if (typeof id !== 'string' || id === '') {
      throw new LeaseStoreError(STORE, 'malformed', 'session create', `no ID in ${snippet(res.text)}`);
    }
    return id;
  }

  async destroySession(id: string): Promise<void> {
    await this.request('PUT', `/v1/session/destroy/${encodeURIComponent(id)}`);
  }

  /** PUT ?acquire; returns the acquiring write's ModifyIndex, or null when another session holds the key. */
  private async acquireKey(session: string, signal?: AbortSignal): Promise<bigint | null> {
    const body = encodePrimaryInfo({ hostname: this.hostname, advertiseURL: this.advertiseURL });
    const res = await this.request('PUT', `/v1/kv/${keyPath(this.leaseKey)}?acquire=${encodeURIComponent(session)}`, signal, body);
    if (!expectBool(res.text, 'kv acquire')) return null;
    const entry = await this.getKey(this.leaseKey, signal);
    if (entry === null || entry.session !== session) {
      throw new LeaseExpiredError(session, 'the lease key was lost right after acquiring it');
    }
    return entry.modifyIndex;
  }

  private async getKey(key: string, signal?: AbortSignal): Promise<KVEntry | null> {
    const res = await this.request('GET', `/v1/kv/${keyPath(key)}?consistent`, signal, undefined, [404]);
    if (res.status === 404) return null;
    const v = parseJSON(STORE, 'kv get', res.text);
    const e = Array.isArray(v) ? v[0] : undefined;
    if (!isObject(e)) throw new LeaseStoreError(STORE, 'malformed', 'kv get', `expected [entry], got ${snippet(res.text)}`);
    const value = e['Value'];
    const session = e['Session'];
    const modify = e['ModifyIndex'];
    if ((value !== null && value !== undefined && typeof value !== 'string') || typeof modify !== 'number') {
      throw new LeaseStoreError(STORE, 'malformed', 'kv get', `unexpected entry ${snippet(res.text)}`);
    }
    return {
      value: typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : '',
      session: typeof session === 'string' ? session : '',
      modifyIndex: BigInt(modify),
    };
  }

  private async request(
    method: 'GET' | 'PUT',
    path: string,
    signal?: AbortSignal,
    body?: string,
    okStatuses: readonly number[] = [],
  ): Promise<{ status: number; text: string }> {
    const name = `${method} ${path.split('?')[0]}`;
    const headers: Record<string, string> = {};
    if (this.token !== '') headers['x-consul-token'] = this.token;
    const res = await storeRequest({
      store: STORE,
      name,
      url: this.base + path,
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      timeoutMs: this.timeoutMs,
      signal,
    });
    if (res.status !== 200 && !okStatuses.includes(res.status)) {
      throw new LeaseStoreError(STORE, res.status >= 500 ? 'http' : 'rejected', name, snippet(res.text), res.status);
    }
    return res;
  }
}

function positionRecord(text: string, key: string): PositionRecord {
  const r = decodePositionRecord(text);
  if (!r) throw new LeaseStoreError(STORE, 'malformed', 'positions', `key ${key} holds ${snippet(text)}`);
  return r;
}

function keyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

function expectBool(text: string, name: string): boolean {
  const v = parseJSON(STORE, name, text);
  if (typeof v !== 'boolean') throw new LeaseStoreError(STORE, 'malformed', name, `expected true/false, got ${snippet(text)}`);
  return v;
}
