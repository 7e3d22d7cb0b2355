/**
 * The lease layer: who is the primary, and for how long (LiteFS's Leaser/Lease,
 * reference §10, with the epochs and deadlines of ARCHITECTURE.md §3.2).
 *
 * A Leaser talks to one lease store (static config, Consul, etcd). A Lease is
 * one primary term: it has an epoch (the store's index of the write that
 * acquired it, strictly increasing across terms) and a local deadline after
 * which the holder must act as if it had lost the lease. This module imports
 * nothing from the store, fs or fuse layers.
 */

/** Who the primary is, as stored in the lease store. */
export interface PrimaryInfo {
  readonly hostname: string;
  readonly advertiseURL: string;
}

export interface Leaser {
  /** 'static', 'consul' or 'etcd'. */
  readonly type: string;
  readonly hostname: string;
  readonly advertiseURL: string;
  /** Becomes the primary, or throws PrimaryExistsError when someone else is. */
  acquire(signal?: AbortSignal): Promise<Lease>;
  /** Takes over a lease handed to this node by the previous primary (a new acquiring write: a new epoch). */
  acquireExisting(leaseID: string, signal?: AbortSignal): Promise<Lease>;
  /** The current primary, or throws NoPrimaryError. */
  primaryInfo(signal?: AbortSignal): Promise<PrimaryInfo>;
  /** The cluster id recorded in the lease store; '' when none. */
  clusterID(signal?: AbortSignal): Promise<string>;
  /** Records the cluster id; throws ClusterIDConflictError when a different one is recorded. */
  setClusterID(id: string, signal?: AbortSignal): Promise<void>;
  /**
   * ARCHITECTURE.md §3.1: the primary records its per-database positions
   * beside the lease key (`<key>/positions`), written only while `lease`
   * still holds the key at its epoch; otherwise LeaseExpiredError.
   */
  publishPrimaryPositions(lease: Lease, record: PositionRecord, signal?: AbortSignal): Promise<void>;
  /**
   * A candidate's presence record (`<key>/nodes/<nodeID>`), tied to a session
   * or lease of its own so that it vanishes when the node stops renewing it.
   */
  openPresence(nodeID: string, record: PositionRecord, signal?: AbortSignal): Promise<Presence>;
  /** The primary's last published record and every live candidate's. */
  positions(signal?: AbortSignal): Promise<ClusterPositions>;
  close(): Promise<void>;
}

/** One node's per-database replication positions, as published in the lease store. */
export interface PositionRecord {
  readonly nodeID: string;
  readonly hostname: string;
  /** The publishing primary's epoch; 0n in a candidate's presence record. */
  readonly epoch: bigint;
  /** Database name -> position (TXID and post-apply checksum as 16 hex digits, like the position map). */
  readonly databases: Readonly<Record<string, { readonly txid: string; readonly postApplyChecksum: string }>>;
}

export interface ClusterPositions {
  readonly primary: PositionRecord | null;
  readonly candidates: readonly PositionRecord[];
}

