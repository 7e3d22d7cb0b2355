/**
 * The main thread's node on a replica (lease.type static, candidate false):
 * the `ApiNode` the HTTP API serves while the replica client follows the
 * primary. It keeps positions, /events and /metrics current from the
 * store's events, knows whether the primary is connected (`.primary`,
 * /info) and how far behind it is (`.lag`, litefs_lag_seconds), and refuses
 * what only a primary does (/stream, /import) as LiteFS does.
 */
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import {
  ApiError,
  NotPrimaryError,
  type ApiNode,
  type ChangeSubscription,
  type EventSubscription,
  type NodeInfo,
  type ReplicationSource,
} from '../http/api.js';
import type { Pos, PosMap } from '../http/posmap.js';
import type { StoreEvent } from '../store/messages.js';
import { saveClusterID } from './cluster-id.js';
import { NodeCore } from './node-core.js';
import { NotSupportedError, StaticLeaseNode } from './static-lease-node.js';
import type { DatabaseTransfer } from './static-node.js';

export interface ReplicaNodeOptions {
  readonly dataDir: string;
  /** The persisted cluster id, '' until adopted from the primary. */
  readonly clusterID: string;
  /** lease.hostname: the primary's name (static lease). */
  readonly primaryHostname: string;
  readonly registry: Registry;
  readonly transfer?: DatabaseTransfer;
  readonly defaultMetrics?: boolean;
  readonly log?: (line: string) => void;
}

/** Milliseconds since the epoch of the primary's last heartbeat; -1 before the first sync (ref §7.4). */
const NEVER_SYNCED = -1;

export class ReplicaNode extends StaticLeaseNode implements ApiNode {
  readonly nodeID: bigint = randomBytes(8).readBigUInt64BE(0);
  readonly replication: ReplicationSource;
  private readonly core: NodeCore;
  private cluster: string;
  private connected = false;
  private primaryTimestamp = NEVER_SYNCED;
  private readyResolve: () => void = () => {};
  /** Resolves once the first catch-up with the primary is done (the Ready frame). */
  readonly ready: Promise<void> = new Promise((res) => (this.readyResolve = res));
  private isReady = false;

  constructor(private readonly options: ReplicaNodeOptions) {
    super();
    this.cluster = options.clusterID;
    this.core = new NodeCore({ ...options, primaryData: () => this.primaryData() });
    this.replication = new NotPrimarySource(this.core);
    this.core.metrics.isPrimary.set(0);
  }

  clusterID(): string {
    return this.cluster;
  }

  /** A replica with no cluster id takes its primary's and keeps it (ref §7.1). */
  adoptClusterID(id: string): void {
    if (this.cluster === id) return;
    if (this.cluster !== '') throw new ApiError(500, `cluster id mismatch: local ${this.cluster}, primary ${id}`);
    saveClusterID(this.options.dataDir, id);
    this.cluster = id;
    this.options.log?.(`adopted cluster id ${id} from the primary`);
  }

  info(): NodeInfo {
    return {
      clusterID: this.cluster,
      isPrimary: false,
      candidate: false,
      path: this.options.dataDir,
      primaryHostname: this.connected ? this.options.primaryHostname : '',
    };
  }

  position(name: string): Pos | undefined {
    return this.core.position(name);
  }

  posMap(): PosMap {
    return this.core.posMap();
  }

  /** The stream to the primary opened or closed: `.primary` and /info follow it. */
  setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    this.core.publishPrimaryChange();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The primary's clock from a heartbeat or an applied LTX file. */
  setPrimaryTimestamp(ms: number): void {
    this.primaryTimestamp = ms;
    this.core.metrics.lagSeconds.set(this.lagMs() / 1000);
  }

  /** ms behind the primary, as `.lag` shows it; 0 before the first sync (LiteFS's Store.Lag). */
  lagMs(): number {
    if (!this.isReady || this.primaryTimestamp <= 0) return 0;
    return Date.now() - this.primaryTimestamp;
  }

  get lastPrimaryTimestamp(): number {
    return this.primaryTimestamp;
  }

  markReady(): void {
    if (this.isReady) return;
    this.isReady = true;
    this.readyResolve();
  }

  /** Follows a message from the FUSE thread. */
  onStoreEvent(event: StoreEvent): void {
    if (event.type === 'tx') this.core.onTx(event, true);
    else if (event.type === 'quarantine') this.core.metrics.quarantineCount.inc({ db: event.db });
  }

  subscribeEvents(): EventSubscription {
    return this.core.subscribeEvents();
  }

  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined {
    if (this.options.transfer === undefined) throw new NotSupportedError('export');
    return this.options.transfer.exportDatabase(name, signal);
  }

  async importDatabase(): Promise<void> {
    throw new NotPrimaryError();
  }

  /** LiteFS answers 409 on a node that may never be primary. */
  async promote(): Promise<void> {
    throw new ApiError(409, 'node is not a candidate');
  }

  close(): void {
    this.core.close();
  }

  private primaryData(): { isPrimary: boolean; hostname: string } {
    return { isPrimary: false, hostname: this.connected ? this.options.primaryHostname : '' };
  }
}

/** A replica serves no /stream: the server answers 503 as LiteFS does on a non-primary. */
class NotPrimarySource implements ReplicationSource {
  constructor(private readonly core: NodeCore) {}

  primarySignal(): AbortSignal | undefined {
    return undefined;
  }

  subscribeChanges(): ChangeSubscription {
    return { next: async () => undefined, close: () => {} };
  }

  databaseNames(): string[] {
    return this.core.databaseNames();
  }

  position(name: string): Pos | undefined {
    return this.core.position(name);
  }

  hwm(): bigint {
    return 0n;
  }

  async openLTXFile(): Promise<undefined> {
    return undefined;
  }

  async writeSnapshot(): Promise<Pos> {
    throw new NotPrimaryError();
  }
}
