import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LTXDecoder, checksumDatabase, formatHex16, formatPos } from '../../../src/ltx/index.js';
import {
  WAL_HEADER_SIZE,
  type WalChecksum,
  type WalHeader,
  buildJournalHeader,
  buildJournalRecord,
  buildWalHeader,
  encodeWalFrame,
} from '../../../src/sqlite/index.js';
import { type JournalFinalize, commitJournal } from '../../../src/store/commit-journal.js';
import { commitWAL } from '../../../src/store/commit-wal.js';
import { Lock } from '../../../src/store/locks.js';
import type { DB } from '../../../src/store/db.js';
import { CrashIO, SimulatedCrash } from '../../../src/store/io-crash.js';
import type { StoreIO } from '../../../src/store/io.js';
import { Store } from '../../../src/store/store.js';

/**
 * ARCHITECTURE §7 for rollback-journal and WAL commits, at the store level: a
 * scripted "SQLite" writes journal and pages through the same DB methods the
 * FUSE layer calls, on a CrashIO that stops before the N-th sync (or
 * change). After every possible stop, with the process dying (page cache
 * kept) or the power failing (unsynced writes lost), a restarted store must
 * agree with its LTX chain, hold every acknowledged transaction, and contain
 * exactly the image of the transaction its position names.
 */

const PAGE = 512;
const DB_NAME = 'crash.db';

/** Page `pgno` of the database after transaction `tx` (page 1 carries a header saying `pages`). */
function pageOf(tx: number, pgno: number, pages: number, wal = false): Buffer {
  const p = Buffer.alloc(PAGE);
  for (let i = 0; i < PAGE; i++) p[i] = (tx * 31 + pgno * 7 + i) & 0xff;
  if (pgno === 1) {
    p.write('SQLite format 3\0', 0, 'latin1');
    p.writeUInt16BE(PAGE, 16);
    // File format versions: 2/2 = WAL mode.
    p[18] = wal ? 2 : 1;
    p[19] = wal ? 2 : 1;
    p.writeUInt32BE(tx, 24);
    p.writeUInt32BE(pages, 28);
  }
  return p;
}

/** Transaction k: which pages it writes and the database size after it. */
const TXS: readonly { pages: number; writes: readonly number[] }[] = [
  { pages: 3, writes: [1, 2, 3] },
  { pages: 5, writes: [1, 2, 4, 5] },
  { pages: 2, writes: [1, 2] }, // shrinks
  { pages: 4, writes: [1, 3, 4] },
  // Small single-page-and-header transactions, for the long group run.
  ...Array.from({ length: 10 }, (_, i) => ({ pages: 4, writes: [1, 2 + (i % 3)] })),
];

/** The database file after transactions 1..k. */
function imageAfter(k: number, wal = false): Buffer {
  let pages: Buffer[] = [];
  for (let t = 1; t <= k; t++) {
    const { pages: n, writes } = TXS[t - 1]!;
    const next = pages.slice(0, n);
    for (const pgno of writes) next[pgno - 1] = pageOf(t, pgno, n, wal);
    pages = next;
  }
  return Buffer.concat(pages);
}

function newStore(dataDir: string, io: StoreIO): Store {
  const store = new Store({ dataDir, compress: true, strictVerify: true, nodeId: '1' }, () => {}, () => {}, io);
  store.open();
  return store;
}

/**
 * What SQLite does for one rollback-journal transaction, in its order, with
 * the journal finalized as `finalize` says and synced as `sync` makes SQLite
 * do. Returns when "COMMIT" returned.
 */
