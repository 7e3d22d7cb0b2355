/**
 * The main thread's node for a single static primary (lease.type static,
 * candidate true): the `ApiNode` the HTTP API serves. It follows the store
 * through its `tx` events, keeps /events and /metrics current, and serves
 * POST /stream to replicas from its data directory (DataDirReplicationSource).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { ApiError, type ApiNode, type EventSubscription, type NodeInfo } from '../http/api.js';
import type { Pos } from '../http/posmap.js';
import type { StoreEvent } from '../store/messages.js';
import { EventHub } from './event-hub.js';
import { databaseNames, latestLTXFacts, ltxDir, ltxFileName, readLTXFacts } from './ltx-facts.js';
import { nodeMetrics, type NodeMetrics } from './metrics.js';
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

/** Thrown for endpoints whose feature (replication, HALT, handoff) is not built. */
export class NotSupportedError extends ApiError {
  constructor(feature: string) {
    super(500, `not supported yet: ${feature}`);
  }
}

export class StaticPrimaryNode implements ApiNode {
  readonly nodeID: bigint = randomBytes(8).readBigUInt64BE(0);
  readonly replication: DataDirReplicationSource;
  private readonly dataDir: string;
  private readonly cluster: string;
  private readonly hostname: string;
  private readonly metrics: NodeMetrics;
  private readonly events: EventHub;
  private readonly positions = new Map<string, Pos>();
  private transfer: DatabaseTransfer | undefined;

  constructor(options: StaticPrimaryNodeOptions) {
    this.dataDir = options.dataDir;
    this.cluster = options.clusterID;
    this.hostname = options.hostname;
    this.transfer = options.transfer;
    this.metrics = nodeMetrics(options.registry, options.defaultMetrics ?? true);
    this.events = new EventHub(() => ({ type: 'init', data: this.primaryData() }));
    this.replication = new DataDirReplicationSource({
      dataDir: this.dataDir,
      nodeID: this.nodeID,
      compress: options.compress ?? true,
      log: options.log,
    });
    for (const db of databaseNames(this.dataDir)) {
      const facts = latestLTXFacts(this.dataDir, db);
      if (facts === undefined) continue;
      this.setPosition(db, { txid: facts.header.maxTXID, postApplyChecksum: facts.postApplyChecksum });
    }
    this.metrics.isPrimary.set(1);
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
    return this.positions.get(name);
  }

  /** Follows a message from the FUSE thread. */
  onStoreEvent(event: StoreEvent): void {
    if (event.type !== 'tx') return;
    const txid = BigInt('0x' + event.txid);
    const checksum = BigInt('0x' + event.checksum);
    this.setPosition(event.db, { txid, postApplyChecksum: checksum });
    this.replication.onTx(event.db, { txid, postApplyChecksum: checksum });
    this.metrics.dbCommitCount.inc({ db: event.db });
    // The tx event carries no header fields; the LTX file is durable by now.
    const facts = readLTXFacts(join(ltxDir(this.dataDir, event.db), ltxFileName(event.txid)));
    this.events.publish({
      type: 'tx',
      db: event.db,
      data: {
        txID: txid,
        postApplyChecksum: checksum,
        pageSize: facts?.header.pageSize ?? 0,
        commit: facts?.header.commit ?? 0,
        timestamp: facts === undefined ? Date.now() : Number(facts.header.timestamp),
      },
    });
  }

  subscribeEvents(): EventSubscription {
    const sub = this.events.subscribe();
    this.metrics.subscriberCount.set(this.events.size);
    return {
      next: (signal) => sub.next(signal),
      close: () => {
        sub.close();
        this.metrics.subscriberCount.set(this.events.size);
      },
    };
  }

  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined {
    if (this.transfer === undefined) throw new NotSupportedError('export');
    return this.transfer.exportDatabase(name, signal);
  }

  async importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    if (this.transfer === undefined) throw new NotSupportedError('import');
    await this.transfer.importDatabase(name, body, signal);
  }

  async acquireHaltLock(): Promise<unknown> {
    throw new NotSupportedError('HALT locks (write forwarding)');
  }

  async releaseHaltLock(): Promise<void> {
    throw new NotSupportedError('HALT locks (write forwarding)');
  }

  async applyForwardedTx(): Promise<void> {
    throw new NotSupportedError('write forwarding');
  }

  async handoff(): Promise<void> {
    throw new Error('static lease does not support handoff');
  }

  /** Already primary: LiteFS answers 200 at once. */
  async promote(): Promise<void> {}

  /** Ends every /events and /stream stream (shutdown). */
  close(): void {
    this.events.closeAll();
    this.replication.close();
  }

  private setPosition(db: string, pos: Pos): void {
    this.positions.set(db, pos);
    this.metrics.dbTXID.set({ db }, Number(pos.txid));
    this.metrics.dbCount.set(this.positions.size);
  }

  private primaryData(): { isPrimary: boolean; hostname: string } {
    return { isPrimary: true, hostname: this.hostname };
  }
}
