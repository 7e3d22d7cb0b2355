/**
 * The Lease and Presence that Consul and etcd share: both are a store-side
 * session/lease id that must be kept alive, plus (for the lease) a check
 * that the lease key still carries this term's epoch. Only the calls to the
 * store differ; they come in as a `LeaseBackend`.
 */
import {
  type Lease,
  type PositionRecord,
  type Presence,
  HandoffQueue,
  LeaseExpiredError,
  monotonicNow,
} from './lease.js';

/** What a store-backed lease or presence needs from its leaser. */
export interface LeaseBackend {
  readonly ttlMs: number;
  readonly marginMs: number;
  /** Keeps the session (Consul) or lease (etcd) `id` alive; throws LeaseExpiredError when it is gone. */
  keepAlive(id: string, signal?: AbortSignal): Promise<void>;
  /** Throws LeaseExpiredError unless the lease key is still held by `id` at `epoch` (a handoff rewrites it). */
  checkHolder(id: string, epoch: bigint, signal?: AbortSignal): Promise<void>;
  /** Gives `id` up: the lease key (or presence record) goes with it. */
  release(id: string): Promise<void>;
}

export class StoreLease implements Lease {
  readonly ttlMs: number;
  private sentAt: number;
  private readonly handoffs = new HandoffQueue();
  private closed = false;

  constructor(
    private readonly backend: LeaseBackend,
    readonly id: string,
    readonly epoch: bigint,
    sentAt: number,
  ) {
    this.ttlMs = backend.ttlMs;
    this.sentAt = sentAt;
  }

  get renewedAt(): number {
    return this.sentAt;
  }

  get deadline(): number {
    return this.sentAt + this.ttlMs - this.backend.marginMs;
  }

  async renew(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new LeaseExpiredError(this.id, 'lease closed');
    const sentAt = monotonicNow();
    await this.backend.keepAlive(this.id, signal);
    // A handoff rewrites the key under the same session/lease: the old holder must notice it was superseded.
    await this.backend.checkHolder(this.id, this.epoch, signal);
    this.sentAt = Math.max(this.sentAt, sentAt);
  }

  async handoff(nodeID: string): Promise<void> {
    this.handoffs.push(nodeID);
  }

  nextHandoff(signal?: AbortSignal): Promise<string> {
    return this.handoffs.next(signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handoffs.close();
    await this.backend.release(this.id);
  }
}

/** A presence only keeps its session/lease alive and releases it. */
export type PresenceBackend = Pick<LeaseBackend, 'ttlMs' | 'keepAlive' | 'release'>;

export class StorePresence implements Presence {
  readonly ttlMs: number;
  private closed = false;

  constructor(
    private readonly backend: PresenceBackend,
    readonly id: string,
    private readonly put: (record: PositionRecord, signal?: AbortSignal) => Promise<void>,
  ) {
    this.ttlMs = backend.ttlMs;
  }

  async publish(record: PositionRecord, signal?: AbortSignal): Promise<void> {
    await this.put(record, signal);
  }

  async renew(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new LeaseExpiredError(this.id, 'presence closed');
    await this.backend.keepAlive(this.id, signal);
  }

  /** Releasing the session/lease deletes the record. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.release(this.id);
  }
}
