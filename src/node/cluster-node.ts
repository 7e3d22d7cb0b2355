/**
 * The main thread's node: the `ApiNode` the HTTP API serves, whatever lease
 * type decides its role. The lease loop (lease-loop.ts) moves it between
 * primary and replica; this object keeps what both roles show: positions,
 * /events and /metrics (NodeCore), the replication source that serves
 * /stream while primary, the known primary and its clock while replica,
 * and the highest epoch seen (ARCHITECTURE §3.2).
 */
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { ApiError, NotPrimaryError, type ApiNode, type EventSubscription, type NodeInfo } from '../http/api.js';
import type { Pos, PosMap } from '../http/posmap.js';
import type { StoreEvent } from '../store/messages.js';
import type { HaltLock } from '../http/halt-lock.js';
import { ChangeSignal } from './change-signal.js';
import type { HaltService } from './halt-service.js';
import type { LocalHalts } from './local-halt.js';
import type { ImageLocks } from './image-spool.js';
import { saveClusterID } from './cluster-id.js';
import { EpochKeeper } from './epoch.js';
import { NodeCore } from './node-core.js';
import { DataDirReplicationSource } from './replication-source.js';

/** Export and import need the store's locks, which live on the FUSE thread. */
export interface DatabaseTransfer {
  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined;
  importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void>;
}

/** Thrown for endpoints whose feature is not available (no FUSE thread to serve it). */
export class NotSupportedError extends ApiError {
  constructor(feature: string) {
    super(500, `not supported yet: ${feature}`);
  }
}

export type Role = 'primary' | 'replica';

/** Who the primary is, as a replica knows it (LiteFS's PrimaryInfo). */
export interface KnownPrimary {
  readonly hostname: string;
  readonly advertiseURL: string;
}

/** What only the lease loop can do; absent (null) while the lease type or role does not allow it. */
export interface LeaseActions {
  /** Primary: hand the lease to a connected replica (POST /handoff). */
  handoff(nodeID: bigint, signal: AbortSignal): Promise<void>;
  /** Candidate replica: ask the primary to hand off to this node (POST /promote). */
  promote(signal: AbortSignal): Promise<void>;
  /** A replica has seen a newer epoch than this primary's: step down now. */
  deposed(epoch: bigint): void;
}

export interface ClusterNodeOptions {
  readonly dataDir: string;
  /** The persisted cluster id, '' until created (primary) or adopted (replica). */
  readonly clusterID: string;
  /** This node's name (lease.hostname or the machine's). */
  readonly hostname: string;
  readonly candidate: boolean;
  readonly registry: Registry;
  readonly transfer?: DatabaseTransfer;
  /** HALT locks and forwarded transactions (POST/DELETE /halt, POST /tx) while primary. */
  readonly halt?: HaltService;
  /** HALT locks for local programs (POST /litefs-ts/halt). */
  readonly localHalts?: LocalHalts;
  /** data.compress: snapshots sent to replicas are LZ4-compressed. */
  readonly compress?: boolean;
  /** Read lock sets on the FUSE thread for copying snapshots; without them (no mount) snapshots fail. */
  readonly images?: ImageLocks;
  /** Register prom-client's process collectors (off in unit tests). */
  readonly defaultMetrics?: boolean;
  readonly log?: (line: string) => void;
}

const NO_IMAGES: ImageLocks = {
  hold: (db) => Promise.reject(new Error(`${db}: no mount to copy it from`)),
};

/** ms since the epoch of the primary's last heartbeat: -1 before the first sync (ref §7.4). */
const NEVER_SYNCED = -1;

export class ClusterNode implements ApiNode {
  readonly nodeID: bigint = randomBytes(8).readBigUInt64BE(0);
  readonly replication: DataDirReplicationSource;
  readonly epochs: EpochKeeper;
  private readonly core: NodeCore;
  private cluster: string;
  private roleNow: Role = 'replica';
  /** The primary's epoch while this node is primary. */
  private termEpoch: bigint | undefined;
  private primary: KnownPrimary | null = null;
  private primaryTimestamp = NEVER_SYNCED;
  private actions: LeaseActions | null = null;
  private isReady = false;
  private readonly changes = new ChangeSignal();
  private readyResolve: () => void = () => {};
  /** Resolves once this node is primary or has caught up with its primary (ref §7.4 ReadyCh). */
  readonly ready: Promise<void> = new Promise((res) => (this.readyResolve = res));

