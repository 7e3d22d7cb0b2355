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
 * lease.type: etcd (ARCHITECTURE.md §3.5, §8) over the etcd v3 JSON gateway
 * (3.4+), short requests only: grant a lease, then a transaction that puts the
 * lease key only if it does not exist (create_revision == 0), attached to the
 * lease so it vanishes when the lease expires or is revoked. The epoch is the
 * header.revision of the winning transaction.
 *
 * Gateway conventions: keys and values are base64, int64 fields come back as
 * decimal strings and zero/false fields are omitted.
 */
export interface EtcdLeaserOptions {
  /** Client URLs, e.g. ['http://127.0.0.1:2379']; tried in order when one is unreachable. */
  readonly endpoints: readonly string[];
  /** The lease key, unique per cluster. */
  readonly key: string;
  readonly hostname: string;
  readonly advertiseURL: string;
  /** Lease TTL; etcd's minimum is 2 s. Default 10 s. */
  readonly ttlMs?: number;
  readonly username?: string;
  readonly password?: string;
  /** Per-request timeout. Default 5 s. */
  readonly requestTimeoutMs?: number;
  /** Deadline margin; default defaultMarginMs(ttl). */
  readonly marginMs?: number;
}

export const ETCD_MIN_TTL_MS = 2000;
const STORE = 'etcd';

export class EtcdLeaser implements Leaser {
  readonly type = 'etcd';
  readonly hostname: string;
  readonly advertiseURL: string;
  readonly ttlMs: number;
  private readonly endpoints: readonly string[];
  private readonly key: string;
  private readonly timeoutMs: number;
  readonly marginMs: number;
  private readonly username: string;
  private readonly password: string;
  private token: string | null = null;
  /** Index of the endpoint that answered last (sticky, rotates on unreachable). */
  private current = 0;

  constructor(opts: EtcdLeaserOptions) {
    if (opts.endpoints.length === 0) throw new Error('etcd lease: at least one endpoint required (lease.etcd.endpoints)');
    if (opts.key === '') throw new Error('etcd lease: key required (lease.etcd.key)');
    if (opts.hostname === '') throw new Error('etcd lease: hostname required (lease.hostname)');
    if (opts.advertiseURL === '') throw new Error('etcd lease: advertise URL required (lease.advertise-url)');
    const ttl = opts.ttlMs ?? 10_000;
    if (ttl < ETCD_MIN_TTL_MS) throw new Error(`etcd lease: ttl must be at least 2s (lease.etcd.ttl), got ${ttl}ms`);
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.key = opts.key;
    this.hostname = opts.hostname;
    this.advertiseURL = opts.advertiseURL;
    this.ttlMs = ttl;
    this.timeoutMs = opts.requestTimeoutMs ?? 5000;
    this.marginMs = opts.marginMs ?? defaultMarginMs(ttl);
    this.username = opts.username ?? '';
    this.password = opts.password ?? '';
  }

  get clusterIDKey(): string {
    return `${this.key}/clusterid`;
  }

