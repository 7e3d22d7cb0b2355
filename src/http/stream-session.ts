/**
 * The primary's half of POST /stream once the 200 is out (ref §9.5): send
 * each dirty database's missing transactions (incremental LTX files, or a
 * snapshot when the replica's position is unusable), then Ready once, then a
 * Heartbeat after every idle second, until the replica leaves, the node
 * stops being primary, the server closes, or a handoff is sent.
 */
import type { ChangeNotice, ChangeSubscription, ReplicationSource } from './api.js';
import { CHUNK_TERMINATOR, encodeChunks } from './chunk.js';
import { encodeFrame, type SnapshotReason } from './frames.js';
import type { Pos } from './posmap.js';

/** LiteFS's HeartbeatInterval. */
export const HEARTBEAT_INTERVAL_MS = 1000;

export interface StreamSessionOptions {
  readonly source: ReplicationSource;
  /** Where the replica stands, per database; updated as frames are sent (no acks, as in LiteFS). */
  readonly positions: Map<string, Pos>;
  /** `?filter=` names; empty means every database. */
  readonly filter: ReadonlySet<string>;
  /** Writes bytes to the response; resolves false once the replica is gone. */
  readonly write: (bytes: Uint8Array) => Promise<boolean>;
  /** Aborts when the replica disconnects, the node loses the lease, or the server closes. */
  readonly signal: AbortSignal;
  readonly subscription: ChangeSubscription;
  /** Time allowed per snapshot; 0 = none (LiteFS defaults it to the retention period). */
  readonly snapshotTimeoutMs: number;
  /** The replica asked for SnapshotReason frames (`Litefs-Features: snapshot-reason`); Go replicas never do. */
  readonly snapshotReasons?: boolean;
  readonly now?: () => number;
  readonly onFrame?: (db: string, type: string) => void;
}

/** Raised inside the session when the replica went away mid-write; ends the loop quietly. */
class ReplicaGoneError extends Error {}

export class StreamSession {
  private readonly o: StreamSessionOptions;

  constructor(options: StreamSessionOptions) {
    this.o = options;
  }

  /**
   * Runs until the stream ends. Resolves normally on a clean end (replica
   * gone, primary lost, server closing, handoff sent); rejects if sending
   * failed (the caller resets the stream so the replica reconnects).
   */
  async run(): Promise<void> {
    const { source, positions, filter, signal } = this.o;
    let dirty = new Set<string>([...positions.keys(), ...source.databaseNames()]);
    let readySent = false;
    let handoffLeaseID: string | undefined;
    try {
      for (;;) {
        if (filter.size > 0) dirty = new Set([...dirty].filter((name) => filter.has(name)));
        for (const name of dirty) {
          if (signal.aborted) return;
          await this.streamDB(name);
        }

        const heartbeat = !readySent || dirty.size === 0;
        if (!readySent) {
          await this.send(encodeFrame({ type: 'ready' }));
          readySent = true;
        }
        if (heartbeat) await this.send(encodeFrame({ type: 'heartbeat', timestamp: BigInt(this.now()) }));
        if (handoffLeaseID !== undefined) {
          await this.send(encodeFrame({ type: 'handoff', leaseID: handoffLeaseID }));
          this.o.subscription.handoffSent?.();
          return;
        }

        const notice = await this.waitForChange();
        if (signal.aborted) return;
        dirty = new Set(notice?.dirty ?? []);
        if (notice?.handoffLeaseID !== undefined) handoffLeaseID = notice.handoffLeaseID;
      }
    } catch (err) {
      if (err instanceof ReplicaGoneError) return;
      throw err;
    }
  }