function sqliteTransaction(db: DB, k: number, wal = false, finalize: JournalFinalize = 'delete', sync: SyncLevel = 'full'): void {
  const io = db.io;
  const { pages, writes } = TXS[k - 1]!;
  const before = imageAfter(k - 1, wal);
  const origPages = before.length / PAGE;
  // TRUNCATE and PERSIST keep the journal file between transactions.
  const created = !io.exists(db.journalPath);
  const jfd = io.open(db.journalPath, created ? 'createNew' : 'readWrite');
  try {
    const nonce = 0x1234 + k;
    // SQLite journals every page it changes and, when the transaction
    // shrinks the file, every page the truncation discards.
    const journaled = [...writes.filter((pgno) => pgno <= origPages)];
    for (let pgno = pages + 1; pgno <= origPages; pgno++) if (!journaled.includes(pgno)) journaled.push(pgno);
    // The header as SQLite leaves it once synced: magic and record count.
    const nRec = journaled.length;
    db.writeJournal(jfd, buildJournalHeader({ nRec, nonce, initialPageCount: origPages, sectorSize: 512, pageSize: PAGE }), 0);
    let off = 512;
    for (const pgno of journaled) {
      const rec = buildJournalRecord(pgno, before.subarray((pgno - 1) * PAGE, pgno * PAGE), nonce);
      db.writeJournal(jfd, rec, off);
      off += rec.length;
    }
    io.fsync(jfd);
  } finally {
    io.close(jfd);
  }
  // SQLite syncs the folder after creating a journal (the mount's fsyncdir).
  if (created) io.fsyncDir(db.dir);
  const dfd = io.open(db.databasePath, 'readWrite');
  try {
    for (const pgno of writes) db.writeDatabase(dfd, pageOf(k, pgno, pages, wal), (pgno - 1) * PAGE);
    if (pages < origPages) db.truncateDatabase(dfd, pages * PAGE);
    io.fsync(dfd);
  } finally {
    io.close(dfd);
  }
  // The FUSE layer's signal: unlink, truncate to 0, or the zeroed header.
  commitJournal(db, finalize);
  // SQLite syncs a zeroed header (NORMAL and FULL) and, with FULL, a
  // truncated journal; never the unlink.
  if (finalize === 'persist' || (finalize === 'truncate' && sync === 'full')) {
    const fd = io.open(db.journalPath, 'readWrite');
    try {
      io.fsync(fd);
    } finally {
      io.close(fd);
    }
  }
}


/**
 * What SQLite does for WAL transactions with synchronous=FULL, one
 * connection: WRITE lock, frames appended (a new header first when the WAL is
 * empty), WAL fsynced (and its folder, once, as for a new journal), WRITE
 * released: the store's commit signal (the FUSE layer's unlock path).
 */
class WalClient {
  /** synchronous=FULL fsyncs the WAL at every commit; NORMAL only before a checkpoint. */
  syncEachCommit = true;
  private header: WalHeader | null = null;
  private checksum: WalChecksum = [0, 0];
  private offset = 0;
  /** pgno → latest committed page, for the checkpoint. */
  private readonly latest = new Map<number, Buffer>();
  private nPage = 0;
  private static salt = 1000;

  constructor(private readonly db: DB) {}

  transaction(k: number): void {
    const db = this.db;
    const io = db.io;
    const owner = 7n;
    assert.ok(db.locks.tryLock(owner, Lock.WRITE), 'WAL WRITE lock');
    const fd = io.open(db.walPath, io.exists(db.walPath) ? 'readWrite' : 'createNew');
    try {
      const { pages, writes } = TXS[k - 1]!;
      if (this.header === null) {
        const built = buildWalHeader({ bigEndianChecksum: false, pageSize: PAGE, checkpointSeq: 0, salt1: WalClient.salt++, salt2: 77 });
        db.writeWAL(fd, built.bytes, 0);
        this.header = built.header;
        this.checksum = built.header.checksum;
        this.offset = WAL_HEADER_SIZE;
      }
      const ctx = { bigEndianChecksum: false, salt1: this.header.salt1, salt2: this.header.salt2 };
      writes.forEach((pgno, i) => {
        const data = pageOf(k, pgno, pages, true);
        const frame = encodeWalFrame(ctx, this.checksum, pgno, i === writes.length - 1 ? pages : 0, data);
        db.writeWAL(fd, frame.bytes, this.offset);
        this.checksum = frame.checksum;
        this.offset += frame.bytes.length;
        this.latest.set(pgno, data);
      });
      for (const pgno of [...this.latest.keys()]) if (pgno > pages) this.latest.delete(pgno);
      this.nPage = pages;
      if (this.syncEachCommit) {
        io.fsync(fd);
        io.fsyncDir(db.dir);
      }
    } finally {
      io.close(fd);
    }
    if (db.locks.releasesWalWrite(owner, Lock.WRITE)) commitWAL(db);
    db.locks.unlock(owner, Lock.WRITE);
  }

