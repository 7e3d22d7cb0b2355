/**
 * The replica side of replication (ref §7.3 monitorLeaseAsReplica, §9.6):
 * follow a primary over POST /stream and hand each verified LTX file to the
 * FUSE thread for applying.
 *
 * Differences from LiteFS, on purpose:
 * - the body is received into `<data>/tmp/` and verified with no lock held;
 *   only the apply takes the database's locks (ARCHITECTURE §3.4);
 * - a snapshot that would replace local data not provably a prefix of the
 *   primary's history is applied with a quarantine request (§3.1), decided
 *   from the SnapshotReason frame we ask for with `Litefs-Features`;
 * - a failed apply drops the stream and reconnects with the real positions
 *   (LiteFS exits the process with code 99);
 * - a stream that sends nothing, not even heartbeats, is dropped;
 * - the next file is received while the one before it is applied
 *   (ApplyPipeline); Ready, heartbeat and HWM frames act in stream order,
 *   after the files before them are applied.
 */
import { mkdirSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiClientError, NodeClient, type PeerHeaders, type ReplicationStream } from '../http/client.js';
import type { LTXFrame } from '../http/frame-reader.js';
import { SNAPSHOT_REASON_FEATURE } from '../http/frames.js';
import { formatNodeID } from '../http/node-id.js';
import type { Pos, PosMap } from '../http/posmap.js';
import { HEARTBEAT_INTERVAL_MS } from '../http/stream-session.js';
import { formatFilename, formatPos, isSnapshot, type Header } from '../ltx/index.js';
import { RECEIVED_SUFFIX, databaseDir, isValidDatabaseName } from '../store/db.js';
import type { QuarantineRequest } from '../store/messages.js';
import { isValidClusterID } from './cluster-id.js';
import { ApplyPipeline, DEFAULT_PIPELINE_LIMITS, type PipelineLimits, type QueuedFile } from './apply-pipeline.js';
import { LTXReceiver, type ReceivedLTX } from './ltx-receiver.js';
import { quarantineReason } from './quarantine-rule.js';

/** Applies a received LTX file; the FUSE thread's `apply` command behind it. */
export interface LTXApplier {
  /**
   * Resolves once applied (the 'tx' event has updated `positions()`); rejects on a position mismatch or failure.
   * Several `paths` are applied in order as one apply (ApplyCommand); `syncDatabase` false leaves the
   * database file's fsync to the group (ApplyCommand.syncDatabase).
   */
  apply(db: string, paths: readonly string[], quarantine: QuarantineRequest | null, syncDatabase: boolean): Promise<void>;
}

export interface ReplicaClientOptions {
  /** The primary's API URL (static lease: its `lease.advertise-url`). */
  readonly primaryURL: string;
  /** This node's id, sent as `Litefs-Id`. */
  readonly nodeID: bigint;
  /** `lease.databases`: replicate only these; empty or absent = all. */
  readonly databases?: readonly string[];
  /** `data.dir`; bodies are received into `<dataDir>/tmp/`. */
  readonly dataDir: string;
  /** `lease.reconnect-delay`; default 1 s. */
  readonly reconnectDelayMs?: number;
  /** Drop a stream that sends nothing for this long; default 10 heartbeat intervals. */
  readonly idleTimeoutMs?: number;
  /** Bounds of the files received ahead of the apply; default 16 files / 64 MiB. */
  readonly pipeline?: PipelineLimits;
  /** Local positions of every database (kept by the node from the store's 'tx' events). */
  positions(): PosMap;
  /** This node's cluster id, '' if none yet. */
  clusterID(): string;
  /** Adopts and persists the primary's cluster id (called only while the local one is empty). */
  adoptClusterID(id: string): void | Promise<void>;
  /** Highest epoch seen, sent as `Litefs-Epoch` (ARCHITECTURE §3.2). */
  epoch?(): bigint | undefined;
  /** Called with the primary's identity headers before any frame is read; throws to refuse the stream (an older epoch). */
  checkPeer?(peer: PeerHeaders): void;
  readonly applier: LTXApplier;
  /** Named in quarantine reports; default the primary URL. */
  readonly primaryName?: string;
  /** The initial catch-up is done (first Ready frame of this process). */
  onReady?(): void;
  /**
   * Primary's clock in ms: heartbeat values, and once ready the applied LTX
   * files' timestamps (at most one per `timestampIntervalMs`, the latest).
   */
  onPrimaryTimestamp?(ms: number): void;
  /** How often applied files' timestamps are told at most; default 50 ms. Heartbeats are told at once. */
  readonly timestampIntervalMs?: number;
  onHWM?(db: string, txid: bigint): void;
  onConnected?(peer: PeerHeaders): void;
  onDisconnected?(reason: string): void;
  log?(line: string): void;
}

