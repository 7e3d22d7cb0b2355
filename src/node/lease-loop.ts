/**
 * The lease loop (ref §7.3 monitorLease, with ARCHITECTURE §3.1–3.2): decides
 * whether this node is the primary or a replica, and keeps it so.
 *
 *   loop: check the cluster id → take a handed-off lease, or find the
 *   primary, or (a candidate that is not behind) acquire the lease →
 *     primary: renew every TTL/2 (Consul) or TTL/3 (etcd), push the write deadline to the FUSE thread
 *       after each renewal (renewal send time + TTL − margin), publish the
 *       positions beside the lease key, serve handoffs; step down when the
 *       lease is lost, the deadline passes, a replica reports a newer epoch,
 *       or the lease is handed off;
 *     replica: follow the primary's stream until it ends, fails, hands off,
 *       or the lease store names another primary; then look again.
 *
 * The FUSE thread enforces the deadline itself (it refuses write locks and
 * commits past it), so a main thread that is stalled cannot extend a term.
 */
import { NodeClient } from '../http/client.js';
import type { PeerHeaders } from '../http/client.js';
import {
  type Lease,
  type Leaser,
  type PositionRecord,
  type Presence,
  type PrimaryInfo,
  LeaseExpiredError,
  NoPrimaryError,
  PrimaryExistsError,
  monotonicNow,
} from '../lease/lease.js';
import { formatNodeID } from '../http/node-id.js';
import type { ClusterNode, LeaseActions } from './cluster-node.js';
import { generateClusterID } from './cluster-id.js';
import { FuseApplier } from './fuse-applier.js';
import { ReplicaClient, type StreamOutcome } from './replica-client.js';
import { behindBy, type Gap } from './stale-rule.js';
import type { StoreChannel } from './store-channel.js';

export interface LeaseLoopOptions {
  readonly leaser: Leaser;
  readonly node: ClusterNode;
  readonly channel: StoreChannel;
  readonly dataDir: string;
  /** lease.reconnect-delay */
  readonly reconnectDelayMs: number;
  /** lease.demote-delay: how long a node that lost or handed off the lease waits before campaigning. */
  readonly demoteDelayMs: number;
  /** lease.databases (replicas). */
  readonly databases: readonly string[];
  readonly log: (line: string) => void;
  readonly debug?: boolean;
  /** Counts role changes by reason (litefs_role_change_count). */
  readonly onRoleChange?: (role: 'primary' | 'replica', reason: string) => void;
}

/** How long the old primary waits for the handoff stream to deliver the Handoff frame. */
const HANDOFF_SEND_TIMEOUT_MS = 5000;
/** A lease whose deadline is this far out never expires (static). */
const NO_DEADLINE_MS = 365 * 24 * 3600_000;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Why a primary term ended. */
type StepDown = { readonly reason: string; readonly handedOff: boolean; readonly demoted: boolean };

export class LeaseLoop {
  private readonly o: LeaseLoopOptions;
  /** Set by a Handoff frame: the next iteration takes this lease over (ref §7.3 step 2). */
  private handoffLeaseID: string | undefined;
  /** The failure last logged; repeats are not logged again until something succeeds. */
  private lastFailure: string | undefined;
  private currentLease: Lease | undefined;
  /** Between a handoff request and the end of the term: the write fence stays closed. */
  private handingOff = false;
  /** Ends the current primary term (set while serving one). */
  private endTerm: ((why: StepDown) => void) | undefined;
  /** monotonicNow() before which this node does not campaign (demote-delay after losing or handing off a term). */
  private campaignAfter = 0;

  constructor(options: LeaseLoopOptions) {
    this.o = options;
  }