  async acquire(signal?: AbortSignal): Promise<Lease> {
    const sentAt = monotonicNow();
    const grant = await this.call('/v3/lease/grant', { TTL: Math.ceil(this.ttlMs / 1000) }, signal);
    const leaseID = str(grant, 'ID', 'lease/grant');
    let won = false;
    try {
      const txn = await this.call(
        '/v3/kv/txn',
        {
          compare: [{ key: b64(this.key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
          success: [{ request_put: { key: b64(this.key), value: b64(this.info()), lease: leaseID } }],
          failure: [{ request_range: { key: b64(this.key) } }],
        },
        signal,
      );
      if (txn['succeeded'] !== true) throw new PrimaryExistsError(primaryFromTxn(txn));
      won = true;
      return new StoreLease(this.leaseBackend(), leaseID, revision(txn, 'kv/txn'), sentAt);
    } finally {
      // Lost the race (or failed): give the fresh lease back instead of letting it idle to expiry.
      if (!won) await this.revoke(leaseID).catch(() => undefined);
    }
  }

  async acquireExisting(leaseID: string, signal?: AbortSignal): Promise<Lease> {
    const sentAt = monotonicNow();
    await this.keepAlive(leaseID, signal);
    // A new acquiring write under the same lease: only if the key is still
    // held by that lease. Its revision is the new term's epoch.
    const txn = await this.call(
      '/v3/kv/txn',
      {
        compare: [{ key: b64(this.key), target: 'LEASE', result: 'EQUAL', lease: leaseID }],
        success: [{ request_put: { key: b64(this.key), value: b64(this.info()), lease: leaseID } }],
      },
      signal,
    );
    if (txn['succeeded'] !== true) throw new LeaseExpiredError(leaseID, 'the lease key is no longer held by this lease');
    return new StoreLease(this.leaseBackend(), leaseID, revision(txn, 'kv/txn'), sentAt);
  }

  async primaryInfo(signal?: AbortSignal): Promise<PrimaryInfo> {
    const value = await this.get(this.key, signal);
    if (value === null || value === '') throw new NoPrimaryError();
    const info = decodePrimaryInfo(value);
    if (!info) throw new LeaseStoreError(STORE, 'malformed', 'primary info', `key ${this.key} holds ${snippet(value)}`);
    return info;
  }

  async clusterID(signal?: AbortSignal): Promise<string> {
    return (await this.get(this.clusterIDKey, signal)) ?? '';
  }

  async setClusterID(id: string, signal?: AbortSignal): Promise<void> {
    const k = b64(this.clusterIDKey);
    const txn = await this.call(
      '/v3/kv/txn',
      {
        compare: [{ key: k, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
        success: [{ request_put: { key: k, value: b64(id) } }],
        failure: [{ request_range: { key: k } }],
      },
      signal,
    );
    if (txn['succeeded'] === true) return;
    const existing = firstValue(txn) ?? '';
    if (existing !== id) throw new ClusterIDConflictError(existing, id);
  }

  get positionsKey(): string {
    return `${this.key}/positions`;
  }

  get nodesPrefix(): string {
    return `${this.key}/nodes/`;
  }

  async publishPrimaryPositions(lease: Lease, record: PositionRecord, signal?: AbortSignal): Promise<void> {
    // Written only while the lease key is still the one this term wrote (fencing by epoch).
    const txn = await this.call(
      '/v3/kv/txn',
      {
        compare: [{ key: b64(this.key), target: 'MOD', result: 'EQUAL', mod_revision: lease.epoch.toString() }],
        success: [{ request_put: { key: b64(this.positionsKey), value: b64(encodePositionRecord(record)) } }],
      },
      signal,
    );
    if (txn['succeeded'] !== true) throw new LeaseExpiredError(lease.id, `epoch ${lease.epoch} no longer holds the lease key`);
  }

  async openPresence(nodeID: string, record: PositionRecord, signal?: AbortSignal): Promise<Presence> {
    const grant = await this.call('/v3/lease/grant', { TTL: Math.ceil(this.ttlMs / 1000) }, signal);
    const leaseID = str(grant, 'ID', 'lease/grant');
    const key = `${this.nodesPrefix}${nodeID}`;
    const presence = new StorePresence(this.leaseBackend(), leaseID, (r, sig) => this.putWithLease(key, encodePositionRecord(r), leaseID, sig));
    try {
      await presence.publish(record, signal);
    } catch (e) {
      await presence.close().catch(() => undefined);
      throw e;
    }
    return presence;
  }

  async positions(signal?: AbortSignal): Promise<ClusterPositions> {
    const primaryText = await this.get(this.positionsKey, signal);
    const res = await this.call('/v3/kv/range', { key: b64(this.nodesPrefix), range_end: prefixEnd(this.nodesPrefix) }, signal);
    const kvs = res['kvs'] ?? [];
    if (!Array.isArray(kvs)) throw new LeaseStoreError(STORE, 'malformed', 'kv/range', `unexpected kvs ${snippet(JSON.stringify(kvs))}`);
    const candidates: PositionRecord[] = [];
    for (const kv of kvs) {
      if (!isObject(kv)) throw new LeaseStoreError(STORE, 'malformed', 'kv/range', 'kv entry is not an object');
      candidates.push(positionRecord(fromB64(kv['value'], 'kv/range'), fromB64(kv['key'], 'kv/range')));
    }
    return { primary: primaryText === null ? null : positionRecord(primaryText, this.positionsKey), candidates };
  }

  /** Put attached to an etcd lease (presence records). */
  private leaseBackend(): LeaseBackend {
    return {
      ttlMs: this.ttlMs,
      marginMs: this.marginMs,
      keepAlive: (id, signal) => this.keepAlive(id, signal),
      checkHolder: (id, epoch, signal) => this.checkHolder(id, epoch, signal),
      release: (id) => this.revoke(id),
    };
  }

  async putWithLease(key: string, value: string, leaseID: string, signal?: AbortSignal): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value), lease: leaseID }, signal);
  }

  /** Throws LeaseExpiredError unless the lease key is still the one written at `epoch` under `leaseID`. */
  async checkHolder(leaseID: string, epoch: bigint, signal?: AbortSignal): Promise<void> {
    const res = await this.call('/v3/kv/range', { key: b64(this.key) }, signal);
    const kvs = res['kvs'];
    const kv = Array.isArray(kvs) && isObject(kvs[0]) ? kvs[0] : null;
    if (kv === null) throw new LeaseExpiredError(leaseID, 'the lease key is gone');
    const mod = kv['mod_revision'];
    if (String(mod) !== epoch.toString() || String(kv['lease']) !== leaseID) {
      throw new LeaseExpiredError(leaseID, `superseded: the lease key was rewritten at revision ${String(mod)} (epoch ${epoch} is over)`);
    }
  }

  async close(): Promise<void> {}

  /** One-shot keepalive; throws LeaseExpiredError when etcd no longer has the lease. */
  async keepAlive(leaseID: string, signal?: AbortSignal): Promise<void> {
    const res = await this.call('/v3/lease/keepalive', { ID: leaseID }, signal, true);
    const result = res['result'];
    if (!isObject(result)) {
      throw new LeaseStoreError(STORE, 'malformed', 'lease/keepalive', `no result in ${snippet(JSON.stringify(res))}`);
    }
    // An expired lease comes back without a TTL (zero fields are omitted).
    const ttl = result['TTL'];
    if (ttl === undefined || ttl === '0' || ttl === 0) throw new LeaseExpiredError(leaseID);
  }

  async revoke(leaseID: string): Promise<void> {
    try {
      await this.call('/v3/lease/revoke', { ID: leaseID });
    } catch (e) {
      if (e instanceof LeaseStoreError && /lease not found/.test(e.message)) return;
      throw e;
    }
  }

  private info(): string {
    return encodePrimaryInfo({ hostname: this.hostname, advertiseURL: this.advertiseURL });
  }

  private async get(key: string, signal?: AbortSignal): Promise<string | null> {
    const res = await this.call('/v3/kv/range', { key: b64(key) }, signal);
    const kvs = res['kvs'];
    if (kvs === undefined) return null;
    if (!Array.isArray(kvs) || !isObject(kvs[0])) {
      throw new LeaseStoreError(STORE, 'malformed', 'kv/range', `unexpected kvs ${snippet(JSON.stringify(kvs))}`);
    }
    return fromB64(kvs[0]['value'], 'kv/range');
  }

  /** POSTs one gateway request; returns the JSON object or throws a typed error. */
  private async call(path: string, body: object, signal?: AbortSignal, firstLine = false): Promise<Record<string, unknown>> {
    const name = path.replace(/^\/v3\//, '');
    for (let attempt = 0; ; attempt++) {
      const endpoint = this.endpoints[this.current]!;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.username !== '' && path !== '/v3/auth/authenticate') headers['authorization'] = await this.authToken(signal);
      let res;
      try {
        res = await storeRequest({
          store: STORE,
          name,
          url: endpoint + path,
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          timeoutMs: this.timeoutMs,
          signal,
          firstLine,
        });
      } catch (e) {
        // Unreachable endpoint: try the next one (once around the list).
        if (e instanceof LeaseStoreError && e.failure === 'unavailable' && attempt + 1 < this.endpoints.length) {
          this.current = (this.current + 1) % this.endpoints.length;
          continue;
        }
        throw e;
      }
      if (res.status !== 200 && !looksLikeJSON(res.text)) {
        throw new LeaseStoreError(STORE, res.status >= 500 ? 'http' : 'rejected', name, snippet(res.text), res.status);
      }
      const v = parseJSON(STORE, name, res.text);
      if (!isObject(v)) throw new LeaseStoreError(STORE, 'malformed', name, `expected an object, got ${snippet(res.text)}`);
      const err = v['error'] ?? (res.status !== 200 ? v['message'] : undefined);
      if (res.status !== 200 || err !== undefined) {
        const message = typeof v['message'] === 'string' ? v['message'] : typeof err === 'string' ? err : snippet(res.text);
        if (/invalid auth token/.test(message) && this.token !== null && attempt === 0) {
          this.token = null;
          continue;
        }
        throw new LeaseStoreError(STORE, res.status >= 500 ? 'http' : 'rejected', name, message, res.status);
      }
      // Streaming endpoints wrap each message as {"result": ...}.
      return v;
    }
  }

  private async authToken(signal?: AbortSignal): Promise<string> {
    if (this.token === null) {
      const res = await this.call('/v3/auth/authenticate', { name: this.username, password: this.password }, signal);
      this.token = str(res, 'token', 'auth/authenticate');
    }
    return this.token;
  }
}

// ---- gateway JSON helpers --------------------------------------------------

/** range_end for "every key with this prefix": the prefix with its last byte incremented. */
function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  b[b.length - 1] = b[b.length - 1]! + 1;
  return b.toString('base64');
}

