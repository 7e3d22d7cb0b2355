/**
 * The main thread's node for a single static primary (lease.type static,
 * candidate true): the `ApiNode` the HTTP API serves. It follows the store
 * through its `tx` events, keeps /events and /metrics current, and serves
 * POST /stream to replicas from its data directory (DataDirReplicationSource).
 */
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { ApiNode, EventSubscription, NodeInfo } from '../http/api.js';
import type { Pos } from '../http/posmap.js';
import type { StoreEvent } from '../store/messages.js';
import { NodeCore } from './node-core.js';
import { NotSupportedError, StaticLeaseNode } from './static-lease-node.js';
import { DataDirReplicationSource } from './replication-source.js';

/** Export and import need the store's locks, which live on the FUSE thread. */
export interface DatabaseTransfer {
  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined;
  importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void>;
}

export interface StaticPrimaryNodeOptions {
  readonly dataDir: string;
  readonly clusterID: string;
  /** lease.hostname: this node's name in /info and events. */
  readonly hostname: string;
  readonly registry: Registry;
  readonly transfer?: DatabaseTransfer;
  /** Register prom-client's process collectors (off in unit tests). */
  readonly defaultMetrics?: boolean;
  /** data.compress: snapshots sent to replicas are LZ4-compressed (default true, as LiteFS). */
  readonly compress?: boolean;
  /** One line per unexpected condition (an LTX file that fails verification). */
  readonly log?: (line: string) => void;
}


export class StaticPrimaryNode extends StaticLeaseNode implements ApiNode {
  readonly nodeID: bigint = randomBytes(8).readBigUInt64BE(0);
  readonly replication: DataDirReplicationSource;
  private readonly dataDir: string;
  private readonly cluster: string;
  private readonly hostname: string;
  private readonly core: NodeCore;
  private transfer: DatabaseTransfer | undefined;

  constructor(options: StaticPrimaryNodeOptions) {
    super();
    this.dataDir = options.dataDir;
    this.cluster = options.clusterID;
    this.hostname = options.hostname;
    this.transfer = options.transfer;
    this.core = new NodeCore({ ...options, primaryData: () => this.primaryData() });
    this.replication = new DataDirReplicationSource({
      dataDir: this.dataDir,
      nodeID: this.nodeID,
      compress: options.compress ?? true,
      log: options.log,
    });
    this.core.metrics.isPrimary.set(1);
  }

  setTransfer(transfer: DatabaseTransfer): void {
    this.transfer = transfer;
  }

  clusterID(): string {
    return this.cluster;
  }

  info(): NodeInfo {
    return { clusterID: this.cluster, isPrimary: true, candidate: true, path: this.dataDir, primaryHostname: this.hostname };
  }

  /** The database's position as last reported by the store; undefined if unknown. */
  position(name: string): Pos | undefined {
    return this.core.position(name);
  }

  /** Follows a message from the FUSE thread: a commit moves the position and wakes the /stream sessions. */
  onStoreEvent(event: StoreEvent): void {
    if (event.type !== 'tx') return;
    this.replication.onTx(event.db, this.core.onTx(event, false));
  }

  subscribeEvents(): EventSubscription {
    return this.core.subscribeEvents();
  }

  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined {
    if (this.transfer === undefined) throw new NotSupportedError('export');
    return this.transfer.exportDatabase(name, signal);
  }

  async importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    if (this.transfer === undefined) throw new NotSupportedError('import');
    await this.transfer.importDatabase(name, body, signal);
  }

  /** Already primary: LiteFS answers 200 at once. */
  async promote(): Promise<void> {}

  /** Ends every /events and /stream stream (shutdown). */
  close(): void {
    this.core.close();
    this.replication.close();
  }

  private primaryData(): { isPrimary: boolean; hostname: string } {
    return { isPrimary: true, hostname: this.hostname };
  }
}
