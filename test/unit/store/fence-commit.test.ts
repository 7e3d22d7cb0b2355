import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { buildJournalHeader, buildJournalRecord } from '../../../src/sqlite/index.js';
import { commitJournal } from '../../../src/store/commit-journal.js';
import { CommitFencedError, WriteFence } from '../../../src/store/fence.js';
import type { StoreEvent } from '../../../src/store/messages.js';
import { recoverToLastLTX } from '../../../src/store/step-down.js';
import { Store } from '../../../src/store/store.js';
import { PAGE, WalWriter, ltxNames, page, tx } from './store-fixture.js';

/** Commit refusal past the lease deadline and step-down recovery, on the store alone (no mount). */
describe('fenced commits and step-down recovery', () => {
  let base = '';
  let now = 0;
  let fence: WriteFence;
  let store: Store;
  let events: StoreEvent[];

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'litefs-fence-'));
    now = 1_000;
    fence = new WriteFence(() => now);
    events = [];
    store = new Store({ dataDir: join(base, 'data'), compress: false, strictVerify: true, nodeId: 'n1' }, (e) => events.push(e), () => {}, undefined, Date.now, fence);
    store.open();
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  test('a journal commit at the deadline is refused; SQLite\'s rollback then finalizes with no LTX', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    const committed = readFileSync(db.databasePath);
    const pos = db.pos;
    fence.setDeadline(5_000);
    now = 5_000;
    assert.throws(() => tx(db, 2, 2), (e: unknown) => e instanceof CommitFencedError && e.kind === 'journal');
    assert.ok(db.io.exists(db.journalPath), 'the journal stays: nothing was acknowledged');
    assert.ok(db.journalActive, 'still a journal transaction');
    assert.deepEqual(ltxNames(db), ['0000000000000001-0000000000000001.ltx']);
    // TRUNCATE's signal is refused the same way.
    assert.throws(() => commitJournal(db, 'truncate'), CommitFencedError);
    // SQLite rolls back: the journal's pages go back into the file, then it finalizes.
    const fd = db.io.open(db.databasePath, 'readWrite');
    for (const pgno of [1, 2]) db.writeDatabase(fd, committed.subarray((pgno - 1) * PAGE, pgno * PAGE), (pgno - 1) * PAGE);
    db.io.close(fd);
    commitJournal(db, 'delete');
    assert.equal(db.io.exists(db.journalPath), false);
    assert.deepEqual(db.pos, pos);
    assert.deepEqual(ltxNames(db), ['0000000000000001-0000000000000001.ltx']);
    assert.equal(events.filter((e) => e.type === 'tx').length, 1);
  });

  test('before the deadline commits go through', () => {
    const db = store.createDB('a.db');
    fence.setDeadline(5_000);
    now = 4_999;
    tx(db, 1, 2);
    assert.equal(db.pos.txid, 1n);
  });

  test('a WAL commit frame past the deadline is refused; other frames are written', () => {
    const db = store.createDB('w.db');
    tx(db, 1, 2, undefined, true);
    const w = new WalWriter(db);
    w.transaction(2, 2, [2]);
    assert.equal(db.pos.txid, 2n);
    fence.setDeadline(5_000);
    now = 6_000;
    assert.throws(() => w.transaction(3, 2, [1, 2]), (e: unknown) => e instanceof CommitFencedError && e.kind === 'wal');
    // The first frame (no commit field) is in the WAL, past the last LTX's end.
    const walEnd = db.wal.offset;
    assert.equal(db.io.sizeOf(db.walPath), walEnd + 24 + PAGE);
    // The writer gives up: the release commits nothing.
    db.locks.releaseAll(9n);
    assert.equal(db.pos.txid, 2n);

    // Step-down: the frames past the last LTX are cut off.
    const owner = -7n;
    assert.ok(db.locks.tryAcquireWriteSet(owner, db.mode));
    const r = recoverToLastLTX(db);
    db.locks.releaseAll(owner);
    assert.equal(r.walTruncatedAt, walEnd);
    assert.equal(r.journalRemoved, false);
    assert.equal(db.io.sizeOf(db.walPath), walEnd);
    assert.equal(db.pos.txid, 2n);
  });

  test('step-down rolls a hot journal back to the last LTX and reports the rewritten ranges', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    const committed = readFileSync(db.databasePath);
    // An uncommitted transaction: page 2 journaled and rewritten, page 3 appended.
    const jfd = db.io.open(db.journalPath, 'create');
    db.writeJournal(jfd, buildJournalHeader({ nRec: 1, nonce: 5, initialPageCount: 2, sectorSize: 512, pageSize: PAGE }), 0);
    db.writeJournal(jfd, buildJournalRecord(2, committed.subarray(PAGE, 2 * PAGE), 5), 512);
    db.io.close(jfd);
    const fd = db.io.open(db.databasePath, 'readWrite');
    db.writeDatabase(fd, page(0xee, 2, 3), PAGE);
    db.writeDatabase(fd, page(0xee, 3, 3), 2 * PAGE);
    db.io.close(fd);
    const r = recoverToLastLTX(db);
    assert.ok(r.journalRemoved);
    assert.deepEqual(r.ranges, [{ off: PAGE, len: 2 * PAGE }]);
    assert.ok(readFileSync(db.databasePath).equals(committed));
    assert.equal(db.io.exists(db.journalPath), false);
    assert.equal(db.journalActive, false);
    assert.equal(db.dirty.size, 0);
    // The chain continues from the same position.
    tx(db, 4, 2);
    assert.equal(db.pos.txid, 2n);
  });

  test('step-down of a database that equals its last LTX changes nothing', () => {
    const db = store.createDB('a.db');
    tx(db, 1, 2);
    const r = recoverToLastLTX(db);
    assert.deepEqual(r, { ranges: [], journalRemoved: false, walTruncatedAt: null });
  });
});