  /** PRAGMA wal_checkpoint(TRUNCATE): every page into the database file, then an empty WAL. */
  checkpoint(): void {
    const db = this.db;
    const io = db.io;
    if (!this.syncEachCommit) {
      // synchronous=NORMAL: the WAL is made durable before it is copied.
      const wfd = io.open(db.walPath, 'readWrite');
      try {
        io.fsync(wfd);
      } finally {
        io.close(wfd);
      }
      io.fsyncDir(db.dir);
    }
    const dfd = io.open(db.databasePath, 'readWrite');
    try {
      for (const [pgno, data] of [...this.latest].sort((a, b) => a[0] - b[0])) db.writeDatabase(dfd, data, (pgno - 1) * PAGE);
      db.truncateDatabase(dfd, this.nPage * PAGE);
      io.fsync(dfd);
    } finally {
      io.close(dfd);
    }
    const wfd = io.open(db.walPath, 'readWrite');
    try {
      db.truncateWAL(wfd, 0);
      io.fsync(wfd);
    } finally {
      io.close(wfd);
    }
    this.header = null;
    this.latest.clear();
  }
}

/**
 * One scripted run: the first transaction goes through a rollback journal
 * (for WAL, it switches the file to WAL mode), a checkpoint follows
 * `checkpointAfter`.
 */
interface Variant {
  readonly name: string;
  readonly journal: Journal;
  /**
   * WAL: fsync at every commit (synchronous=FULL) or only before a
   * checkpoint (NORMAL). TRUNCATE: whether SQLite syncs the truncated journal.
   */
  readonly sync: SyncLevel;
  readonly txCount: number;
  readonly checkpointAfter: number;
}

const VARIANTS: readonly Variant[] = [
  { name: 'rollback journal (DELETE)', journal: 'delete', sync: 'full', txCount: 4, checkpointAfter: 0 },
  // The truncation is SQLite's commit point and nothing syncs it: power loss may bring the journal back.
  { name: 'rollback journal (TRUNCATE, synchronous=NORMAL)', journal: 'truncate', sync: 'normal', txCount: 4, checkpointAfter: 0 },
  { name: 'rollback journal (PERSIST)', journal: 'persist', sync: 'full', txCount: 4, checkpointAfter: 0 },
  { name: 'WAL synchronous=FULL', journal: 'wal', sync: 'full', txCount: 4, checkpointAfter: 3 },
  { name: 'WAL synchronous=NORMAL', journal: 'wal', sync: 'normal', txCount: 4, checkpointAfter: 3 },
  // 12 WAL commits before the checkpoint: their group is synced with one syncfs.
  { name: 'WAL synchronous=NORMAL, a large group', journal: 'wal', sync: 'normal', txCount: 14, checkpointAfter: 13 },
];

function runTransaction(db: DB, k: number, v: Variant, client: WalClient): void {
  if (v.journal === 'wal' && k > 1) client.transaction(k);
  else sqliteTransaction(db, k, v.journal === 'wal', v.journal === 'wal' ? 'delete' : v.journal, v.sync);
}

function newClient(db: DB, v: Variant): WalClient {
  const client = new WalClient(db);
  client.syncEachCommit = v.sync === 'full';
  return client;
}

type Journal = JournalFinalize | 'wal';
type SyncLevel = 'full' | 'normal';

interface Outcome {
  readonly crashed: boolean;
  /** Transactions whose commit returned. */
  readonly acknowledged: number;
  /** Of those, the ones the application's synchronous level promises to keep across a power loss. */
  readonly durable: number;
}

/** Runs every transaction until the kill point; returns how many returned. */
function runUntilCrash(dataDir: string, io: CrashIO, killAt: number, count: 'sync' | 'mutation', v: Variant): Outcome {
  let acknowledged = 0;
  let durable = 0;
  try {
    io.setKillAt(killAt, count);
    const store = newStore(dataDir, io);
    const db = store.createDB(DB_NAME);
    const client = newClient(db, v);
    for (let k = 1; k <= v.txCount; k++) {
      runTransaction(db, k, v, client);
      acknowledged = k;
      // A rollback-journal commit's LTX file is durable before the journal is finalized.
      if (v.journal !== 'wal' || k === 1 || v.sync === 'full') durable = k;
      if (k === v.checkpointAfter) {
        client.checkpoint();
        durable = k;
      }
    }
    return { crashed: false, acknowledged, durable };
  } catch (err) {
    if (!(err instanceof SimulatedCrash)) throw err;
    return { crashed: true, acknowledged, durable };
  }
}

