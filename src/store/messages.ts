/**
 * Messages between the FUSE thread (which owns the store) and the main
 * thread (ARCHITECTURE §4). The one module both threads import: plain,
 * structured-cloneable objects only.
 */

/** FUSE thread → main thread. */
export type StoreEvent =
  /**
   * A transaction was committed (or applied) and its LTX file written:
   * durable, or in a WAL commit's pending group (ARCHITECTURE §7). Carries the
   * header fields the main thread needs, so it never reads the new file
   * (opening it while the FUSE thread creates the next one slowed both).
   */
  | {
      readonly type: 'tx';
      readonly db: string;
      /** 16 hex digits, as in LTX file names. */
      readonly txid: string;
      /** Post-apply checksum, 16 hex digits. */
      readonly checksum: string;
      /** Pages in the LTX file. */
      readonly pages: number;
      readonly pageSize: number;
      /** Database size in pages after the transaction (0: deleted). */
      readonly commit: number;
      /** The LTX header's timestamp, ms since the epoch. */
      readonly timestamp: number;
      /**
       * A commit's LTX file, byte for byte, when it is small (ltx-writer.ts
       * KEEP_BYTES_MAX): the primary streams it from memory.
       */
      readonly ltx?: Uint8Array;
    }
  /**
   * The store hit an error it cannot report to SQLite (a WAL commit failed
   * after SQLite considered the transaction committed). The daemon must
   * stop; start-up recovery makes the database and its LTX files agree.
   */
  | { readonly type: 'fatal'; readonly db: string; readonly message: string }
  /**
   * Start-up found an anomaly (ARCHITECTURE §3.3) and moved or copied the
   * evidence to `dir` (`<data>/forensic/<db>/<UTC time>/`, with report.json).
   * `rebasedTXID` is set when the database was re-based onto a snapshot LTX
   * `1-<rebasedTXID>` of its current file.
   */
  | {
      readonly type: 'forensic';
      readonly db: string;
      readonly reason: string;
      readonly dir: string;
      /** 16 hex digits, or null when nothing was re-based. */
      readonly rebasedTXID: string | null;
    }
  /**
   * A snapshot replaced local data that was not provably a prefix of the
   * primary's history; the old data is in `dir` (with report.json).
   */
  | { readonly type: 'quarantine'; readonly db: string; readonly reason: string; readonly dir: string }
  /** Groups for the syncer thread (src/node/group-syncer.ts); each answered with a `groupSynced` command. */
  | { readonly type: 'groupSync'; readonly jobs: readonly GroupSyncJob[] }
  | HaltEvent
  | StoreCommandResult;

/**
 * Replica side of write forwarding (ref §8.3, §8.4): what the FUSE thread
 * needs the network for. `lockID` is the `<db>-lock` handle's id, decimal.
 * - `haltRequest`: a SETLKW F_WRLCK on `<db>-lock` waits: acquire the
 *   primary's HALT lock and catch up to its position, then answer with a
 *   `haltGranted` command.
 * - `haltForward`: a transaction under the HALT lock is ready to commit;
 *   its LTX file (at `path`, in `<data>/tmp/`) must reach the primary (POST /tx)
 *   before the commit is acknowledged; answer with `haltForwarded`.
 * - `haltRelease`: the lock was released (unlock, close, cancelled wait):
 *   release it on the primary (DELETE /halt), after any request of the
 *   same lock still in flight.
 */
export type HaltEvent =
  | { readonly type: 'haltRequest'; readonly db: string; readonly lockID: string }
  | { readonly type: 'haltForward'; readonly db: string; readonly lockID: string; readonly path: string; readonly txid: string }
  | { readonly type: 'haltRelease'; readonly db: string; readonly lockID: string };

/**
 * One database's waiting group, made durable off the FUSE thread
 * (store/group-sync.ts syncGroup): the WAL, the LTX files of WAL commits
 * and their folder, then the database file when replica applies wait.
 */
