/**
 * What the node API server needs from the rest of the daemon. The store and
 * the node conductor implement these later; tests use in-memory fakes. The
 * server itself owns only HTTP: routing, parameters, status codes, the exact
 * header layout and the /stream protocol loop.
 */
import type { HaltLock } from './halt-lock.js';
import type { LiteFSEvent } from './events.js';
import type { Pos } from './posmap.js';

/** The facts behind GET /info. */
export interface NodeInfo {
  /** `LFSC` + 16 hex digits, or '' while unknown (then left out of the JSON and the headers). */
  readonly clusterID: string;
  readonly isPrimary: boolean;
  readonly candidate: boolean;
  /** The data directory. */
  readonly path: string;
  /** This node's hostname when primary, the known primary's on a replica, else ''. */
  readonly primaryHostname: string;
}

/**
 * A failure whose HTTP status the implementation chooses; the message becomes
 * the plain-text body (plus `\n`), as Go's http.Error writes it.
 */
export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.status = status;
  }
}

/**
 * The node is not (or no longer) primary. LiteFS reports this as 503 with its
 * cancelled context's text, `context canceled`, which we keep as the default.
 */
export class NotPrimaryError extends ApiError {
  constructor(message = 'context canceled') {
    super(503, message);
  }
}

/**
 * The database does not exist. The server answers 404 with LiteFS's text for
 * the endpoint (`database not found`, or `database not found: "name"`).
 */
export class DatabaseNotFoundError extends ApiError {
  constructor(message = 'database not found') {
    super(404, message);
  }
}

/** A subscription to /events; `next` resolves undefined when the subscription ends or `signal` aborts. */
export interface EventSubscription {
  next(signal: AbortSignal): Promise<LiteFSEvent | undefined>;
  close(): void;
}

/** Something the replica must be sent: databases that changed, and possibly a handoff. */
export interface ChangeNotice {
  readonly dirty: ReadonlySet<string>;
  /** Set when the primary hands its lease to this replica (ref §9.5 e). */
  readonly handoffLeaseID?: string;
}

/**
 * Change notifications for one /stream client. `next` resolves with what
 * changed since the last call (at once if something is pending), or undefined
 * if `signal` aborted first; an aborted call must not lose pending changes.
 */
export interface ChangeSubscription {
  next(signal: AbortSignal): Promise<ChangeNotice | undefined>;
  /** The Handoff frame was written to this replica's stream (the old primary may step down now). */
  handoffSent?(): void;
  close(): void;
}

/** An incremental LTX file opened for streaming, already fully verified by the store. */
export interface LTXFileStream {
  readonly preApplyChecksum: bigint;
  /** (max TXID, post-apply checksum): where the replica stands after applying it. */
  readonly pos: Pos;
  /**
   * The file's bytes. Each piece becomes one chunk (split at 65535); Go copies
   * with a 32 KiB buffer, so yielding 32 KiB pieces reproduces its chunking.
   */
  readonly body: AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

/** The primary's side of replication, as the /stream loop uses it (ref §9.5). */
export interface ReplicationSource {
  /** A signal that aborts when this node stops being primary; undefined if it is not primary now. */
  primarySignal(): AbortSignal | undefined;
  /** Subscribe before the position map is read so no commit is missed. */
  subscribeChanges(replicaID: bigint): ChangeSubscription;
  databaseNames(): string[];
  /** undefined: no such database (the replica gets a DropDB frame). */
  position(name: string): Pos | undefined;
  /** Backup high-water mark sent after each incremental LTX frame. */
  hwm(name: string): bigint;
  /** `ltx/<txid>-<txid>.ltx`, verified; undefined if it no longer exists (a snapshot is sent instead). */
  openLTXFile(name: string, txid: bigint): Promise<LTXFileStream | undefined>;
  /**
   * Writes a snapshot LTX of the database through `write`, one call per
   * encoder write (header, LZ4 frame header, block size, block, end mark and
   * checksum, trailer: Go's chunk layout [100, 7, 4, N, 8, 16]). Returns the
   * snapshot's position.
   */
  writeSnapshot(name: string, write: (bytes: Uint8Array) => Promise<void>, signal: AbortSignal): Promise<Pos>;
}

/** Everything the node API serves. */
export interface ApiNode {
  /** This node's id; LiteFS draws a new random one at every start. */
  readonly nodeID: bigint;
  clusterID(): string;
  /** Current primary epoch (ARCHITECTURE §3.2), sent as `Litefs-Epoch` on /stream; undefined if unknown. */
  epoch?(): bigint | undefined;
  /** A replica's `Litefs-Epoch` was newer than ours: this node was deposed (it steps down). */
  onNewerEpoch?(epoch: bigint): void;
  info(): NodeInfo;
  /** The raw database file, one piece per page (Go writes each page as its own HTTP/1.1 chunk); undefined if missing. */
  exportDatabase(name: string, signal: AbortSignal): AsyncIterable<Uint8Array> | undefined;
  /** Creates the database if needed and replaces it with the SQLite image in `body` (primary only). */
  importDatabase(name: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void>;
  /** Acquires the HALT lock for a replica (ref §8.2); `requester` is its `Litefs-Id` (0 if none). */
  acquireHaltLock(name: string, lockID: bigint, signal: AbortSignal, requester: bigint): Promise<HaltLock>;
  /** Releases a HALT lock; throws DatabaseNotFoundError if the database is unknown. */
  releaseHaltLock(name: string, lockID: bigint): Promise<void>;
  /** Writes and applies a forwarded LTX file (POST /tx) under HALT lock `lockID` (decimal, as sent). */
  applyForwardedTx(name: string, lockID: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal): Promise<void>;
  /**
   * litefs-ts: holds the HALT lock of `name` for a local program (POST
   * /litefs-ts/halt, `litefs run -with-halt-lock-on`); resolves once held,
   * with the function that releases it. Absent: 404.
   */
  holdHaltLock?(name: string, signal: AbortSignal): Promise<() => Promise<void>>;
  /** Hands the lease to a connected replica; errors become 500 `cannot handoff: <message>`. */
  handoff(nodeID: bigint, signal: AbortSignal): Promise<void>;
  /** Asks the current primary to hand off to this node (200 at once if already primary). */
  promote(signal: AbortSignal): Promise<void>;
  subscribeEvents(): EventSubscription;
  readonly replication: ReplicationSource;
}