/** After restart: LTX chain, position, database contents, acknowledged transactions. */
function checkRecovered(dataDir: string, io: CrashIO, mustHave: number, what: string, v: Variant): void {
  const journal = v.journal;
  io.setKillAt(0);
  const store = newStore(dataDir, io);
  const db = store.db(DB_NAME);
  if (db === undefined) {
    assert.equal(mustHave, 0, `${what}: database folder vanished after ${mustHave} commits it had to keep`);
    return;
  }
  const ltxDir = join(dataDir, 'dbs', DB_NAME, 'ltx');
  const names = readdirSync(ltxDir).filter((n) => n.endsWith('.ltx')).sort();
  let prev = 0n;
  names.forEach((name, i) => {
    const dec = new LTXDecoder({});
    dec.push(readFileSync(join(ltxDir, name)));
    const s = dec.end();
    assert.equal(s.header.minTXID, BigInt(i + 1), `${what}: ${name} out of sequence`);
    assert.equal(s.header.preApplyChecksum, prev, `${what}: ${name} pre-apply does not chain`);
    prev = s.trailer.postApplyChecksum;
  });
  const txid = names.length;
  assert.ok(txid >= mustHave, `${what}: ${mustHave} commits had to survive but only ${txid} LTX files`);
  assert.equal(formatPos(db.pos), formatPos({ txid: BigInt(txid), postApplyChecksum: prev }), `${what}: position`);
  const image = io.exists(db.databasePath) ? readFileSync(db.databasePath) : Buffer.alloc(0);
  assert.ok(image.equals(imageAfter(txid, journal === 'wal')), `${what}: database file is not the image of TXID ${txid}`);
  if (txid > 0) {
    const actual = checksumDatabase(PAGE, image.length / PAGE, (pgno) => image.subarray((pgno - 1) * PAGE, pgno * PAGE));
    assert.equal(formatHex16(actual), formatHex16(prev), `${what}: database checksum`);
  }
  assert.equal(io.exists(db.journalPath), false, `${what}: journal left after recovery`);
  if (journal === 'wal' && txid > 0) assert.equal(db.mode, 'wal', `${what}: mode`);
  // And the store goes on: the next transaction continues the chain.
  if (txid < v.txCount) {
    // SQLite re-creates a database file that never got its first commit.
    if (db.pageN === 0) store.createDB(DB_NAME);
    runTransaction(db, txid + 1, v, newClient(db, v));
    assert.equal(db.pos.txid, BigInt(txid + 1), `${what}: commit after recovery`);
  }
}

function sweep(count: 'sync' | 'mutation', crash: 'process' | 'power', v: Variant): number {
  let runs = 0;
  for (let killAt = 1; ; killAt++) {
    const base = mkdtempSync(join(tmpdir(), 'litefs-slice-crash-'));
    try {
      const dataDir = join(base, 'data');
      const io = new CrashIO({ shadowDir: join(base, 'shadow'), count });
      const outcome = runUntilCrash(dataDir, io, killAt, count, v);
      if (!outcome.crashed) return runs;
      const point = io.crashed;
      if (crash === 'power') io.simulatePowerLoss();
      else io.restart();
      const what = `${crash} loss before ${point?.op} #${killAt} of ${point?.path} (${outcome.acknowledged} acknowledged, ${outcome.durable} synced)`;
      try {
        checkRecovered(dataDir, io, crash === 'power' ? outcome.durable : outcome.acknowledged, what, v);
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      runs++;
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
    if (killAt > 1000) throw new Error('no run completed: kill points never end');
  }
}

for (const v of VARIANTS) {
  describe(`store: ${v.name} commits survive a crash at every point`, () => {
    test('process death before any fsync or change: recovery agrees with the LTX chain, no acknowledged commit lost', (t) => {
      const runs = sweep('mutation', 'process', v);
      t.diagnostic(`${runs} kill points`);
      assert.ok(runs > 50, `only ${runs} kill points`);
    });

    test('power loss before any sync: recovery agrees with the LTX chain, nothing lost that the synchronous level promised', (t) => {
      const runs = sweep('sync', 'power', v);
      t.diagnostic(`${runs} kill points`);
      assert.ok(runs > 4, `only ${runs} kill points`);
    });

    test('power loss before any change: recovery agrees with the LTX chain, nothing lost that the synchronous level promised', (t) => {
      const runs = sweep('mutation', 'power', v);
      t.diagnostic(`${runs} kill points`);
      assert.ok(runs > 50, `only ${runs} kill points`);
    });
  });
}