export interface GroupSyncJob {
  readonly db: string;
  /** Matches the job to its `groupSynced` report. */
  readonly gen: number;
  readonly dir: string;
  readonly walPath: string;
  readonly ltxDir: string;
  /** LTX files, oldest first (may be empty). */
  readonly files: readonly string[];
  /** The database file, when replica applies left its pages unsynced. */
  readonly databasePath: string | null;
}

/** Main thread → FUSE thread (src/fs/commands.ts). */
export type StoreCommand =
  | ImportCommand
  | ApplyCommand
  | StatusCommand
  | SyncCommand
  | GroupSyncedCommand
  | TxEventsCommand
  | FlushTxCommand
  | TxBarrierCommand
  | BackupHWMCommand
  | HaltLockCommand
  | HaltUnlockCommand
  | HaltHoldCommand
  | HaltAnswerCommand
  | ImageHoldCommand
  | ImageReleaseCommand;

/**
 * Hold `db`'s read lock set (ref §5.6: SHARED on the database; in WAL mode
 * also READ0..4, so no checkpoint backfills past the position and no WAL
 * restart overwrites a frame) for the main thread, which then copies the
 * database's image from `<data>/dbs/<db>/` (src/node/image-spool.ts) for a
 * snapshot or an export. Taken only at a commit boundary: no transaction
 * may hold the locks that change the database file (rollback mode) or be
 * writing the WAL (WAL mode). Answered `ok` with `image` once held (waiting
 * up to a few seconds for a transaction to end), else `busy` (the main
 * thread retries) or `error`. Held until `imageRelease` with the same
 * `holdID`; SQLite writers meanwhile wait in rollback mode, and only
 * checkpoints wait in WAL mode.
 */
export interface ImageHoldCommand {
  readonly type: 'imageHold';
  readonly id: number;
  readonly db: string;
  /** Chosen by the main thread; names the hold in `imageRelease`. */
  readonly holdID: number;
}

export interface ImageReleaseCommand {
  readonly type: 'imageRelease';
  readonly db: string;
  readonly holdID: number;
}

/** What an `imageHold` captured while it took the locks: the image at `txid`. */
export interface HeldImageFacts {
  /** Position (16 hex digits each). */
  readonly txid: string;
  readonly checksum: string;
  /** 0 while unknown (a database with no page yet). */
  readonly pageSize: number;
  /** Size in pages (0 for a deleted database). */
  readonly pageCount: number;
  /**
   * WAL mode: pgno → byte offset in the WAL of the frame (its 24-byte header
   * first) holding that page's committed version; empty in rollback mode.
   */
  readonly walFrames: ReadonlyMap<number, number>;
}

/**
 * Primary: take `db`'s write lock set on behalf of a replica's HALT lock
 * `lockID` (decimal; ref §8.2). Answered `ok` with the position the
 * replica must reach (`pos`), `busy` while SQLite transactions hold the
 * locks (the main thread retries), or `error`. The same `lockID` again
 * answers `ok` with the position at once (a retried request). The set stays
 * held, refusing every local SQLite lock (EAGAIN), until `haltUnlock`.
 */
export interface HaltLockCommand {
  readonly type: 'haltLock';
  readonly id: number;
  readonly db: string;
  readonly lockID: string;
}

/**
 * Replica: take the primary's HALT lock `lockID` on `db` for a local program
 * that asked through the node API (`litefs run -with-halt-lock-on`), as a
 * lock on `<db>-lock` would (`haltHold`, answered once held or refused), or
 * release it (`haltDrop`, answered `ok`). On a primary both answer `ok` at
 * once: its own writes need no lock.
 */
export interface HaltHoldCommand {
  readonly type: 'haltHold' | 'haltDrop';
  readonly id: number;
  readonly db: string;
  readonly lockID: string;
}

/** Primary: release the HALT lock `lockID` of `db` if it is held; always answered `ok`. */
export interface HaltUnlockCommand {
  readonly type: 'haltUnlock';
  readonly id: number;
  readonly db: string;
  readonly lockID: string;
}

