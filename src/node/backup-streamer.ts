/**
 * The primary's backup loop (ref §11.2, ARCHITECTURE §3.7): after commits
 * (batched for a second) and every 10 s, each database's LTX files the
 * backup does not hold yet go to it, compacted into one file (up to 256 at
 * a time); a snapshot when the backup holds nothing of the database, or
 * when the files between its position and ours are gone (retention) or do
 * not continue it (another history). Unlike LiteFS, a backup that is ahead
 * of this node or holds another history never replaces local data: the
 * node logs it and re-bases the backup with a snapshot once it is ahead
 * again; a file backup keeps the older files, so both histories stay
 * restorable (src/backup/restore.ts).
 */
import type { BackupClient } from '../backup/client.js';
import { PosMismatchError } from '../backup/client.js';
import { CollectSink, type Pos, ZERO_POS, compact, formatPos } from '../ltx/index.js';
import type { DataDirReplicationSource } from './replication-source.js';

export interface BackupStreamerOptions {
  readonly client: BackupClient;
  readonly source: Pick<DataDirReplicationSource, 'databaseNames' | 'position' | 'openLTXFile' | 'writeSnapshot'>;
  readonly isPrimary: () => boolean;
  /** Resolves at the next change of a position or of the role, or after `ms`. */
  readonly changed: (ms: number) => Promise<void>;
  /** data.compress: compacted files are LZ4-compressed. */
  readonly compress: boolean;
  readonly log: (line: string) => void;
  /** Batching delay after a commit (LiteFS: 1 s). */
  readonly delayMs?: number;
  /** How often the backup's positions are read again (LiteFS: 10 s). */
  readonly fullSyncMs?: number;
  /**
   * A snapshot instead of the new files once this long has passed since the
   * database's last snapshot upload (or since this node started uploading),
   * so a restore never replays more than that much history. 0: never.
   */
  readonly snapshotIntervalMs?: number;
  /** The clock for snapshot intervals (tests). */
  readonly now?: () => number;
  /**
   * Tells the store how far the backup holds a database, so retention keeps
   * the files it lacks (null: no constraint; sent when this node stops being
   * primary).
   */
  readonly setHWM?: (db: string, txid: bigint | null) => void;
  /** What the loop reports for metrics (node/metrics.ts litefs_backup_*). */
  readonly report?: BackupReport;
}

export interface BackupReport {
  /** The backup holds `db` up to `txid`. */
  position(db: string, txid: bigint): void;
  uploaded(db: string, kind: 'incremental' | 'snapshot'): void;
  /** A pass failed; it is retried. */
  failed(): void;
}

/** Most LTX files compacted into one upload. */
const MAX_FILES_PER_UPLOAD = 256;
const DEFAULT_DELAY_MS = 1000;
const DEFAULT_FULL_SYNC_MS = 10_000;

export class BackupStreamer {
  /** The backup's positions as last read or written; undefined: read them again. */
  private remote: Map<string, Pos> | undefined;
  private fullSyncAt = 0;
  /** The kind of the last condition logged per database, so a lasting one is logged once (its positions move). */
  private readonly reported = new Map<string, string>();
  /** The high-water marks last given to the store. */
  private readonly hwmSent = new Map<string, bigint | null>();
  /** When each database's chain in the backup last started from a snapshot (this node's upload, or when it began uploading). */
  private readonly snapshotAt = new Map<string, number>();

  constructor(private readonly o: BackupStreamerOptions) {}

  /** Runs until `signal` aborts; only a primary uploads. */
  async run(signal: AbortSignal): Promise<void> {
    const delayMs = this.o.delayMs ?? DEFAULT_DELAY_MS;
    while (!signal.aborted) {
      if (!this.o.isPrimary()) {
        this.remote = undefined;
        // Only the primary uploads: retention here need not wait for the backup.
        for (const db of this.hwmSent.keys()) this.setHWM(db, null);
        await this.changed(delayMs, signal);
        continue;
      }
      let more: boolean;
      try {
        more = await this.syncAll(signal);
      } catch (err) {
        this.o.report?.failed();
        this.o.log(`backup: ${this.o.client.url}: ${message(err)}; retrying`);
        this.remote = undefined;
        await sleep(delayMs, signal);
        continue;
      }
      // A database with more files than one upload takes goes on at once: a busy primary is never left behind.
      if (more) continue;
      // Wake for the next commit (or the periodic full sync), then wait a little so one upload carries many.
      await this.changed(this.o.fullSyncMs ?? DEFAULT_FULL_SYNC_MS, signal);
      await sleep(delayMs, signal);
    }
  }

  private changed(ms: number, signal: AbortSignal): Promise<void> {
    return Promise.race([this.o.changed(ms), sleep(ms, signal)]);
  }

  /** One pass over every database (also for tests); true when a database had more files than one upload takes. */
  async syncAll(signal: AbortSignal): Promise<boolean> {
    if (this.remote === undefined || Date.now() >= this.fullSyncAt) {
      this.remote = await this.o.client.posMap();
      this.fullSyncAt = Date.now() + (this.o.fullSyncMs ?? DEFAULT_FULL_SYNC_MS);
    }
    let more = false;
    for (const db of this.o.source.databaseNames()) {
      if (signal.aborted || !this.o.isPrimary()) return false;
      this.setHWM(db, this.remote.get(db)?.txid ?? 0n);
      if (await this.syncDatabase(db, this.remote, signal)) more = true;
    }
    return more;
  }

