import {
  type ClusterPositions,
  type Lease,
  type Leaser,
  type Presence,
  type PrimaryInfo,
  LeaseError,
  LeaseNotSupportedError,
  NoPrimaryError,
  PrimaryExistsError,
} from './lease.js';

/**
 * lease.type: static (reference §10.2). The candidate node is THE primary
 * forever; every other node is a replica of the configured hostname/URL.
 * There is no failover, no handoff and no cluster id in the store.
 */
export interface StaticLeaserOptions {
  readonly hostname: string;
  readonly advertiseURL: string;
  readonly candidate: boolean;
}

export class StaticLeaser implements Leaser {
  readonly type = 'static';
  readonly hostname: string;
  private readonly url: string;
  private readonly candidate: boolean;

  constructor(opts: StaticLeaserOptions) {
    this.hostname = opts.hostname;
    this.url = opts.advertiseURL;
    this.candidate = opts.candidate;
  }

  /** LiteFS returns the configured URL only on the primary. */
  get advertiseURL(): string {
    return this.candidate ? this.url : '';
  }

  async acquire(): Promise<Lease> {
    if (!this.candidate) throw new PrimaryExistsError(this.primary());
    return new StaticLease();
  }

  async acquireExisting(): Promise<Lease> {
    throw new LeaseNotSupportedError('static lease does not support handoff');
  }

  async primaryInfo(): Promise<PrimaryInfo> {
    // The primary must acquire (LiteFS: ErrNoPrimary on the candidate).
    if (this.candidate) throw new NoPrimaryError();
    return this.primary();
  }

  async clusterID(): Promise<string> {
    return '';
  }

  async setClusterID(): Promise<void> {
    // The static store has nowhere to keep it; replicas adopt it from the stream.
  }

  /** The static store keeps no positions: nothing to publish, nothing to read. */
  async publishPrimaryPositions(): Promise<void> {}

  async openPresence(nodeID: string): Promise<Presence> {
    return { id: nodeID, ttlMs: YEAR_3000_MS, publish: async () => {}, renew: async () => {}, close: async () => {} };
  }

  async positions(): Promise<ClusterPositions> {
    return { primary: null, candidates: [] };
  }

  async close(): Promise<void> {}

  private primary(): PrimaryInfo {
    return { hostname: this.hostname, advertiseURL: this.url };
  }
}

/** Year 3000 in ms since the Unix epoch: LiteFS's "never expires" TTL. */
const YEAR_3000_MS = Date.UTC(3000, 0, 1);

class StaticLease implements Lease {
  readonly id = '';
  /** ARCHITECTURE.md §3.2: the static primary's single term is epoch 1. */
  readonly epoch = 1n;
  readonly ttlMs = YEAR_3000_MS;
  readonly renewedAt = 0;
  readonly deadline = YEAR_3000_MS;

  async renew(): Promise<void> {}

  async handoff(): Promise<void> {
    throw new LeaseNotSupportedError('static lease does not support handoff');
  }

  nextHandoff(signal?: AbortSignal): Promise<string> {
    // Never resolves on its own: a static primary is never asked to hand off.
    return new Promise((_, reject) => {
      const onAbort = (): void => reject(signal?.reason instanceof Error ? signal.reason : new LeaseError('aborted'));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async close(): Promise<void> {}
}
