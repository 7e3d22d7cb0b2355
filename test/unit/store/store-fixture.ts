/** A store in a temporary data dir plus hand-made SQLite transactions, for the retention and start-up tests. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checksumDatabase } from '../../../src/ltx/index.js';
import { WAL_HEADER_SIZE, type WalChecksum, type WalHeader, buildJournalHeader, buildWalHeader, encodeWalFrame } from '../../../src/sqlite/index.js';
import { commitJournal } from '../../../src/store/commit-journal.js';
import { commitWAL } from '../../../src/store/commit-wal.js';
import type { DB } from '../../../src/store/db.js';
import { Lock } from '../../../src/store/locks.js';
import type { StoreEvent, StoreOptions } from '../../../src/store/messages.js';
import { Store } from '../../../src/store/store.js';

export const PAGE = 1024;

/** Page `pgno` of a database of `pages` pages, filled with `fill`; page 1 carries the header. */
export function page(fill: number, pgno: number, pages: number, wal = false): Buffer {
  const p = Buffer.alloc(PAGE, fill);
  if (pgno === 1) {
    p.write('SQLite format 3\0', 0, 'latin1');
    p.writeUInt16BE(PAGE, 16);
    p[18] = wal ? 2 : 1;
    p[19] = wal ? 2 : 1;
    p.writeUInt32BE(pages, 28);
  }
  return p;
}

export interface Harness {
  readonly base: string;
  readonly dataDir: string;
  events: StoreEvent[];
  logs: string[];
  /** The fake clock's time (ms). */
  now: number;
  open(extra?: Partial<StoreOptions>): Store;
}

export function harness(): Harness {
  const base = mkdtempSync(join(tmpdir(), 'litefs-store-fixture-'));
  const h: Harness = {
    base,
    dataDir: join(base, 'data'),
    events: [],
    logs: [],
    now: Date.now(),
    open(extra = {}) {
      h.events = [];
      h.logs = [];
      const s = new Store(
        { dataDir: h.dataDir, compress: false, strictVerify: true, nodeId: 'node1', ...extra },
        (e) => h.events.push(e),
        (l) => h.logs.push(l),
        undefined,
        () => h.now,
      );
      s.open();
      return s;
    },
  };
  return h;
}

/** A DELETE-mode transaction: the database becomes `pages` pages, `writes` of them (default all) rewritten with `fill`; `wal` sets WAL mode in page 1. */
export function tx(db: DB, fill: number, pages: number, writes?: number[], wal = false): void {
  const jfd = db.io.open(db.journalPath, 'create');
  db.writeJournal(jfd, buildJournalHeader({ nRec: 0, nonce: 1, initialPageCount: db.pageN, sectorSize: 512, pageSize: PAGE, hasMagic: true }), 0);
  db.io.close(jfd);
  const fd = db.io.open(db.databasePath, 'readWrite');
  for (const pgno of writes ?? Array.from({ length: pages }, (_, i) => i + 1)) db.writeDatabase(fd, page(fill, pgno, pages, wal), (pgno - 1) * PAGE);
  db.io.close(fd);
  commitJournal(db, 'delete');
}

/** A WAL transaction as SQLite makes it (WRITE lock, frames, fsync, release = commit signal). */
export class WalWriter {
  private header: WalHeader | null = null;
  private checksum: WalChecksum = [0, 0];
  private offset = 0;

  constructor(
    private readonly db: DB,
    private readonly salt1 = 4242,
    /** synchronous=FULL: the WAL is fsynced at every commit; false: NORMAL, never. */
    private readonly syncEachCommit = true,
  ) {}

  transaction(fill: number, pages: number, writes: number[]): void {
    const db = this.db;
    const io = db.io;
    assert.ok(db.locks.tryLock(9n, Lock.WRITE));
    const fd = io.open(db.walPath, io.exists(db.walPath) ? 'readWrite' : 'createNew');
    try {
      if (this.header === null) {
        const built = buildWalHeader({ bigEndianChecksum: false, pageSize: PAGE, checkpointSeq: 0, salt1: this.salt1, salt2: 77 });
        db.writeWAL(fd, built.bytes, 0);
        this.header = built.header;
        this.checksum = built.header.checksum;
        this.offset = WAL_HEADER_SIZE;
      }
      const ctx = { bigEndianChecksum: false, salt1: this.header.salt1, salt2: this.header.salt2 };
      writes.forEach((pgno, i) => {
        const frame = encodeWalFrame(ctx, this.checksum, pgno, i === writes.length - 1 ? pages : 0, page(fill, pgno, pages, true));
        db.writeWAL(fd, frame.bytes, this.offset);
        this.checksum = frame.checksum;
        this.offset += frame.bytes.length;
      });
      if (this.syncEachCommit) io.fsync(fd);
    } finally {
      io.close(fd);
    }
    if (db.locks.releasesWalWrite(9n, Lock.WRITE)) commitWAL(db);
    db.locks.unlock(9n, Lock.WRITE);
  }
}

/** Checksum of a database image as LTX computes it. */
export function imageChecksum(image: Buffer, pageSize = PAGE): bigint {
  return checksumDatabase(pageSize, image.length / pageSize, (p) => image.subarray((p - 1) * pageSize, p * pageSize));
}

export function ltxNames(db: DB): string[] {
  return readdirSync(db.ltxDir).filter((n) => n.endsWith('.ltx'));
}

/** The one forensic folder of `db` (asserts there is exactly `count`), newest last. */
export function forensicDirs(h: Harness, db: string): string[] {
  const root = join(h.dataDir, 'forensic', db);
  return readdirSync(root)
    .sort()
    .map((d) => join(root, d));
}

export function report(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Record<string, unknown>;
}
