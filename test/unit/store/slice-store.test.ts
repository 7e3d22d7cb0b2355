import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeaderFlagCompressLZ4, checksumDatabase, decodeFileSync, formatPos } from '../../../src/ltx/index.js';
import { buildJournalHeader, buildJournalRecord } from '../../../src/sqlite/index.js';
import { commitJournal } from '../../../src/store/commit-journal.js';
import { type DB, isPersistCommit } from '../../../src/store/db.js';
import { DatabaseExistsError, InvalidWriteError } from '../../../src/store/errors.js';
import type { StoreEvent } from '../../../src/store/messages.js';
import { Store } from '../../../src/store/store.js';
import { parseName } from '../../../src/fs/names.js';

const PAGE = 1024;

function page(fill: number, pgno: number, pages: number): Buffer {
  const p = Buffer.alloc(PAGE, fill);
  if (pgno === 1) {
    p.write('SQLite format 3\0', 0, 'latin1');
    p.writeUInt16BE(PAGE, 16);
    p[18] = 1;
    p[19] = 1;
    p.writeUInt32BE(pages, 28);
  }
  return p;
}

describe('store (single node slice)', () => {
  let base: string;
  let events: StoreEvent[];
  let store: Store;

  const open = (strictVerify = true): Store => {
    events = [];
    const s = new Store({ dataDir: join(base, 'data'), compress: false, strictVerify, nodeId: 'node1' }, (e) => events.push(e));
    s.open();
    return s;
  };

  /** A DELETE-mode transaction writing `pages` pages filled with `fill`; `magic` false = never synced. */
  const tx = (db: DB, fill: number, pages: number, magic = true): void => {
    const jfd = db.io.open(db.journalPath, 'create');
    db.writeJournal(jfd, buildJournalHeader({ nRec: 0, nonce: 1, initialPageCount: db.pageN, sectorSize: 512, pageSize: PAGE, hasMagic: magic }), 0);
    db.io.close(jfd);
    const fd = db.io.open(db.databasePath, 'readWrite');
    for (let pgno = 1; pgno <= pages; pgno++) db.writeDatabase(fd, page(fill, pgno, pages), (pgno - 1) * PAGE);
    db.io.close(fd);
    commitJournal(db, 'delete');
  };

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'litefs-slice-store-'));
    store = open();
  });
  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });

  test('a rollback commit writes LTX 1 with the dirty pages, advances -pos and posts a tx event', () => {
    const db = store.createDB('a.db');
    tx(db, 7, 3);
    const ltx = readdirSync(db.ltxDir);
    assert.deepEqual(ltx, ['0000000000000001-0000000000000001.ltx']);
    const d = decodeFileSync(join(db.ltxDir, ltx[0]!));
    assert.deepEqual(d.pgnos, [1, 2, 3]);
    assert.equal(d.header.commit, 3);
    assert.equal(d.header.flags & HeaderFlagCompressLZ4, 0);
    assert.equal(d.header.preApplyChecksum, 0n);
    const image = readFileSync(db.databasePath);
    const sum = checksumDatabase(PAGE, 3, (p) => image.subarray((p - 1) * PAGE, p * PAGE));
    assert.equal(d.trailer.postApplyChecksum, sum);
    assert.equal(db.posText(), `${formatPos({ txid: 1n, postApplyChecksum: sum })}\n`);
    assert.equal(db.io.exists(db.journalPath), false, 'journal finalized');
    assert.deepEqual(events.map((e) => e.type), ['tx']);
  });

  test('a journal without magic at finalize is a rollback: no LTX file, journal removed', () => {
    const db = store.createDB('a.db');
    tx(db, 7, 2);
    tx(db, 9, 2, false);
    assert.equal(readdirSync(db.ltxDir).length, 1);
    assert.equal(db.pos.txid, 1n);
    assert.equal(db.io.exists(db.journalPath), false);
  });

  test('the position survives reopening the store, and the chain continues', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    tx(db, 2, 4);
    const pos = db.posText();
    const again = open().db('a.db')!;
    assert.equal(again.posText(), pos);
    assert.equal(again.pageN, 4);
    tx(again, 3, 4);
    const d = decodeFileSync(join(again.ltxDir, '0000000000000003-0000000000000003.ltx'));
    assert.equal(`${formatPos({ txid: 2n, postApplyChecksum: d.header.preApplyChecksum })}\n`, pos);
  });

  test('creating a database that has commits is EEXIST; one that never committed is reused', () => {
    const db = store.createDB('a.db');
    assert.equal(store.createDB('a.db'), db);
    tx(db, 1, 1);
    assert.throws(() => store.createDB('a.db'), DatabaseExistsError);
  });

  test('database writes must be one aligned page, the first one a SQLite header', () => {
    const db = store.createDB('a.db');
    const fd = db.io.open(db.databasePath, 'readWrite');
    try {
      assert.throws(() => db.writeDatabase(fd, Buffer.alloc(PAGE), 0), InvalidWriteError);
      // Without a journal (journal_mode=MEMORY/OFF) even a valid page is refused; the repeat is marked so it is logged once.
      assert.throws(() => db.writeDatabase(fd, page(0, 1, 1), 0), (e: unknown) => e instanceof InvalidWriteError && /journal_mode=MEMORY/.test(e.message) && !e.repeated);
      assert.throws(() => db.writeDatabase(fd, page(0, 1, 1), 0), (e: unknown) => e instanceof InvalidWriteError && e.repeated);
      assert.equal(db.io.sizeOf(db.databasePath), 0);
      db.journalActive = true;
      db.writeDatabase(fd, page(0, 1, 1), 0);
      assert.throws(() => db.writeDatabase(fd, Buffer.alloc(PAGE / 2), PAGE), InvalidWriteError);
      assert.throws(() => db.writeDatabase(fd, Buffer.alloc(PAGE), PAGE + 1), InvalidWriteError);
    } finally {
      db.io.close(fd);
    }
  });

  test('a WAL write without the WAL WRITE lock is refused (EXCLUSIVE locking mode)', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 1);
    const fd = db.io.open(db.walPath, 'create');
    try {
      assert.throws(() => db.writeWAL(fd, Buffer.alloc(32), 0), InvalidWriteError);
    } finally {
      db.io.close(fd);
    }
  });

  test('a page changed behind the store\'s back fails the next commit', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    const image = readFileSync(db.databasePath);
    image[PAGE + 10] ^= 0xff;
    writeFileSync(db.databasePath, image);
    // The next transaction rewrites only page 1; page 2 is in its dirty set by mistake.
    const jfd = db.io.open(db.journalPath, 'create');
    db.writeJournal(jfd, buildJournalHeader({ nRec: 0, nonce: 1, initialPageCount: 2, sectorSize: 512, pageSize: PAGE }), 0);
    db.io.close(jfd);
    const fd = db.io.open(db.databasePath, 'readWrite');
    db.writeDatabase(fd, page(3, 1, 2), 0);
    db.io.close(fd);
    db.dirty.add(2);
    assert.throws(() => commitJournal(db, 'delete'), /page 2 changed behind/);
    assert.equal(db.pos.txid, 1n, 'no position change');
  });

  test('PERSIST commit signal: exactly 28 zero bytes at offset 0', () => {
    assert.equal(isPersistCommit(Buffer.alloc(28), 0), true);
    assert.equal(isPersistCommit(Buffer.alloc(28), 512), false);
    assert.equal(isPersistCommit(Buffer.alloc(512), 0), false);
    const b = Buffer.alloc(28);
    b[3] = 1;
    assert.equal(isPersistCommit(b, 0), false);
  });

  test('journal records restore pages at reopen (hot journal) and the last LTX is re-applied', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    const committed = readFileSync(db.databasePath);
    // A crash after the LTX of a second transaction was written but before
    // the journal was finalized cannot be staged here without CrashIO;
    // stage the other half: a hot journal of an uncommitted transaction.
    const jfd = db.io.open(db.journalPath, 'create');
    const rec = buildJournalRecord(2, committed.subarray(PAGE, 2 * PAGE), 5);
    db.io.write(jfd, buildJournalHeader({ nRec: 1, nonce: 5, initialPageCount: 2, sectorSize: 512, pageSize: PAGE }), 0);
    db.io.write(jfd, rec, 512);
    db.io.close(jfd);
    const fd = db.io.open(db.databasePath, 'readWrite');
    db.io.write(fd, Buffer.alloc(PAGE, 0xee), PAGE);
    db.io.write(fd, Buffer.alloc(PAGE, 0xee), 2 * PAGE);
    db.io.close(fd);
    const again = open().db('a.db')!;
    assert.ok(readFileSync(again.databasePath).equals(committed));
    assert.equal(again.pos.txid, 1n);
    assert.equal(again.io.exists(again.journalPath), false);
  });
});

describe('LiteFS names', () => {
  test('suffixes in LiteFS order (-lock is the HALT lock file); bare suffixes are not shown', () => {
    assert.deepEqual(parseName('db'), { db: 'db', kind: 'database' });
    assert.deepEqual(parseName('db-journal'), { db: 'db', kind: 'journal' });
    assert.deepEqual(parseName('db-wal'), { db: 'db', kind: 'wal' });
    assert.deepEqual(parseName('db-shm'), { db: 'db', kind: 'shm' });
    assert.deepEqual(parseName('db-pos'), { db: 'db', kind: 'pos' });
    assert.deepEqual(parseName('a-wal-journal'), { db: 'a-wal', kind: 'journal' });
    assert.deepEqual(parseName('db-lock'), { db: 'db', kind: 'lock' });
    assert.equal(parseName('-wal'), null);
  });
});