/**
 * Replica: the answer to a HaltEvent. `haltGranted`: the HALT lock is held on
 * the primary and this node is at its position (`ok`), or it could not be
 * had (`message`). `haltForwarded`: the primary applied the transaction
 * `txid` (`ok`) or refused it.
 */
export interface HaltAnswerCommand {
  readonly type: 'haltGranted' | 'haltForwarded';
  readonly db: string;
  readonly lockID: string;
  readonly txid?: string;
  readonly ok: boolean;
  readonly message: string;
}

/**
 * Whether every commit's `tx` event is sent at once (`prompt`, the default)
 * or commits are sent in windows closed by `flushTx` (fs/event-outbox.ts):
 * the main thread asks for prompt events while a replica streams, an
 * /events subscriber listens or this node is a replica.
 */
export interface TxEventsCommand {
  readonly type: 'txEvents';
  readonly prompt: boolean;
}

/**
 * The backup holds `db` up to `txid` (16 hex digits: its high-water mark):
 * retention by age keeps the files above it (store/retention.ts). null: no
 * constraint (no backup, or this node stopped being the primary that uploads).
 */
export interface BackupHWMCommand {
  readonly type: 'backupHWM';
  readonly db: string;
  readonly txid: string | null;
}

/** Sends the `tx` events held back since the last one sent (fs/event-outbox.ts). */
export interface FlushTxCommand {
  readonly type: 'flushTx';
}

/**
 * Answers (`ok`, no inodes) once every commit so far has gone out as a `tx`
 * event, held ones included, without closing the window: the result comes
 * after them on the same port, so the main thread then knows each
 * database's position exactly (the proxy's `__txid` cookie after a write).
 */
export interface TxBarrierCommand {
  readonly type: 'txBarrier';
  readonly id: number;
}

/**
 * Starts the group sync of every waiting group: LTX files of WAL commits
 * and pages of replica applies (ARCHITECTURE §7). The main thread sends it
 * a second after a transaction (src/node/group-sync-timer.ts), so an idle
 * database never leaves its last transactions waiting for a checkpoint.
 * The FUSE thread answers with a `groupSync` event: the syncs run on the
 * syncer thread, not on the FUSE thread.
 */
export interface SyncCommand {
  readonly type: 'sync';
}

/** The syncer finished a GroupSyncJob (`ok` false: an I/O error, logged by the main thread; the group waits again). */
export interface GroupSyncedCommand {
  readonly type: 'groupSynced';
  readonly db: string;
  readonly gen: number;
  readonly ok: boolean;
}

/** Replace `db` with the validated SQLite image at `path` as one transaction (primary only). */
export interface ImportCommand {
  readonly type: 'import';
  /** Matches the command to its result. */
  readonly id: number;
  readonly db: string;
  readonly path: string;
}

/**
 * Replica: apply the LTX files at `paths`, in order (fully verified by the
 * main thread and fsynced: in `<data>/tmp/`, or an incremental one already
 * in the database's `ltx/` as `<name>.received` with its folder fsynced;
 * several only when all are incremental: store/apply.ts applyLTXFiles) to
 * `db` (created if missing) under the database's write lock set (ref §6.6,
 * §9.6). The FUSE thread moves the files to their `ltx/` names, durably,
 * before it touches the database, so start-up re-applies them after a
 * crash mid-apply. An incremental file must continue
 * the local position exactly, else the result is `error` and nothing
 * changes. The result comes once the pages are written, the locks released
 * and the kernel's caches invalidated; a `tx` event comes first.
 */
