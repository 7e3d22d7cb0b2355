/**
 * Messages between the FUSE thread (which owns the store) and the main
 * thread (ARCHITECTURE §4). The one module both threads import: plain,
 * structured-cloneable objects only.
 */

/** FUSE thread → main thread. */
export type StoreEvent =
  /** A transaction was committed and its LTX file is durable. */
  | {
      readonly type: 'tx';
      readonly db: string;
      /** 16 hex digits, as in LTX file names. */
      readonly txid: string;
      /** Post-apply checksum, 16 hex digits. */
      readonly checksum: string;
      /** Pages in the LTX file. */
      readonly pages: number;
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
  | StoreCommandResult;

/**
 * Main thread → FUSE thread (src/fs/commands.ts). `import`: replace `db`
 * with the validated SQLite image at `path` as one transaction.
 */
export interface StoreCommand {
  readonly type: 'import';
  /** Matches the command to its result. */
  readonly id: number;
  readonly db: string;
  readonly path: string;
}

/** FUSE thread → main thread: how a StoreCommand ended; `busy` = a transaction holds the locks, retry. */
export type StoreCommandResult =
  | { readonly type: 'commandResult'; readonly id: number; readonly status: 'busy' }
  /** `inodes`: the database's files the kernel may hold cached pages of; the main thread invalidates them before answering. */
  | { readonly type: 'commandResult'; readonly id: number; readonly status: 'ok'; readonly inodes: readonly number[] }
  | { readonly type: 'commandResult'; readonly id: number; readonly status: 'error'; readonly message: string };

/** Options the main thread gives the store (structured-cloned into the worker). */
export interface StoreOptions {
  /** `data.dir`. */
  readonly dataDir: string;
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