/** How one connection ended. */
export type StreamOutcome =
  /** End frame, or EOF at a frame boundary. */
  | { readonly kind: 'end'; readonly reason: string }
  /** The primary handed its lease to this node (ref §7.3 step 4). */
  | { readonly kind: 'handoff'; readonly leaseID: string }
  | { readonly kind: 'error'; readonly error: Error }
  /** The caller's signal aborted. */
  | { readonly kind: 'aborted' };

export class ClusterIDMismatchError extends Error {
  override readonly name = 'ClusterIDMismatchError';
}

/** An incremental LTX file that does not continue the local position. */
export class PositionMismatchError extends Error {
  override readonly name = 'PositionMismatchError';
}

export class IdleStreamError extends Error {
  override readonly name = 'IdleStreamError';
}

/** A frame naming a database that cannot be a file name here (a path, `..`): never written anywhere. */
export class InvalidDatabaseNameError extends Error {
  override readonly name = 'InvalidDatabaseNameError';
}

const DEFAULT_RECONNECT_DELAY_MS = 1000;
const DEFAULT_TIMESTAMP_INTERVAL_MS = 50;
const ZERO_POS: Pos = { txid: 0n, postApplyChecksum: 0n };

export class ReplicaClient {
  private readonly o: ReplicaClientOptions;
  private readonly client: NodeClient;
  private readonly tmpDir: string;
  private readonly reconnectDelayMs: number;
  private readonly idleTimeoutMs: number;
  private readonly limits: PipelineLimits;
  private readonly timestamps: TimestampReporter;
  private ready = false;
  /** The failure last logged; repeats are not logged again until the stream makes progress. */
  private lastFailure: string | undefined;

  constructor(options: ReplicaClientOptions) {
    this.o = options;
    this.client = new NodeClient(options.primaryURL, {
      nodeID: options.nodeID,
      epoch: options.epoch && (() => options.epoch!()),
      features: [SNAPSHOT_REASON_FEATURE],
      // Our primaries refuse another cluster's replica up front (412); Go ones ignore it, so checkClusterID stays.
      clusterID: () => options.clusterID(),
    });
    this.tmpDir = join(options.dataDir, 'tmp');
    this.reconnectDelayMs = options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 10 * HEARTBEAT_INTERVAL_MS;
    this.limits = options.pipeline ?? DEFAULT_PIPELINE_LIMITS;
    this.timestamps = new TimestampReporter(options.timestampIntervalMs ?? DEFAULT_TIMESTAMP_INTERVAL_MS, (ms) => options.onPrimaryTimestamp?.(ms));
  }

  /** True once a Ready frame arrived (then it stays true for this process). */
  get isReady(): boolean {
    return this.ready;
  }