function positionRecord(text: string, key: string): PositionRecord {
  const r = decodePositionRecord(text);
  if (!r) throw new LeaseStoreError(STORE, 'malformed', 'positions', `key ${key} holds ${snippet(text)}`);
  return r;
}

function looksLikeJSON(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function fromB64(v: unknown, name: string): string {
  if (v === undefined) return ''; // empty values are omitted
  if (typeof v !== 'string') throw new LeaseStoreError(STORE, 'malformed', name, `value is not base64 text`);
  return Buffer.from(v, 'base64').toString('utf8');
}

function str(o: Record<string, unknown>, field: string, name: string): string {
  const v = o[field];
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number') return String(v);
  throw new LeaseStoreError(STORE, 'malformed', name, `missing ${field} in ${snippet(JSON.stringify(o))}`);
}

function revision(txn: Record<string, unknown>, name: string): bigint {
  const header = txn['header'];
  const rev = isObject(header) ? header['revision'] : undefined;
  if ((typeof rev === 'string' && /^\d+$/.test(rev)) || typeof rev === 'number') return BigInt(rev);
  throw new LeaseStoreError(STORE, 'malformed', name, `no header.revision in ${snippet(JSON.stringify(txn))}`);
}

/** The value of responses[0].response_range.kvs[0] of a failed txn, or null. */
function firstValue(txn: Record<string, unknown>): string | null {
  const responses = txn['responses'];
  if (!Array.isArray(responses) || !isObject(responses[0])) return null;
  const range = responses[0]['response_range'];
  const kvs = isObject(range) ? range['kvs'] : undefined;
  if (!Array.isArray(kvs) || !isObject(kvs[0])) return null;
  return fromB64(kvs[0]['value'], 'kv/txn');
}

function primaryFromTxn(txn: Record<string, unknown>): PrimaryInfo | null {
  const v = firstValue(txn);
  return v === null ? null : decodePrimaryInfo(v);
}
