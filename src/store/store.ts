/**
 * The Store: the set of databases in `<data>/dbs/` (ref §7, the single-node
 * part). Owned by the FUSE thread. Databases are opened (and recovered) at
 * start-up; a new one is created by the first CREATE of its name.
 */
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { DB, type StoreContext } from './db.js';
import { DatabaseExistsError } from './errors.js';
import { WriteFence } from './fence.js';
import { type StoreIO, RealIO } from './io.js';
import type { GroupSyncJob, StoreEvent, StoreOptions } from './messages.js';
import { openDB } from './open.js';
import { maybeEnforceRetention } from './retention.js';

export class Store {
  private readonly dbs = new Map<string, DB>();
  readonly dbsDir: string;
  private readonly ctx: StoreContext;
  /** The lease deadline fence of every database (set by the `status` command). */
  readonly fence: WriteFence;

  constructor(
    readonly options: StoreOptions,
    post: (event: StoreEvent) => void = () => {},
    log: (line: string) => void = () => {},
    io: StoreIO = new RealIO(),
    now: () => number = Date.now,
    fence: WriteFence = new WriteFence(),
  ) {
    this.dbsDir = join(options.dataDir, 'dbs');
    this.fence = fence;
    this.ctx = { io, options, nodeId: nodeIdNumber(options.nodeId), post, log, now, fence };
  }

  get io(): StoreIO {
    return this.ctx.io;
  }

  /** Opens (and recovers) every database folder under `dbs/`. */
  open(): void {
    this.io.mkdirp(this.dbsDir);
    // Folders made just now are durable only once their parents are.
    this.io.fsyncDir(dirname(this.options.dataDir));
    this.io.fsyncDir(this.options.dataDir);
    for (const name of this.io.readdir(this.dbsDir)) {
      const db = new DB(name, this.ctx);
      openDB(db);
      maybeEnforceRetention(db);
      this.dbs.set(name, db);
    }
  }

  db(name: string): DB | undefined {
    return this.dbs.get(name);
  }

  /** Databases sorted by name. */
  list(): DB[] {
    return [...this.dbs.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * fsync of the mount root: SQLite syncs the folder after creating a
   * journal or WAL (so a crash cannot lose the journal while the database
   * pages it protects survive). Those entries live in each database's
   * folder here: sync the folders whose entries the mount changed since
   * (all of them would be one fsync per database on every such request).
   */
  syncDatabaseDirs(): void {
    for (const db of this.dbs.values()) {
      if (!db.entriesUnsynced) continue;
      if (this.io.exists(db.dir)) this.io.fsyncDir(db.dir);
      db.entriesUnsynced = false;
    }
  }

  /** The waiting groups to hand to the syncer thread (DB.takeGroupSync). */
  takeGroupSyncs(): GroupSyncJob[] {
    const jobs: GroupSyncJob[] = [];
    for (const db of this.dbs.values()) {
      const job = db.takeGroupSync();
      if (job !== null) jobs.push(job);
    }
    return jobs;
  }

  /** The backup's high-water mark for a database (null: none); retention by age waits for it. */
  setBackupHWM(name: string, txid: bigint | null): void {
    const db = this.dbs.get(name);
    if (db !== undefined) db.backupHWM = txid;
  }

  /** The syncer's report on a job; returns that database's next job, if one is due. */
  groupSyncDone(name: string, gen: number, ok: boolean): GroupSyncJob | null {
    return this.dbs.get(name)?.groupSyncDone(gen, ok) ?? null;
  }

  /**
   * Makes every database's waiting group durable now, on this thread (LTX
   * files of WAL commits, pages of replica applies): at unmount. A failure is logged and the next database
   * still synced; the group stays waiting and is synced again later.
   */
  syncGroups(): void {
    for (const db of this.dbs.values()) {
      try {
        db.syncPendingLTX();
        db.syncAppliedPages();
      } catch (err) {
        this.ctx.log(`${db.name}: group sync failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /**
   * CREATE of a database name (ref §6.11): a database that has committed
   * pages exists already (EEXIST); one that never committed is reused.
   * Returns the DB; its database file exists afterwards.
   */
  createDB(name: string): DB {
    let db = this.dbs.get(name);
    if (db !== undefined && db.pageN > 0) throw new DatabaseExistsError(name);
    const isNew = db === undefined;
    db ??= new DB(name, this.ctx);
    this.io.mkdirp(db.ltxDir);
    this.io.close(this.io.open(db.databasePath, 'create'));
    this.io.fsyncDir(db.dir);
    if (isNew) {
      this.io.fsyncDir(this.dbsDir);
      openDB(db, true);
      this.dbs.set(name, db);
    }
    return db;
  }
}

/** LTX headers carry a u64 node id; derive one from the configured text id (0 if none). */
function nodeIdNumber(id: string): bigint {
  if (id === '') return 0n;
  if (/^[0-9a-fA-F]{1,16}$/.test(id)) return BigInt(`0x${id}`);
  return createHash('sha256').update(id).digest().readBigUInt64BE(0);
}