  constructor(private readonly options: ClusterNodeOptions) {
    this.cluster = options.clusterID;
    this.epochs = new EpochKeeper(options.dataDir);
    this.core = new NodeCore({ ...options, primaryData: () => this.primaryData() });
    this.replication = new DataDirReplicationSource({
      dataDir: options.dataDir,
      nodeID: this.nodeID,
      compress: options.compress ?? true,
      images: options.images ?? NO_IMAGES,
      primary: false,
      log: options.log,
    });
    this.core.metrics.isPrimary.set(0);
  }

  // ---- identity and role ----

  clusterID(): string {
    return this.cluster;
  }

  /** Takes the cluster id of the lease store or the primary, when this node has none yet (ref §7.1). */
  adoptClusterID(id: string): void {
    if (this.cluster === id) return;
    if (this.cluster !== '') throw new ApiError(500, `cluster id mismatch: local ${this.cluster}, other ${id}`);
    saveClusterID(this.options.dataDir, id);
    this.cluster = id;
    this.options.log?.(`adopted cluster id ${id}`);
  }

  get role(): Role {
    return this.roleNow;
  }

  get candidate(): boolean {
    return this.options.candidate;
  }

  get hostname(): string {
    return this.options.hostname;
  }

  /** The epoch sent as `Litefs-Epoch`: this term's while primary, else the highest seen (undefined before any). */
  epoch(): bigint | undefined {
    if (this.termEpoch !== undefined) return this.termEpoch;
    return this.epochs.value > 0n ? this.epochs.value : undefined;
  }

  /** Starts a primary term: /stream is served, /info says primary, the node is ready. `reason` goes into the primaryChange event. */
  becomePrimary(epoch: bigint, actions: LeaseActions | null, reason = ''): void {
    this.epochs.observe(epoch);
    this.termEpoch = epoch;
    this.actions = actions;
    this.roleNow = 'primary';
    this.primary = null;
    this.primaryTimestamp = 0;
    this.replication.setPrimary(true);
    this.core.metrics.isPrimary.set(1);
    this.core.metrics.lagSeconds.set(0);
    this.core.publishPrimaryChange(reason);
    this.markReady();
    this.changes.notify();
  }

  /** Ends a primary term (or starts as replica): every /stream ends, /import is refused. */
  becomeReplica(actions: LeaseActions | null, reason = ''): void {
    const wasPrimary = this.roleNow === 'primary';
    this.roleNow = 'replica';
    this.termEpoch = undefined;
    this.actions = actions;
    this.replication.setPrimary(false);
    this.core.metrics.isPrimary.set(0);
    if (wasPrimary) {
      this.primaryTimestamp = NEVER_SYNCED;
      this.core.publishPrimaryChange(reason);
    }
    this.changes.notify();
  }

  /** A replica connected to (or lost) its primary: `.primary` and /info follow it. */
  setPrimary(primary: KnownPrimary | null): void {
    if (this.primary?.hostname === primary?.hostname && this.primary?.advertiseURL === primary?.advertiseURL) return;
    this.primary = primary;
    this.core.publishPrimaryChange();
    this.changes.notify();
  }

  /** Resolves at the next change of a position, the role or the known primary, or after `ms`. */
  changed(ms: number): Promise<void> {
    return this.changes.next(ms);
  }

  get knownPrimary(): KnownPrimary | null {
    return this.primary;
  }

  /** The primary's clock from a heartbeat or an applied LTX file. */
  setPrimaryTimestamp(ms: number): void {
    this.primaryTimestamp = ms;
    this.core.metrics.lagSeconds.set(this.lagMs() / 1000);
  }

  get lastPrimaryTimestamp(): number {
    return this.primaryTimestamp;
  }

  /** ms behind the primary (LiteFS's Store.Lag): 0 when primary or before the first sync. */
  lagMs(): number {
    if (this.roleNow === 'primary' || !this.isReady || this.primaryTimestamp <= 0) return 0;
    return Date.now() - this.primaryTimestamp;
  }

  /** litefs_role_change_count{role,reason}; the reason is cut to its kind (no ids or numbers) to keep the label set small. */
  countRoleChange(role: Role, reason: string): void {
    this.core.metrics.roleChangeCount.inc({ role, reason: reason.replace(/[0-9A-Fa-f]{6,}|\d+/g, 'N').slice(0, 64) });
  }

