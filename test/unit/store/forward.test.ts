import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { WAL_HEADER_SIZE, type WalChecksum, buildJournalHeader, buildWalHeader, encodeWalFrame } from '../../../src/sqlite/index.js';
import { commitJournal, stageJournalCommit } from '../../../src/store/commit-journal.js';
import { commitWAL, stageWALCommit } from '../../../src/store/commit-wal.js';
import type { DB } from '../../../src/store/db.js';
import { type PendingWrite, completedCommitFrame } from '../../../src/store/forward.js';
import { Lock } from '../../../src/store/locks.js';
import type { Store } from '../../../src/store/store.js';
import { type Harness, PAGE, harness, ltxNames, page, tx } from './store-fixture.js';

/**
 * Staging a replica's transaction for the primary under a HALT lock
 * (store/forward.ts): the staged LTX file must be byte for byte the one the
 * commit writes afterwards, and staging must change nothing else.
 */
describe('forwarded commits: staging, commit frames', () => {
  let h: Harness;
  let store: Store;
  let db: DB;
  let stage: string;

  beforeEach(() => {
    h = harness();
    store = h.open();
    db = store.createDB('a.db');
    stage = join(h.base, 'stage');
    db.io.mkdirp(stage);
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  /** Writes a DELETE-mode transaction up to (not including) its finalize. */
  function journalTx(fill: number, pages: number, restore?: Buffer): void {
    const jfd = db.io.open(db.journalPath, 'create');
    db.writeJournal(jfd, buildJournalHeader({ nRec: 0, nonce: 1, initialPageCount: db.pageN, sectorSize: 512, pageSize: PAGE, hasMagic: true }), 0);
    db.io.close(jfd);
    const fd = db.io.open(db.databasePath, 'readWrite');
    if (restore !== undefined) {
      for (let off = 0; off < restore.length; off += PAGE) db.writeDatabase(fd, restore.subarray(off, off + PAGE), off);
    } else for (let pgno = 1; pgno <= pages; pgno++) db.writeDatabase(fd, page(fill, pgno, pages), (pgno - 1) * PAGE);
    db.io.close(fd);
  }

  test('journal: the staged file is the committed file; staging alone changes nothing', () => {
    tx(db, 1, 2);
    const pos = db.pos;
    journalTx(2, 3);
    h.now += 5_000;
    db.pinnedTimestamp = BigInt(h.now);
    const staged = stageJournalCommit(db, stage);
    assert.ok(staged !== null);
    assert.deepEqual([staged.txid, db.pos], [2n, pos], 'the position has not moved');
    assert.deepEqual(ltxNames(db), ['0000000000000001-0000000000000001.ltx']);
    assert.ok(db.io.exists(db.journalPath), 'the journal is not finalized');
    h.now += 5_000; // the commit comes later; the pinned timestamp keeps the bytes equal
    commitJournal(db, 'delete', { dropNetNoop: true });
    assert.deepEqual([db.pos.txid, db.pos.postApplyChecksum], [staged.txid, staged.postApply]);
    assert.ok(readFileSync(join(db.ltxDir, '0000000000000002-0000000000000002.ltx')).equals(readFileSync(staged.path)));
  });

  test('journal: a rolled-back transaction (net no-op) stages nothing and, with dropNetNoop, commits nothing', () => {
    tx(db, 1, 2);
    const before = readFileSync(db.databasePath);
    const pos = db.pos;
    journalTx(0, 0, before);
    assert.equal(stageJournalCommit(db, stage), null);
    commitJournal(db, 'delete', { dropNetNoop: true });
    assert.deepEqual([db.pos, ltxNames(db).length, db.io.exists(db.journalPath)], [pos, 1, false]);
  });

  /**
   * SQLite's WAL writes: each frame as two writes (frame header, page). The
   * write that completes a commit frame is recorded in `completed`, and made
   * only when `hold` is false (else it is left in `held`, as the FUSE layer
   * holds it back while the primary decides).
   */
  function walTx(fill: number, pages: number, writes: number[], at: { offset: number; checksum: WalChecksum }, hold = false): { completed: number[]; held: PendingWrite | null } {
    const fd = db.io.open(db.walPath, db.io.exists(db.walPath) ? 'readWrite' : 'createNew');
    const completed: number[] = [];
    let held: PendingWrite | null = null;
    try {
      const ctx = { bigEndianChecksum: false, salt1: 4242, salt2: 77 };
      writes.forEach((pgno, i) => {
        const frame = encodeWalFrame(ctx, at.checksum, pgno, i === writes.length - 1 ? pages : 0, page(fill, pgno, pages, true));
        const head = frame.bytes.subarray(0, 24);
        db.writeWAL(fd, head, at.offset);
        assert.equal(completedCommitFrame(db, fd, head, at.offset), null, 'a frame header alone completes nothing');
        const body = frame.bytes.subarray(24);
        const c = completedCommitFrame(db, fd, body, at.offset + 24);
        if (c !== null) completed.push(c);
        if (c !== null && hold) held = { data: body, offset: at.offset + 24 };
        else db.writeWAL(fd, body, at.offset + 24);
        // A frame written with one call is recognized too.
        assert.equal(completedCommitFrame(db, fd, frame.bytes, at.offset), c);
        at.checksum = frame.checksum;
        at.offset += frame.bytes.length;
      });
    } finally {
      db.io.close(fd);
    }
    return { completed, held };
  }

  function startWAL(): { offset: number; checksum: WalChecksum } {
    tx(db, 1, 2, undefined, true);
    assert.ok(db.locks.tryLock(9n, Lock.WRITE));
    const built = buildWalHeader({ bigEndianChecksum: false, pageSize: PAGE, checkpointSeq: 0, salt1: 4242, salt2: 77 });
    const fd = db.io.open(db.walPath, 'createNew');
    db.writeWAL(fd, built.bytes, 0);
    db.io.close(fd);
    return { offset: WAL_HEADER_SIZE, checksum: built.header.checksum };
  }

  test('WAL: only the write that completes a commit frame is the commit point; staged before it is made, the file is the committed file', () => {
    const at = startWAL();
    const { completed, held } = walTx(2, 3, [2, 3, 1], at, true);
    assert.deepEqual(completed, [WAL_HEADER_SIZE + 2 * (24 + PAGE)], 'the third frame carries the commit');
    assert.ok(held !== null);
    const pos = db.pos;
    db.pinnedTimestamp = 123_456n;
    assert.equal(stageWALCommit(db, stage), null, 'without the held write the frame is incomplete');
    const staged = stageWALCommit(db, stage, held);
    assert.ok(staged !== null);
    assert.deepEqual([staged.txid, staged.walEnd, db.pos], [2n, at.offset, pos]);
    assert.deepEqual(readdirSync(db.ltxDir).filter((n) => n.endsWith('.ltx')).length, 1);
    // The primary applied it: the write is made, and the commit writes the same bytes.
    const fd = db.io.open(db.walPath, 'readWrite');
    db.writeWAL(fd, held.data, held.offset);
    db.io.close(fd);
    assert.ok(commitWAL(db));
    assert.ok(readFileSync(join(db.ltxDir, '0000000000000002-0000000000000002.ltx')).equals(readFileSync(staged.path)));
  });

  test('WAL: a refused commit (its completing write never made) leaves no transaction; the next one at the same offsets commits', () => {
    const at = startWAL();
    const start = { ...at };
    const { held } = walTx(2, 3, [2, 3, 1], at, true);
    assert.ok(held !== null);
    assert.equal(commitWAL(db), false, 'SQLite rolled it back: nothing to commit');
    // SQLite writes its next transaction where the refused one began.
    walTx(3, 2, [1, 2], start);
    assert.ok(commitWAL(db));
    assert.equal(db.pos.txid, 2n);
  });
});