  /**
   * Follows the primary until `signal` aborts: one connection after another,
   * `reconnectDelayMs` apart. A handoff is only logged for now (leases that
   * can take it over come later).
   */
  async run(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted) {
        const outcome = await this.connect(signal);
        if (outcome.kind === 'aborted') return;
        if (outcome.kind === 'handoff') this.log(`replica: primary ${this.o.primaryURL} handed its lease to this node (lease id ${outcome.leaseID}); not taken over: no lease backend here`);
        else if (outcome.kind === 'end') this.failure(`stream from ${this.o.primaryURL} ended: ${outcome.reason}`);
        else this.failure(`stream from ${this.o.primaryURL} failed: ${describe(outcome.error)}`);
        await sleep(this.reconnectDelayMs, signal);
      }
    } finally {
      this.client.close();
    }
  }

  /** Closes the HTTP/2 session to the primary (after connect(); run() does it itself). */
  close(): void {
    this.client.close();
  }

  /** One connection to the primary, until it ends, fails or `signal` aborts (ref §7.3 monitorLeaseAsReplica). */
  async connect(signal: AbortSignal): Promise<StreamOutcome> {
    if (signal.aborted) return { kind: 'aborted' };
    // Aborted by the caller, or by the watchdog when the primary goes quiet.
    const conn = new AbortController();
    const onAbort = (): void => conn.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const watchdog = new IdleWatchdog(this.idleTimeoutMs, () =>
      conn.abort(new IdleStreamError(`no data from the primary for ${this.idleTimeoutMs} ms`)),
    );
    let stream: ReplicationStream | undefined;
    let connected = false;
    let outcome: StreamOutcome;
    try {
      stream = await this.client.stream(this.o.positions(), this.o.databases ?? [], conn.signal);
      const s = stream;
      conn.signal.addEventListener('abort', () => s.close(), { once: true });
      watchdog.touch();
      await this.checkClusterID(stream.peer);
      this.o.checkPeer?.(stream.peer);
      connected = true;
      this.o.onConnected?.(stream.peer);
      if (this.lastFailure === undefined) {
        this.log(`replica: connected to primary ${this.o.primaryURL} (id ${stream.peer.nodeID === undefined ? '?' : formatNodeID(stream.peer.nodeID)})`);
      }
      outcome = await this.readFrames(stream, watchdog, conn);
    } catch (err) {
      if (signal.aborted) outcome = { kind: 'aborted' };
      else if (conn.signal.aborted && conn.signal.reason instanceof Error) outcome = { kind: 'error', error: conn.signal.reason };
      else outcome = { kind: 'error', error: err instanceof Error ? err : new Error(String(err)) };
    } finally {
      watchdog.stop();
      signal.removeEventListener('abort', onAbort);
      stream?.close();
    }
    // A failed connection may have left the HTTP/2 session wedged: start the next one afresh.
    if (outcome.kind === 'error') this.client.close();
    if (connected) this.o.onDisconnected?.(outcomeText(outcome));
    return outcome;
  }

  /**
   * The frame loop (ref §7.3): returns on End, EOF or Handoff; throws on
   * anything malformed. Files are received while earlier ones are applied
   * (ApplyPipeline); every other frame acts only after the files before it.
   */
  private async readFrames(stream: ReplicationStream, watchdog: IdleWatchdog, conn: AbortController): Promise<StreamOutcome> {
    const signal = conn.signal;
    // A failed apply ends the connection: the frame loop stops wherever it waits.
    const queue = new ApplyPipeline(this.limits, (err) => conn.abort(err));
    const receiver = new LTXReceiver(this.tmpDir);
    try {
      const outcome = await this.readFramesInto(queue, receiver, stream, watchdog, signal);
      // End, EOF and Handoff: what arrived before them is applied first.
      await this.waitFor(queue.drain(signal), watchdog);
      return outcome;
    } finally {
      // Anything not applied by now never will be on this stream.
      await queue.close();
      await receiver.close();
      // The last applied file's timestamp, if held back, is told before connect() returns.
      this.timestamps.flush();
    }
  }

  private async readFramesInto(
    queue: ApplyPipeline,
    receiver: LTXReceiver,
    stream: ReplicationStream,
    watchdog: IdleWatchdog,
    signal: AbortSignal,
  ): Promise<StreamOutcome> {
    // SnapshotReason frames, by database, waiting for the snapshot they announce.
    const reasons = new Map<string, string>();
    for (;;) {
      const frame = await stream.frames.next();
      // Closing the stream on abort can look like a clean EOF: the abort decides.
      signal.throwIfAborted();
      watchdog.touch();
      if (frame === undefined) return { kind: 'end', reason: 'the primary closed the stream' };
      switch (frame.type) {
        case 'ltx': {
          const reason = reasons.get(frame.name);
          reasons.delete(frame.name);
          await this.waitFor(queue.waitForRoom(signal), watchdog);
          await this.processLTX(queue, receiver, frame, reason, watchdog, signal);
          signal.throwIfAborted();
          break;
        }
        case 'snapshotReason':
          reasons.set(frame.name, frame.reason);
          break;
        case 'ready':
          queue.push({
            kind: 'call',
            run: () => {
              this.progress();
              if (!this.ready) {
                this.ready = true;
                this.o.onReady?.();
              }
            },
          });
          break;
        case 'end':
          return { kind: 'end', reason: 'the primary sent End' };
        case 'dropDB':
          // Deprecated in LiteFS and ignored by its replicas.
          this.log(`replica: ignoring deprecated DropDB frame for ${frame.name}`);
          break;
        case 'handoff':
          return { kind: 'handoff', leaseID: frame.leaseID };
        case 'hwm': {
          const { name, txid } = frame;
          queue.push({ kind: 'call', run: () => this.o.onHWM?.(name, txid) });
          break;
        }
        case 'heartbeat': {
          // The primary's clock now, so only once we hold everything it sent before.
          const ms = Number(frame.timestamp);
          queue.push({ kind: 'call', run: () => this.timestamps.now(ms) });
          break;
        }
      }
    }
  }

  /** Waits for the apply queue; the primary waits too (flow control), which is not idleness. */
  private async waitFor(p: Promise<void>, watchdog: IdleWatchdog): Promise<void> {
    watchdog.pause();
    try {
      await p;
    } finally {
      watchdog.resume();
    }
  }

  /**
   * Ref §9.6, reordered: receive and verify without locks, then queue the
   * apply. An incremental file must continue the position the queue will
   * leave; a snapshot, or a file that does not continue it, waits until the
   * queue is empty and is judged against the local position, as before.
   */
  private async processLTX(
    queue: ApplyPipeline,
    receiver: LTXReceiver,
    frame: LTXFrame,
    reason: string | undefined,
    watchdog: IdleWatchdog,
    signal: AbortSignal,
  ): Promise<void> {
    const db = frame.name;
    if (!isValidDatabaseName(db)) throw new InvalidDatabaseNameError(`LTX frame for an invalid database name ${JSON.stringify(db)}`);
    const received = await receiver.receive(frame.body, {
      // Refuse a file that cannot continue the local position before the rest arrives
      // (only with nothing queued for the database: otherwise the queue's end decides).
      onHeader: (h) => {
        if (!isSnapshot(h) && h.nodeID !== this.o.nodeID && queue.expected(db) === undefined) this.checkContinues(db, h, undefined);
      },
      onData: () => watchdog.touch(),
    });
    let handedOver = false;
    let path = received.path;
    try {
      const { header, trailer } = received;
      const pos: Pos = { txid: header.maxTXID, postApplyChecksum: trailer.postApplyChecksum };
      const step = (quarantine: QuarantineRequest | null): QueuedFile => {
        // Applied together with the ones queued behind it (store/apply.ts applyLTXFiles).
        const batchable = !isSnapshot(header) && header.commit > 0 && quarantine === null;
        if (batchable) path = this.placeInLTXDir(db, header, received);
        const file = path;
        return {
          kind: 'file',
          db,
          path: file,
          size: received.size,
          pos,
          timestamp: Number(header.timestamp),
          durability: received.durability,
          batchable,
          run: async (more) => {
            // The database fsync is left to the group (see ApplyCommand.syncDatabase).
            await this.o.applier.apply(db, [file, ...more.map((f) => f.path)], quarantine, false);
            this.progress();
            if (this.ready) this.timestamps.soon(more.at(-1)?.timestamp ?? Number(header.timestamp));
          },
        };
      };
      const after = queue.expected(db);
      if (!isSnapshot(header) && after !== undefined) {
        // A repeat of the last queued file: nothing to do.
        if (samePos(after, pos)) return;
        if (continues(after, header)) {
          queue.push(step(null));
          handedOver = true;
          return;
        }
      }
      if (isSnapshot(header) || after !== undefined) await this.waitFor(queue.drain(signal), watchdog);
      const local = this.localPos(db);
      // Already here: our own forwarded write coming back (ref §9.6 step 4), or a repeat.
      if (samePos(local, pos)) return;
      let quarantine: QuarantineRequest | null = null;
      if (isSnapshot(header)) {
        const why = quarantineReason({ local, snapshot: pos, reason });
        if (why !== null) {
          quarantine = { reason: why, primary: this.o.primaryName ?? this.o.primaryURL };
          this.log(`replica: ${db}: snapshot ${formatPos(pos)} replaces local ${formatPos(local)} (${why}); local data goes to quarantine first`);
        }
      } else {
        this.checkContinues(db, header, local);
      }
      queue.push(step(quarantine));
      handedOver = true;
    } finally {
      // The queue owns a file pushed to it; anything else is ours to remove.
      if (!handedOver) {
        received.durability.release();
        await rm(path, { force: true });
      }
    }
  }

  /**
   * Moves an incremental file into its database's `ltx/` folder as
   * `<name>.received` before it is queued (store/db.ts RECEIVED_SUFFIX): its
   * sync then makes the data and the new name durable with one journal
   * commit, off the FUSE thread, and the apply only drops the suffix.
   */
  private placeInLTXDir(db: string, header: Header, received: ReceivedLTX): string {
    const dir = join(databaseDir(this.o.dataDir, db), 'ltx');
    const path = join(dir, formatFilename(header.minTXID, header.maxTXID) + RECEIVED_SUFFIX);
    try {
      renameSync(received.path, path);
    } catch (err) {
      // A database this node has not seen yet.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(dir, { recursive: true });
      renameSync(received.path, path);
    }
    received.durability.movedInto(dir);
    return path;
  }

  /**
   * Throws unless `h` continues the local position. A file that ends at or
   * before it passes too: this node's own writes under a HALT lock come back
   * from the primary after later ones (ref §8.4); the store compares such a
   * file with its own and drops it, or refuses it if they differ.
   */
  private checkContinues(db: string, h: Header, local: Pos | undefined): void {
    const at = local ?? this.localPos(db);
    if (continues(at, h) || (!isSnapshot(h) && h.maxTXID <= at.txid)) return;
    throw new PositionMismatchError(
      `${db}: LTX ${h.minTXID}-${h.maxTXID} needs position ${formatPos({ txid: h.minTXID - 1n, postApplyChecksum: h.preApplyChecksum })}, local is ${formatPos(at)}`,
    );
  }

  private localPos(db: string): Pos {
    return this.o.positions().get(db) ?? ZERO_POS;
  }

  /** Ref §7.1: adopt the primary's cluster id if we have none, then require equality. */
  private async checkClusterID(peer: PeerHeaders): Promise<void> {
    const local = this.o.clusterID();
    if (local === '' && peer.clusterID !== '') {
      if (!isValidClusterID(peer.clusterID)) {
        throw new ClusterIDMismatchError(`primary sent an invalid cluster id ${JSON.stringify(peer.clusterID)}; not adopted`);
      }
      await this.o.adoptClusterID(peer.clusterID);
      this.log(`replica: adopted cluster id ${peer.clusterID} from primary ${this.o.primaryURL}`);
      return;
    }
    if (peer.clusterID !== local) {
      throw new ClusterIDMismatchError(
        `refusing to replicate: primary's cluster id ${peer.clusterID || '(none)'} differs from this node's ${local} (another cluster's data must not overwrite ours)`,
      );
    }
  }

  /** Logs a failure unless it is the same as the last one (a down primary must not flood the log). */
  private failure(text: string): void {
    if (text === this.lastFailure) return;
    this.lastFailure = text;
    this.log(`replica: ${text}; reconnecting every ${this.reconnectDelayMs} ms`);
  }

  private progress(): void {
    if (this.lastFailure === undefined) return;
    this.lastFailure = undefined;
    this.log(`replica: replicating from ${this.o.primaryURL} again`);
  }

  private log(line: string): void {
    this.o.log?.(line);
  }
}