/** A candidate's live presence record; renew it like a lease (every TTL/2). */
export interface Presence {
  readonly id: string;
  readonly ttlMs: number;
  publish(record: PositionRecord, signal?: AbortSignal): Promise<void>;
  /** Throws LeaseExpiredError when the store dropped it (open a new one). */
  renew(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface Lease {
  /** Store-specific id (Consul session id, etcd lease id as a decimal string, '' for static). */
  readonly id: string;
  /** Fencing token of this term (ARCHITECTURE.md §3.2). */
  readonly epoch: bigint;
  readonly ttlMs: number;
  /**
   * Monotonic time (performance.now()) at which the last successful renewal
   * (or the grant) was SENT: the store's timer started no earlier than this.
   */
  readonly renewedAt: number;
  /**
   * Monotonic time after which the holder must stop acting as primary:
   * renewedAt + ttlMs - marginMs. Never later than the store's own expiry.
   */
  readonly deadline: number;
  /** Extends the lease; throws LeaseExpiredError when the store no longer has it. */
  renew(signal?: AbortSignal): Promise<void>;
  /** Asks the primary loop to hand leadership to nodeID (delivered by nextHandoff). */
  handoff(nodeID: string): Promise<void>;
  /** Resolves with the next node id passed to handoff(); rejects when signal aborts or the lease closes. */
  nextHandoff(signal?: AbortSignal): Promise<string>;
  /** Gives the lease up (the key disappears, another node may acquire). Idempotent. */
  close(): Promise<void>;
}

/** Safety margin subtracted from the TTL for the local deadline: clock rate drift and scheduling delay. */
export function defaultMarginMs(ttlMs: number): number {
  return Math.min(1000, Math.floor(ttlMs / 4));
}

export function monotonicNow(): number {
  return performance.now();
}

// ---- errors ---------------------------------------------------------------

export class LeaseError extends Error {
  override name = 'LeaseError';
}

export class PrimaryExistsError extends LeaseError {
  override name = 'PrimaryExistsError';
  constructor(readonly primary: PrimaryInfo | null) {
    super(primary ? `primary already exists: ${primary.hostname} (${primary.advertiseURL})` : 'primary already exists');
  }
}

export class NoPrimaryError extends LeaseError {
  override name = 'NoPrimaryError';
  constructor() {
    super('no primary');
  }
}

export class LeaseExpiredError extends LeaseError {
  override name = 'LeaseExpiredError';
  constructor(leaseID: string, detail = '') {
    super(`lease ${leaseID} expired${detail ? `: ${detail}` : ''}`);
  }
}

export class ClusterIDConflictError extends LeaseError {
  override name = 'ClusterIDConflictError';
  constructor(readonly existing: string, readonly wanted: string) {
    super(`cluster already initialized with id ${existing}; refusing to set ${wanted}`);
  }
}

export class LeaseNotSupportedError extends LeaseError {
  override name = 'LeaseNotSupportedError';
}

/** Why a lease store request failed. */
export type StoreFailure = 'unavailable' | 'timeout' | 'http' | 'malformed' | 'rejected';

/** The lease store could not be reached or answered something we cannot use. */
export class LeaseStoreError extends LeaseError {
  override name = 'LeaseStoreError';
  constructor(
    readonly store: string,
    readonly failure: StoreFailure,
    readonly request: string,
    detail: string,
    readonly status?: number,
  ) {
    super(`${store} ${request}: ${describe(failure)}${status !== undefined ? ` (HTTP ${status})` : ''}: ${detail}`);
  }
}

function describe(f: StoreFailure): string {
  switch (f) {
    case 'unavailable':
      return 'store unreachable';
    case 'timeout':
      return 'request timed out';
    case 'http':
      return 'store returned an error status';
    case 'malformed':
      return 'malformed response';
    case 'rejected':
      return 'store rejected the request';
  }
}

// ---- PrimaryInfo encoding (LiteFS's JSON, the Consul KV value) -------------

export function encodePrimaryInfo(info: PrimaryInfo): string {
  return JSON.stringify({ hostname: info.hostname, 'advertise-url': info.advertiseURL });
}

/** Decodes LiteFS's PrimaryInfo JSON; returns null when it is not that shape. */
export function decodePrimaryInfo(text: string): PrimaryInfo | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(v)) return null;
  const hostname = v['hostname'];
  const url = v['advertise-url'];
  if (typeof hostname !== 'string' || (url !== undefined && typeof url !== 'string')) return null;
  return { hostname, advertiseURL: url ?? '' };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- PositionRecord encoding -------------------------------------------------

export function encodePositionRecord(r: PositionRecord): string {
  return JSON.stringify({ 'node-id': r.nodeID, hostname: r.hostname, epoch: r.epoch.toString(), databases: r.databases });
}

const HEX16 = /^[0-9A-Fa-f]{16}$/;

/** Decodes a PositionRecord; returns null when the text is not one. */
export function decodePositionRecord(text: string): PositionRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(v)) return null;
  const nodeID = v['node-id'];
  const hostname = v['hostname'];
  const epoch = v['epoch'];
  const dbs = v['databases'];
  if (typeof nodeID !== 'string' || typeof hostname !== 'string' || typeof epoch !== 'string' || !/^\d+$/.test(epoch)) return null;
  if (!isObject(dbs)) return null;
  const databases: Record<string, { txid: string; postApplyChecksum: string }> = {};
  for (const [name, pos] of Object.entries(dbs)) {
    if (!isObject(pos)) return null;
    const txid = pos['txid'];
    const sum = pos['postApplyChecksum'];
    if (typeof txid !== 'string' || typeof sum !== 'string' || !HEX16.test(txid) || !HEX16.test(sum)) return null;
    databases[name] = { txid, postApplyChecksum: sum };
  }
  return { nodeID, hostname, epoch: BigInt(epoch), databases };
}

// ---- handoff queue shared by the leases that support handoff --------------

/** A one-consumer queue of handoff target node ids (LiteFS's HandoffCh). */
export class HandoffQueue {
  private readonly queued: string[] = [];
  private waiter: { resolve: (id: string) => void; reject: (e: Error) => void } | null = null;
  private closed = false;

  push(nodeID: string): void {
    if (this.closed) throw new LeaseError('lease closed: cannot hand off');
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(nodeID);
    } else {
      this.queued.push(nodeID);
    }
  }

  next(signal?: AbortSignal): Promise<string> {
    const first = this.queued.shift();
    if (first !== undefined) return Promise.resolve(first);
    if (this.closed) return Promise.reject(new LeaseError('lease closed'));
    if (this.waiter) return Promise.reject(new LeaseError('nextHandoff already waiting'));
    return new Promise<string>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiter = null;
        reject(signal?.reason instanceof Error ? signal.reason : new LeaseError('aborted'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        resolve: (id) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(id);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
    });
  }

  close(): void {
    this.closed = true;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(new LeaseError('lease closed'));
  }
}