  /** Best effort, as LiteFS does on every exit: tell the replica the stream ends cleanly. */
  async sendEnd(): Promise<void> {
    await this.o.write(encodeFrame({ type: 'end' }));
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private async send(bytes: Uint8Array): Promise<void> {
    if (!(await this.o.write(bytes))) throw new ReplicaGoneError();
  }

  /** The next change notice, or undefined after an idle heartbeat interval (or on abort). */
  private async waitForChange(): Promise<ChangeNotice | undefined> {
    if (this.o.signal.aborted) return undefined;
    const tick = new AbortController();
    const timer = setTimeout(() => tick.abort(), HEARTBEAT_INTERVAL_MS);
    const onAbort = (): void => tick.abort();
    this.o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.o.subscription.next(tick.signal);
    } finally {
      clearTimeout(timer);
      this.o.signal.removeEventListener('abort', onAbort);
    }
  }

  private async streamDB(name: string): Promise<void> {
    const { source, positions } = this.o;
    if (source.position(name) === undefined) {
      await this.send(encodeFrame({ type: 'dropDB', name }));
      this.o.onFrame?.(name, 'dropDB');
      positions.delete(name);
      return;
    }
    for (;;) {
      const dbPos = source.position(name);
      if (dbPos === undefined) return; // dropped while we were sending
      let replica = positions.get(name) ?? ZERO;
      // Ahead of us (an old primary's unreplicated commits) or diverged at
      // the same TXID: treat the replica as empty so it gets a snapshot.
      let reason: SnapshotReason = 'empty';
      if (replica.txid > dbPos.txid) {
        replica = ZERO;
        reason = 'ahead';
      } else if (replica.txid === dbPos.txid && replica.postApplyChecksum !== dbPos.postApplyChecksum) {
        replica = ZERO;
        reason = 'diverged';
      }
      if (replica.txid >= dbPos.txid) return;
      positions.set(name, await this.streamLTX(name, replica.txid + 1n, replica.postApplyChecksum, reason));
    }
  }

  /** `fromEmpty` is why the replica counts as empty when `txid` is 1. */
  private async streamLTX(name: string, txid: bigint, preApplyChecksum: bigint, fromEmpty: SnapshotReason): Promise<Pos> {
    // From TXID 1 always snapshot: the replica may have written those files itself (write forwarding).
    if (txid === 1n) return this.streamSnapshot(name, fromEmpty);
    const file = await this.o.source.openLTXFile(name, txid);
    // Gone (retention) or unusable: the replica holds an older state of this history.
    if (file === undefined) return this.streamSnapshot(name, 'behind');
    try {
      if (file.preApplyChecksum !== preApplyChecksum) return await this.streamSnapshot(name, 'diverged');
      await this.send(encodeFrame({ type: 'ltx', name, size: 0n }));
      for await (const piece of file.body) {
        for (const chunk of encodeChunks(piece)) await this.send(chunk);
      }
      await this.send(CHUNK_TERMINATOR);
      this.o.onFrame?.(name, 'ltx');
      await this.send(encodeFrame({ type: 'hwm', txid: this.o.source.hwm(name), name }));
      return file.pos;
    } finally {
      await file.close();
    }
  }

  private async streamSnapshot(name: string, reason: SnapshotReason): Promise<Pos> {
    const signals = [this.o.signal];
    if (this.o.snapshotTimeoutMs > 0) signals.push(AbortSignal.timeout(this.o.snapshotTimeoutMs));
    if (this.o.snapshotReasons === true) {
      await this.send(encodeFrame({ type: 'snapshotReason', name, reason }));
      this.o.onFrame?.(name, 'snapshotReason');
    }
    await this.send(encodeFrame({ type: 'ltx', name, size: 0n }));
    const pos = await this.o.source.writeSnapshot(
      name,
      async (bytes) => {
        for (const chunk of encodeChunks(bytes)) await this.send(chunk);
      },
      AbortSignal.any(signals),
    );
    await this.send(CHUNK_TERMINATOR);
    this.o.onFrame?.(name, 'ltx:snapshot');
    return pos;
  }
}

const ZERO: Pos = { txid: 0n, postApplyChecksum: 0n };