/**
 * Tells applied files' timestamps at most once per interval, the latest one
 * (trailing): at 200 commits/s one per transaction meant a status message to
 * the FUSE thread, a wake-up request through the kernel and a `.lag`
 * invalidation per transaction, competing with the applies. The lag read
 * meanwhile is at most the interval too high; heartbeats (1 s apart) set
 * its granularity when the primary is idle anyway.
 */
class TimestampReporter {
  private last = Number.NEGATIVE_INFINITY;
  private pending: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly tell: (ms: number) => void,
  ) {}

  /** An applied file's timestamp: told now, or within the interval. */
  soon(ms: number): void {
    const since = performance.now() - this.last;
    if (since >= this.intervalMs) return this.now(ms);
    this.pending = ms;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.intervalMs - since);
      this.timer.unref();
    }
  }

  /** Told at once (a heartbeat: newer than anything held back). */
  now(ms: number): void {
    this.cancel();
    this.last = performance.now();
    this.tell(ms);
  }

  /** Tells what is held back, if anything. */
  flush(): void {
    const ms = this.pending;
    this.cancel();
    if (ms !== undefined) this.now(ms);
  }

  private cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }
}

/** Aborts a stream that has been silent for `ms`; paused while we are the ones not reading. */
class IdleWatchdog {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly onIdle: () => void,
  ) {
    this.resume();
  }

  touch(): void {
    this.timer?.refresh();
  }

  pause(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    this.pause();
    this.timer = setTimeout(this.onIdle, this.ms);
    this.timer.unref();
  }

  stop(): void {
    this.pause();
  }
}

function samePos(a: Pos, b: Pos): boolean {
  return a.txid === b.txid && a.postApplyChecksum === b.postApplyChecksum;
}

/** True when an incremental file with header `h` applies on top of `at`. */
function continues(at: Pos, h: Header): boolean {
  return at.txid === h.minTXID - 1n && at.postApplyChecksum === h.preApplyChecksum;
}

function describe(err: Error): string {
  if (err instanceof ApiClientError) return `HTTP ${err.status}: ${err.message}`;
  return err.message;
}

function outcomeText(o: StreamOutcome): string {
  switch (o.kind) {
    case 'end':
      return o.reason;
    case 'handoff':
      return 'handoff';
    case 'error':
      return describe(o.error);
    case 'aborted':
      return 'stopped';
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