  private setHWM(db: string, txid: bigint | null): void {
    if (txid !== null) this.o.report?.position(db, txid);
    if (this.hwmSent.has(db) && this.hwmSent.get(db) === txid) return;
    this.hwmSent.set(db, txid);
    this.o.setHWM?.(db, txid);
  }

  /** Uploads what the backup lacks of `db`; true when one upload could not take it all. */
  private async syncDatabase(db: string, remote: Map<string, Pos>, signal: AbortSignal): Promise<boolean> {
    const local = this.o.source.position(db);
    if (local === undefined || local.txid === 0n) return false;
    const at = remote.get(db) ?? ZERO_POS;
    if (at.txid === local.txid) {
      if (at.postApplyChecksum === local.postApplyChecksum) this.reported.delete(db);
      else this.report(db, 'diverged', `the backup holds another history at the same TXID (backup ${formatPos(at)}, local ${formatPos(local)}); it is re-based once this node commits again`);
      return false;
    }
    if (at.txid > local.txid) {
      this.report(db, 'ahead', `the backup is ahead of this node (backup ${formatPos(at)}, local ${formatPos(local)}); local data is kept and the backup re-based once this node is ahead`);
      return false;
    }
    const interval = this.o.snapshotIntervalMs ?? 0;
    const now = (this.o.now ?? Date.now)();
    if (!this.snapshotAt.has(db)) this.snapshotAt.set(db, now);
    const snapshotDue = interval > 0 && now - this.snapshotAt.get(db)! >= interval;
    const files = at.txid === 0n || snapshotDue ? undefined : await this.readFiles(db, at, local.txid);
    let pos: Pos;
    try {
      pos = files === undefined ? await this.uploadSnapshot(db, signal) : await this.uploadCompacted(db, files);
      if (files === undefined) this.snapshotAt.set(db, now);
      this.o.report?.uploaded(db, files === undefined ? 'snapshot' : 'incremental');
    } catch (err) {
      if (!(err instanceof PosMismatchError)) throw err;
      // The backup moved under us (another writer?): read its positions again next time.
      this.remote = undefined;
      this.report(db, 'mismatch', message(err));
      return false;
    }
    remote.set(db, pos);
    this.setHWM(db, pos.txid);
    this.reported.delete(db);
    return pos.txid < local.txid;
  }

  /**
   * The bytes of files at+1 … (up to local, at most MAX_FILES_PER_UPLOAD);
   * undefined when one is gone or the first does not continue the backup:
   * a snapshot is sent instead.
   */
  private async readFiles(db: string, at: Pos, localTXID: bigint): Promise<Uint8Array[] | undefined> {
    const files: Uint8Array[] = [];
    for (let txid = at.txid + 1n; txid <= localTXID && files.length < MAX_FILES_PER_UPLOAD; txid++) {
      const file = await this.o.source.openLTXFile(db, txid);
      if (file === undefined) return undefined;
      try {
        if (files.length === 0 && file.preApplyChecksum !== at.postApplyChecksum) {
          this.o.log(`backup: ${db}: the backup's position ${formatPos(at)} is not in this node's history; re-basing it with a snapshot (its older files stay)`);
          return undefined;
        }
        const chunks: Uint8Array[] = [];
        for await (const chunk of file.body) chunks.push(chunk);
        files.push(Buffer.concat(chunks));
      } finally {
        await file.close();
      }
    }
    return files;
  }

  private async uploadCompacted(db: string, files: Uint8Array[]): Promise<Pos> {
    const sink = new CollectSink();
    const { header, trailer } = compact(sink, files, { headerFlags: this.o.compress ? 1 : 0 });
    await this.o.client.writeTx(db, once(sink.bytes()));
    return { txid: header.maxTXID, postApplyChecksum: trailer.postApplyChecksum };
  }

  private async uploadSnapshot(db: string, signal: AbortSignal): Promise<Pos> {
    const pipe = new Pipe();
    const writing = this.o.source.writeSnapshot(db, (bytes) => pipe.push(bytes), signal).finally(() => pipe.end());
    // However the upload ends (it may fail before reading anything), the snapshot's writer must not wait on it.
    const upload = this.o.client.writeTx(db, pipe.drain()).finally(() => pipe.stop());
    const [pos] = await Promise.all([writing, upload]);
    return pos;
  }

  private report(db: string, kind: string, problem: string): void {
    if (this.reported.get(db) === kind) return;
    this.reported.set(db, kind);
    this.o.log(`backup: ${db}: ${problem}`);
  }
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** A snapshot's writes (push, one awaited at a time) as the upload's body (pull). */
class Pipe {
  private queue: Uint8Array[] = [];
  private ended = false;
  /** The consumer stopped (the upload failed): the producer must stop too. */
  private stopped = false;
  private wake: (() => void) | undefined;
  private drained: (() => void) | undefined;

  /** Resolves once the consumer has taken the chunk (back-pressure); rejects once it has stopped. */
  push(bytes: Uint8Array): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('backup upload stopped'));
    this.queue.push(Buffer.from(bytes));
    this.wake?.();
    return new Promise((resolve) => (this.drained = resolve));
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** The consumer is done: a producer waiting in push() goes on, and its next push fails. */
  stop(): void {
    this.stopped = true;
    this.drained?.();
  }

  async *drain(): AsyncIterable<Uint8Array> {
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next !== undefined) {
          this.drained?.();
          yield next;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      this.stop();
    }
  }
}

/** Resolves after `ms`, or at once when `signal` is (or becomes) aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