  /** Runs until `signal` aborts; on the way out a held lease is released. */
  async run(signal: AbortSignal): Promise<void> {
    this.o.node.becomeReplica(this.replicaActions());
    this.tellStatus(null);
    const presence = this.o.node.candidate && this.o.leaser.type !== 'static' ? this.keepPresence(signal) : Promise.resolve();
    while (!signal.aborted) {
      try {
        await this.iterate(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.failure(`lease: ${err instanceof Error ? err.message : String(err)}`);
        await sleep(this.o.reconnectDelayMs, signal);
      }
    }
    await presence;
  }

  /**
   * ARCHITECTURE §3.1: a candidate's positions under its own per-node key,
   * tied to its own session/lease so the record vanishes with the node.
   * Renewed and republished every TTL/3; reopened if the store dropped it.
   */
  private async keepPresence(signal: AbortSignal): Promise<void> {
    const { leaser, node } = this.o;
    let presence: Presence | undefined;
    const every = Math.max(200, Math.floor(this.leaseTTLms() / 3));
    while (!signal.aborted) {
      try {
        if (presence === undefined) presence = await leaser.openPresence(formatNodeID(node.nodeID), this.positionRecord(0n), signal);
        else {
          await presence.renew(signal);
          await presence.publish(this.positionRecord(0n), signal);
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof LeaseExpiredError) presence = undefined;
        if (this.o.debug) this.o.log(`lease: presence record: ${err instanceof Error ? err.message : String(err)}`);
      }
      await sleep(every, signal);
    }
    await presence?.close().catch(() => undefined);
  }

  private async iterate(signal: AbortSignal): Promise<void> {
    const { leaser, node } = this.o;
    if (!(await this.clusterIDAgrees(signal))) {
      await sleep(this.o.reconnectDelayMs, signal);
      return;
    }
    let lease: Lease | undefined;
    const handedTo = this.handoffLeaseID;
    this.handoffLeaseID = undefined;
    if (handedTo !== undefined) {
      try {
        lease = await leaser.acquireExisting(handedTo, signal);
        this.o.log(`lease: took over the handed-off lease ${handedTo}`);
      } catch (err) {
        this.o.log(`lease: could not take over the handed-off lease: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    let primary: PrimaryInfo | undefined;
    if (lease === undefined) {
      primary = await this.primaryInfo(signal);
      if (primary === undefined) {
        if (!node.candidate) {
          this.failure('lease: no primary found and this node is not a candidate; waiting');
          await sleep(this.o.reconnectDelayMs, signal);
          return;
        }
        if (monotonicNow() < this.campaignAfter) {
          this.failure('lease: no primary; waiting out lease.demote-delay before campaigning again');
          await sleep(Math.min(this.o.reconnectDelayMs, this.campaignAfter - monotonicNow()), signal);
          return;
        }
        if (await this.deferToMoreCurrent(signal)) {
          await sleep(this.o.reconnectDelayMs, signal);
          return;
        }
        try {
          lease = await leaser.acquire(signal);
        } catch (err) {
          if (!(err instanceof PrimaryExistsError)) throw err;
          primary = err.primary ?? (await this.primaryInfo(signal));
        }
      }
    }
    if (lease !== undefined) {
      const end = await this.servePrimary(lease, signal);
      // Following the new primary starts at once; campaigning again waits (ref §7.3 DemoteDelay).
      if (end.demoted || end.handedOff) this.campaignAfter = monotonicNow() + this.o.demoteDelayMs;
      return;
    }
    if (primary === undefined) return;
    if (primary.advertiseURL === leaser.advertiseURL && leaser.advertiseURL !== '') {
      // Our own entry from before a restart: the store drops it when its lease runs out.
      this.failure(`lease: the lease store still names this node (${primary.advertiseURL}) as primary; waiting for it to expire`);
      await sleep(this.o.reconnectDelayMs, signal);
      return;
    }
    const outcome = await this.followPrimary(primary, signal);
    if (outcome.kind === 'handoff') {
      this.handoffLeaseID = outcome.leaseID;
      return;
    }
    if (!signal.aborted) await sleep(this.o.reconnectDelayMs, signal);
  }

  // ---- cluster id (ref §7.1) ----

  private async clusterIDAgrees(signal: AbortSignal): Promise<boolean> {
    const stored = await this.o.leaser.clusterID(signal);
    const local = this.o.node.clusterID();
    if (stored !== '' && local !== '' && stored !== local) {
      this.failure(`lease: cluster id mismatch: this node has ${local}, the lease store ${stored}; refusing to join`);
      return false;
    }
    if (stored !== '' && local === '') this.o.node.adoptClusterID(stored);
    return true;
  }

  private async primaryInfo(signal: AbortSignal): Promise<PrimaryInfo | undefined> {
    try {
      return await this.o.leaser.primaryInfo(signal);
    } catch (err) {
      if (err instanceof NoPrimaryError) return undefined;
      throw err;
    }
  }

  // ---- ARCHITECTURE §3.1: no stale or empty node wins ----

  /**
   * True when this candidate must not acquire now: the primary's last
   * published positions are ahead of ours and that primary still has a live
   * presence record, or another live candidate is more current. When nobody
   * more current is left, it goes ahead and reports the gap.
   */
  private async deferToMoreCurrent(signal: AbortSignal): Promise<boolean> {
    const { leaser, node } = this.o;
    let cluster;
    try {
      cluster = await leaser.positions(signal);
    } catch (err) {
      this.o.log(`lease: cannot read published positions (${err instanceof Error ? err.message : String(err)}); campaigning anyway`);
      return false;
    }
    const mine = this.positionRecord(0n);
    const self = formatNodeID(node.nodeID);
    const live = new Set(cluster.candidates.map((c) => c.nodeID));
    for (const other of cluster.candidates) {
      if (other.nodeID === self) continue;
      const gap = behindBy(mine, other);
      if (gap !== null) {
        this.failure(`lease: not campaigning: candidate ${other.hostname} (${other.nodeID}) is more current (${describeGap(gap)})`);
        return true;
      }
    }
    const last = cluster.primary;
    if (last !== null && last.nodeID !== self) {
      const gap = behindBy(mine, last);
      if (gap !== null) {
        if (live.has(last.nodeID)) {
          this.failure(`lease: not campaigning: the last primary ${last.hostname} is still alive and ahead (${describeGap(gap)})`);
          return true;
        }
        this.o.log(`lease: WARNING: campaigning although behind the last primary ${last.hostname}'s published positions (${describeGap(gap)}); nobody more current is alive, local data is kept`);
      }
    }
    return false;
  }

  private positionRecord(epoch: bigint): PositionRecord {
    const databases: Record<string, { txid: string; postApplyChecksum: string }> = {};
    for (const [name, pos] of this.o.node.posMap()) {
      databases[name] = { txid: hex16(pos.txid), postApplyChecksum: hex16(pos.postApplyChecksum) };
    }
    return { nodeID: formatNodeID(this.o.node.nodeID), hostname: this.o.node.hostname, epoch, databases };
  }

  // ---- primary ----

  private async servePrimary(lease: Lease, signal: AbortSignal): Promise<StepDown> {
    const { leaser, node } = this.o;
    this.currentLease = lease;
    const term = new AbortController();
    const stop = (): void => term.abort();
    signal.addEventListener('abort', stop, { once: true });
    let ended: StepDown | undefined;
    const end = (why: StepDown): void => {
      ended ??= why;
      term.abort();
    };
    this.endTerm = end;
    try {
      if ((await leaser.clusterID(signal)) === '') {
        let id = node.clusterID();
        if (id === '') {
          id = generateClusterID();
          node.adoptClusterID(id);
        }
        await leaser.setClusterID(id, signal);
      }
      node.becomePrimary(lease.epoch, {
        handoff: (nodeID, sig) => this.handoff(lease, nodeID, sig),
        promote: async () => {},
        deposed: (epoch) => end({ reason: `a replica has seen a newer epoch ${epoch}`, handedOff: false, demoted: true }),
      }, `acquired the lease (epoch ${lease.epoch})`);
      this.tellStatus(lease);
      this.lastFailure = undefined;
      this.o.log(`lease: primary (epoch ${lease.epoch}, lease ${lease.id === '' ? 'static' : lease.id})`);
      this.o.onRoleChange?.('primary', 'acquired');
      await this.publishPositions(lease, signal);

      if (lease.deadline - monotonicNow() > NO_DEADLINE_MS) {
        await new Promise<void>((resolve) => (term.signal.aborted ? resolve() : term.signal.addEventListener('abort', () => resolve(), { once: true })));
      } else {
        await this.renewLoop(lease, term.signal, end);
      }
      return ended ?? { reason: 'shutting down', handedOff: false, demoted: false };
    } finally {
      signal.removeEventListener('abort', stop);
      this.currentLease = undefined;
      this.endTerm = undefined;
      this.handingOff = false;
      const why = ended ?? { reason: 'shutting down', handedOff: false, demoted: false };
      node.becomeReplica(this.replicaActions(), `stepped down: ${why.reason}`);
      this.tellStatus(null);
      this.o.log(`lease: stepped down: ${why.reason}`);
      this.o.onRoleChange?.('replica', why.reason);
      // A handed-off lease belongs to the new primary now: closing it would end its term.
      if (!why.handedOff) await lease.close().catch((err: unknown) => this.o.log(`lease: release failed: ${err instanceof Error ? err.message : String(err)}`));
    }
  }

  /**
   * Renews until the term ends: every TTL/2 on Consul (as LiteFS), every
   * TTL/3 on etcd (its keepalive advice); a failed renewal is retried until
   * the deadline.
   */
  private async renewLoop(lease: Lease, signal: AbortSignal, end: (why: StepDown) => void): Promise<void> {
    const interval = Math.max(100, Math.floor(lease.ttlMs / (this.o.leaser.type === 'consul' ? 2 : 3)));
    while (!signal.aborted) {
      await sleep(interval, signal);
      if (signal.aborted) return;
      for (;;) {
        try {
          await lease.renew(AbortSignal.any([signal, AbortSignal.timeout(Math.ceil(Math.max(100, lease.deadline - monotonicNow())))]));
          this.tellStatus(lease);
          this.lastFailure = undefined;
          void this.publishPositions(lease, signal);
          break;
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof LeaseExpiredError) return end({ reason: `lease lost: ${err.message}`, handedOff: false, demoted: true });
          const left = lease.deadline - monotonicNow();
          if (left <= 0) return end({ reason: `renewal failed until the deadline: ${err instanceof Error ? err.message : String(err)}`, handedOff: false, demoted: true });
          this.failure(`lease: renewal failed (${err instanceof Error ? err.message : String(err)}); retrying, ${Math.round(left)} ms left`);
          await sleep(Math.min(250, left), signal);
        }
      }
    }
  }

  /** The positions record beside the lease key; best effort (a failure is logged, the term goes on). */
  private async publishPositions(lease: Lease, signal: AbortSignal): Promise<void> {
    try {
      await this.o.leaser.publishPrimaryPositions(lease, this.positionRecord(lease.epoch), signal);
    } catch (err) {
      if (!signal.aborted && this.o.debug) this.o.log(`lease: publishing positions failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * POST /handoff (ref §7.3 processHandoff): the target must be a connected
   * replica. Writes are fenced at once (no commit is acknowledged from now
   * on), the stream sends what is pending and then the Handoff frame; the
   * target takes the lease over with a new acquiring write (a new epoch).
   */
  private async handoff(lease: Lease, nodeID: bigint, signal: AbortSignal): Promise<void> {
    if (this.currentLease !== lease) throw new Error('node is not the primary');
    await lease.renew(signal);
    // From here on no write lock is granted and no commit acknowledged (renewals keep the fence closed).
    this.handingOff = true;
    this.tellStatus(lease);
    let delivered = false;
    try {
      const outcome = this.o.node.replication.handoff(nodeID, lease.id);
      if (outcome === undefined) throw new Error(`target node is not connected: ${formatNodeID(nodeID)}`);
      this.o.log(`lease: handing the lease to ${formatNodeID(nodeID)}`);
      const sent = await Promise.race([outcome, sleep(HANDOFF_SEND_TIMEOUT_MS, signal).then(() => false)]);
      if (!sent) throw new Error(`the Handoff frame could not be delivered to ${formatNodeID(nodeID)}`);
      delivered = true;
    } finally {
      if (!delivered) {
        // Still the primary: writes resume.
        this.handingOff = false;
        this.tellStatus(lease);
      }
    }
    // Stepping down ends every stream; the new primary's acquiring write (a new epoch) makes the change official.
    this.endTerm?.({ reason: `handed off to ${formatNodeID(nodeID)}`, handedOff: true, demoted: true });
  }

  // ---- replica ----

  private replicaActions(): LeaseActions {
    return {
      handoff: async () => {
        throw new Error('node is not the primary');
      },
      promote: (signal) => this.promote(signal),
      deposed: () => {},
    };
  }

  /** POST /promote on a candidate replica: ask the current primary to hand off to this node. */
  private async promote(signal: AbortSignal): Promise<void> {
    const primary = this.o.node.knownPrimary ?? (await this.primaryInfo(signal));
    if (primary === undefined || primary === null) throw new Error('no primary known');
    const client = new NodeClient(primary.advertiseURL, { nodeID: this.o.node.nodeID, clusterID: () => this.o.node.clusterID() });
    try {
      await client.handoff(this.o.node.nodeID, signal);
    } finally {
      client.close();
    }
  }

  private async followPrimary(primary: PrimaryInfo, signal: AbortSignal): Promise<StreamOutcome> {
    const { node, leaser } = this.o;
    const conn = new AbortController();
    const onAbort = (): void => conn.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const client = new ReplicaClient({
      primaryURL: primary.advertiseURL,
      primaryName: primary.hostname,
      nodeID: node.nodeID,
      databases: this.o.databases,
      dataDir: this.o.dataDir,
      reconnectDelayMs: this.o.reconnectDelayMs,
      positions: () => node.posMap(),
      clusterID: () => node.clusterID(),
      adoptClusterID: (id) => node.adoptClusterID(id),
      epoch: () => node.epoch(),
      checkPeer: (peer) => this.checkEpoch(peer),
      // A refused apply may mean our idea of a position is stale: read them again from the data directory.
      applier: new FuseApplier(this.o.channel, () => node.reloadPositions()),
      onReady: () => node.markReady(),
      onPrimaryTimestamp: (ms) => {
        node.setPrimaryTimestamp(ms);
        this.tellStatus(null);
      },
      onConnected: () => {
        this.lastFailure = undefined;
        node.setPrimary(primary);
        this.tellStatus(null);
        this.o.onRoleChange?.('replica', `following ${primary.hostname}`);
      },
      onDisconnected: (reason) => {
        if (this.o.debug) this.o.log(`replica: disconnected: ${reason}`);
        node.setPrimary(null);
        this.tellStatus(null);
      },
      log: this.o.log,
    });
    // The lease store names another primary (or none): leave this stream.
    const watch = leaser.type === 'static' ? Promise.resolve() : this.watchPrimary(primary, conn);
    try {
      return await client.connect(conn.signal);
    } finally {
      conn.abort();
      client.close();
      await watch;
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Polls the lease store while following: a different or missing primary ends the stream. */
  private async watchPrimary(primary: PrimaryInfo, conn: AbortController): Promise<void> {
    const every = Math.max(200, Math.floor(this.leaseTTLms() / 3));
    while (!conn.signal.aborted) {
      await sleep(every, conn.signal);
      if (conn.signal.aborted) return;
      try {
        const now = await this.primaryInfo(conn.signal);
        if (now === undefined || now.advertiseURL !== primary.advertiseURL) {
          this.o.log(`replica: the lease store ${now === undefined ? 'has no primary' : `names ${now.hostname}`}; leaving ${primary.hostname}`);
          conn.abort();
          return;
        }
      } catch {
        // The store is unreachable: keep following what we have (the stream says whether the primary lives).
      }
    }
  }

  private leaseTTLms(): number {
    const ttl = (this.o.leaser as { ttlMs?: number }).ttlMs;
    return typeof ttl === 'number' && ttl > 0 ? ttl : 10_000;
  }

  /** ARCHITECTURE §3.2: never take data from an older term than one already seen. */
  private checkEpoch(peer: PeerHeaders): void {
    if (peer.epoch === undefined) return;
    const seen = this.o.node.epochs.value;
    if (peer.epoch < seen) throw new Error(`stale primary: its epoch ${peer.epoch} is older than ${seen}, already seen here`);
    this.o.node.epochs.observe(peer.epoch);
  }

  // ---- FUSE thread ----

  /**
   * Role, primary, clock and write deadline for the FUSE thread (during a
   * handoff the deadline is now: the fence is closed). The deadline is sent
   * on the clock both threads share: performance.timeOrigin + performance.now().
   */
  private tellStatus(lease: Lease | null): void {
    const node = this.o.node;
    let writeDeadline: number | null = null;
    if (lease !== null) {
      const left = this.handingOff ? 0 : lease.deadline - monotonicNow();
      writeDeadline = left > NO_DEADLINE_MS ? null : performance.timeOrigin + performance.now() + left;
    }
    this.o.channel.tell({
      type: 'status',
      role: node.role,
      primaryHostname: node.role === 'primary' ? '' : (node.knownPrimary?.hostname ?? ''),
      primaryTimestamp: node.role === 'primary' ? 0 : node.lastPrimaryTimestamp,
      writeDeadline,
    });
  }

  private failure(line: string): void {
    if (line === this.lastFailure) return;
    this.lastFailure = line;
    this.o.log(line);
  }
}

function hex16(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}

function describeGap(gap: Gap): string {
  return `${gap.db}: local TXID ${gap.local}, theirs ${gap.theirs}`;
}