export interface ApplyCommand {
  readonly type: 'apply';
  readonly id: number;
  readonly db: string;
  readonly paths: readonly string[];
  /**
   * Set for a snapshot that replaces local data which is not provably a
   * prefix of the primary's history (ARCHITECTURE §3.1): the database, its
   * side files and its LTX files are first copied to
   * `<data>/quarantine/<db>/<UTC time>/` with a report.json, then the
   * snapshot is applied. A `quarantine` event follows.
   */
  readonly quarantine: QuarantineRequest | null;
  /**
   * False (what the replica client sends): the database file's fsync is
   * left to the group, done by the MAX_APPLY_GROUP-th unsynced apply in a
   * row, the `sync` command a second later, a local commit or unmount;
   * start-up applies that many newest files again after a power loss.
   */
  readonly syncDatabase: boolean;
  /**
   * Primary: a transaction a replica forwarded under its HALT lock `haltLockID`
   * (POST /tx, ref §8.2): applied under the write lock set that lock holds,
   * refused unless that lock is held on `db`.
   */
  readonly haltLockID?: string;
}

export interface QuarantineRequest {
  /** Why the snapshot replaces local data (e.g. `diverged`, `ahead`, `unknown`). */
  readonly reason: string;
  /** The primary's hostname or URL, for the report. */
  readonly primary: string;
}

/**
 * The node's role and what the FUSE thread shows of it; no result. On a
 * replica every write is refused with EACCES (ARCHITECTURE §2), `.primary`
 * holds `primaryHostname`, and `.lag` is computed from `primaryTimestamp`.
 */
export interface StatusCommand {
  readonly type: 'status';
  readonly role: 'primary' | 'replica';
  /** The primary's hostname ('' while unknown). */
  readonly primaryHostname: string;
  /** ms since the epoch of the primary's last heartbeat or applied LTX; 0 = this node is primary; -1 = never synced. */
  readonly primaryTimestamp: number;
  /**
   * Until when this node may write as primary (its lease deadline, less the
   * lease loop's margin): absolute ms on `performance.timeOrigin +
   * performance.now()` (src/store/fence.ts fenceClock; comparable across
   * threads). New write transactions are refused FENCE_LEAD_MS before it,
   * commits from it on. null = no deadline (a static primary; replicas).
   * A role change from primary to replica rolls back whatever a cut-off
   * transaction left, so every database equals its last LTX file again.
   */
  readonly writeDeadline: number | null;
}

/** FUSE thread → main thread: how a StoreCommand ended; `busy` = a transaction holds the locks, retry. */
export type StoreCommandResult =
  | { readonly type: 'commandResult'; readonly id: number; readonly status: 'busy' }
  /** `inodes`: the database's files the kernel may hold cached pages of; the main thread invalidates them before answering. */
  | {
      readonly type: 'commandResult';
      readonly id: number;
      readonly status: 'ok';
      readonly inodes: readonly number[];
      /** `haltLock`: the database's position (16 hex digits each). */
      readonly pos?: { readonly txid: string; readonly checksum: string };
      /** `imageHold`: what is held. */
      readonly image?: HeldImageFacts;
    }
  | { readonly type: 'commandResult'; readonly id: number; readonly status: 'error'; readonly message: string };

/** Options the main thread gives the store (structured-cloned into the worker). */
export interface StoreOptions {
  /** `data.dir`. */
  readonly dataDir: string;
  /** Start read-only (a replica) until a `status` command says primary: `litefs mount`, whose lease loop decides. Default false. */
  readonly startAsReplica?: boolean;
  /** `data.compress`: LZ4-compress LTX page blocks. */
  readonly compress: boolean;
  /** `strict-verify`: recompute the database checksum from disk after every commit. */
  readonly strictVerify: boolean;
  /** Node id written into LTX headers (0 = unknown). */
  readonly nodeId: string;
  /** `data.retention`: LTX files older than this (by mtime) are removed; <= 0 turns age retention off. Default 10 min. */
  readonly retentionMs?: number;
  /** `data.retention-monitor-interval`: least time between two sweeps of one database. Default 1 min. */
  readonly retentionMonitorIntervalMs?: number;
  /** `data.retention-max-bytes`: per database, oldest LTX files go until the total is at most this; 0 = off. Default 0. */
  readonly retentionMaxBytes?: number;
}

export const DEFAULT_RETENTION_MS = 10 * 60_000;
export const DEFAULT_RETENTION_MONITOR_INTERVAL_MS = 60_000;