  markReady(): void {
    if (this.isReady) return;
    this.isReady = true;
    this.readyResolve();
  }

  // ---- positions ----

  position(name: string): Pos | undefined {
    return this.core.position(name);
  }

  posMap(): PosMap {
    return this.core.posMap();
  }

  /** Re-reads the positions from the data directory (after the store opened, or a refused apply). */
  reloadPositions(): void {
    for (const [db, pos] of this.core.reload()) {
      this.options.log?.(`position of ${db} read again from its LTX files: TXID ${pos.txid}`);
      this.replication.onTx(db, pos);
    }
    this.changes.notify();
  }

  /**
   * True while a commit's `tx` event must come at once: a replica waits for
   * its applies, a streaming replica and an /events subscriber for each
   * commit (node/tx-event-pacer.ts).
   */
  wantsEveryTx(): boolean {
    return this.roleNow !== 'primary' || this.replication.streams > 0 || this.core.eventSubscribers > 0;
  }

  /** Follows a message from the FUSE thread. */
  onStoreEvent(event: StoreEvent): void {
    if (event.type === 'tx') {
      const pos = this.core.onTx(event, this.roleNow !== 'primary');
      this.replication.onTx(event.db, pos, event.ltx);
      this.changes.notify();
    } else if (event.type === 'quarantine') {
      this.core.metrics.quarantineCount.inc({ db: event.db });
    }
  }

  // ---- ApiNode ----

  info(): NodeInfo {
    return {
      clusterID: this.cluster,
      isPrimary: this.roleNow === 'primary',
      candidate: this.options.candidate,
      path: this.options.dataDir,
      primaryHostname: this.roleNow === 'primary' ? this.options.hostname : (this.primary?.hostname ?? ''),
    };
  }

  subscribeEvents(): EventSubscription {
    return this.core.subscribeEvents();
  }

  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined {
    if (this.options.transfer === undefined) throw new NotSupportedError('export');
    return this.options.transfer.exportDatabase(name, signal);
  }

  async importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    if (this.roleNow !== 'primary') throw new NotPrimaryError();
    if (this.options.transfer === undefined) throw new NotSupportedError('import');
    await this.options.transfer.importDatabase(name, body, signal);
  }

  async acquireHaltLock(name: string, lockID: bigint, signal: AbortSignal, requester: bigint): Promise<HaltLock> {
    return await this.haltService().acquire(name, lockID, signal, requester);
  }

  async releaseHaltLock(name: string, lockID: bigint): Promise<void> {
    await this.haltService().release(name, lockID);
  }

  async applyForwardedTx(name: string, lockID: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void> {
    await this.haltService().applyTx(name, lockID, body, signal);
  }

  async holdHaltLock(name: string, signal: AbortSignal): Promise<() => Promise<void>> {
    if (this.options.localHalts === undefined) throw new NotSupportedError('HALT locks for local programs');
    return await this.options.localHalts.hold(name, signal);
  }

  private haltService(): HaltService {
    if (this.options.halt === undefined) throw new NotSupportedError('HALT locks (write forwarding)');
    return this.options.halt;
  }

  async handoff(nodeID: bigint, signal: AbortSignal): Promise<void> {
    if (this.roleNow !== 'primary') throw new Error('node is not the primary');
    if (this.actions === null) throw new Error('static lease does not support handoff');
    await this.actions.handoff(nodeID, signal);
  }

  /** 200 at once when primary (LiteFS); 409 on a node that may never be primary. */
  async promote(signal: AbortSignal): Promise<void> {
    if (!this.options.candidate) throw new ApiError(409, 'node is not a candidate');
    if (this.roleNow === 'primary') return;
    if (this.actions === null) throw new ApiError(500, 'no primary known to hand off to this node');
    await this.actions.promote(signal);
  }

  onNewerEpoch(epoch: bigint): void {
    this.epochs.observe(epoch);
    if (this.roleNow === 'primary') this.actions?.deposed(epoch);
  }

  /** Ends every /events and /stream stream (shutdown). */
  close(): void {
    this.core.close();
    this.replication.close();
  }

  private primaryData(): { isPrimary: boolean; hostname: string } {
    const hostname = this.roleNow === 'primary' ? this.options.hostname : (this.primary?.hostname ?? '');
    return { isPrimary: this.roleNow === 'primary', hostname };
  }
}
