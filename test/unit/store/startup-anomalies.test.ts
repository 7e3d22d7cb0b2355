import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, closeSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { buildWalHeader, encodeWalFrame } from '../../../src/sqlite/index.js';
import { join } from 'node:path';
import { decodeFileSync, formatHex16 } from '../../../src/ltx/index.js';
import type { StoreEvent } from '../../../src/store/messages.js';
import { type Harness, PAGE, WalWriter, page, forensicDirs, harness, imageChecksum, ltxNames, report, tx } from './store-fixture.js';

/**
 * ARCHITECTURE §3.3: each start-up anomaly is set aside in
 * `<data>/forensic/<db>/<UTC time>/` with report.json, the store opens, and
 * the database keeps working. Real files in a temporary data dir.
 */

function overwrite(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

function forensicEvents(events: StoreEvent[]): Extract<StoreEvent, { type: 'forensic' }>[] {
  return events.filter((e): e is Extract<StoreEvent, { type: 'forensic' }> => e.type === 'forensic');
}

describe('store: start-up anomalies (forensic folders, re-base)', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });
  afterEach(() => {
    rmSync(h.base, { recursive: true, force: true });
  });

  test('invalid database header: every file moved to forensic, the database starts empty and works', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 2);
    tx(db, 2, 2);
    const original = readFileSync(db.databasePath);
    overwrite(db.databasePath, 0, Buffer.from('not a sqlite header'));
    const store = h.open();
    db = store.db('a.db')!;
    assert.equal(db.pageN, 0);
    assert.equal(db.pos.txid, 0n);
    assert.deepEqual(ltxNames(db), []);
    const [dir, ...more] = forensicDirs(h, 'a.db');
    assert.equal(more.length, 0);
    assert.ok(dir!.startsWith(join(h.dataDir, 'forensic', 'a.db')));
    const r = report(dir!);
    assert.equal(r.reason, 'invalid database header');
    assert.equal(r.lastLTX, '0000000000000002-0000000000000002.ltx');
    const kept = readFileSync(join(dir!, 'database'));
    assert.deepEqual(kept.subarray(19), original.subarray(19), 'database moved as it was');
    assert.deepEqual(readdirSync(join(dir!, 'ltx')), ['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);
    assert.equal(forensicEvents(h.events).length, 1);
    assert.equal(h.logs.filter((l) => l.includes('invalid database header')).length, 1);
    // Nothing under dbs/ but the database itself.
    assert.deepEqual(readdirSync(join(h.dataDir, 'dbs')), ['a.db']);
    // Starts empty and takes new transactions from TXID 1.
    store.createDB('a.db');
    tx(db, 5, 1);
    assert.equal(db.pos.txid, 1n);
    h.open();
    assert.equal(forensicDirs(h, 'a.db').length, 1, 'a clean reopen adds no forensic folder');
  });

  test('last LTX fails to verify: set aside, previous one used; the file is past it, so it is re-based onto a snapshot', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 3);
    tx(db, 2, 3, [2]);
    tx(db, 3, 3, [3]);
    const image = readFileSync(db.databasePath);
    const bad = join(db.ltxDir, '0000000000000003-0000000000000003.ltx');
    overwrite(bad, 200, Buffer.from([0xde, 0xad]));
    const store = h.open();
    db = store.db('a.db')!;
    const dirs = forensicDirs(h, 'a.db');
    assert.equal(dirs.length, 2);
    assert.match(String(report(dirs[0]!).reason), /last LTX file 0000000000000003-0000000000000003\.ltx fails to verify/);
    assert.deepEqual(readdirSync(join(dirs[0]!, 'ltx')), ['0000000000000003-0000000000000003.ltx']);
    // The database file (at TXID 3) is the truth: snapshot 1-4 of it.
    assert.deepEqual(readFileSync(db.databasePath), image, 'database file untouched');
    const r = report(dirs[1]!);
    assert.match(String(r.reason), /does not match LTX post-apply checksum/);
    assert.equal(r.rebasedTXID, formatHex16(4n));
    assert.deepEqual(readdirSync(join(dirs[1]!, 'ltx')), ['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);
    assert.deepEqual(readFileSync(join(dirs[1]!, 'database')), image);
    assert.deepEqual(ltxNames(db), ['0000000000000001-0000000000000004.ltx']);
    const snap = decodeFileSync(join(db.ltxDir, '0000000000000001-0000000000000004.ltx'));
    assert.equal(snap.header.preApplyChecksum, 0n);
    assert.deepEqual(snap.pgnos, [1, 2, 3]);
    assert.equal(snap.trailer.postApplyChecksum, imageChecksum(image));
    assert.equal(db.pos.txid, 4n);
    const events = forensicEvents(h.events);
    assert.deepEqual(events.map((e) => e.rebasedTXID), [null, formatHex16(4n)]);
    // The chain continues from the snapshot, also across a reopen.
    tx(db, 9, 3, [1]);
    assert.equal(decodeFileSync(join(db.ltxDir, '0000000000000005-0000000000000005.ltx')).header.preApplyChecksum, snap.trailer.postApplyChecksum);
    db = h.open().db('a.db')!;
    assert.equal(db.pos.txid, 5n);
    assert.equal(forensicEvents(h.events).length, 0);
  });

  test('last LTX fails to verify but the database is at the previous one: no re-base', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 2);
    tx(db, 2, 2);
    // A third file that never committed (e.g. copied in by hand) and is corrupt.
    const two = readFileSync(join(db.ltxDir, '0000000000000002-0000000000000002.ltx'));
    const bad = join(db.ltxDir, '0000000000000003-0000000000000003.ltx');
    const fd = openSync(bad, 'w');
    writeSync(fd, two.subarray(0, 150));
    closeSync(fd);
    db = h.open().db('a.db')!;
    assert.equal(db.pos.txid, 2n);
    assert.equal(forensicDirs(h, 'a.db').length, 1);
    assert.deepEqual(ltxNames(db), ['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);
    // The next TXID is 3 again: the set-aside file never reached the database.
    tx(db, 3, 2, [2]);
    assert.equal(db.pos.txid, 3n);
  });

  test('WAL shorter than the last LTX says: WAL set aside, database rebuilt from the file plus the WAL\'s LTX files', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 2);
    // journal_mode=WAL: page 1 through a rollback journal.
    tx(db, 1, 2, [1], true);
    assert.equal(db.mode, 'wal');
    const wal = new WalWriter(db);
    wal.transaction(2, 2, [2]);
    wal.transaction(3, 3, [1, 3]);
    assert.equal(db.pos.txid, 4n);
    const walSize = db.io.sizeOf(db.walPath)!;
    // The daemon dies; the WAL loses its last frame (only the valid part counts).
    truncateSync(db.walPath, walSize - PAGE);
    db = h.open().db('a.db')!;
    const dirs = forensicDirs(h, 'a.db');
    assert.equal(dirs.length, 1, 'no re-base: the LTX files of the WAL rebuild the database');
    const r = report(dirs[0]!);
    assert.match(String(r.reason), /^WAL ends at \d+, before the end of the last LTX file \(\d+\)/);
    assert.deepEqual(r.replayedLTX, ['0000000000000003-0000000000000003.ltx', '0000000000000004-0000000000000004.ltx']);
    assert.equal(db.pos.txid, 4n);
    assert.deepEqual(ltxNames(db).length, 4);
    assert.equal(readFileSync(join(dirs[0]!, 'wal')).length, walSize - PAGE);
    assert.equal(existsSync(db.walPath), false);
    // The database opened, agrees with its newest LTX file, and takes commits.
    const image = readFileSync(db.databasePath);
    assert.equal(db.pos.postApplyChecksum, imageChecksum(image.subarray(0, db.pageN * PAGE)));
    tx(db, 7, db.pageN, [2]);
  });

  test('WAL commits cut by a power loss: a torn LTX file and the newer one after the hole are set aside together; the WAL writes them again', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 2);
    tx(db, 1, 2, [1], true);
    const wal = new WalWriter(db);
    wal.transaction(2, 2, [2]);
    wal.transaction(3, 3, [1, 3]);
    wal.transaction(4, 3, [2]);
    assert.equal(db.pos.txid, 5n);
    const pos = db.pos;
    assert.equal(db.pendingLTX.length, 3, 'WAL commits wait for their group sync');
    // What ext4 may leave: TXID 4's file empty, TXID 5's whole.
    truncateSync(join(db.ltxDir, '0000000000000004-0000000000000004.ltx'), 0);
    db = h.open().db('a.db')!;
    const [dir, ...more] = forensicDirs(h, 'a.db');
    assert.equal(more.length, 0);
    const r = report(dir!);
    assert.match(String(r.reason), /^LTX file 0000000000000004-0000000000000004\.ltx breaks the chain/);
    assert.deepEqual(r.setAside, ['0000000000000004-0000000000000004.ltx', '0000000000000005-0000000000000005.ltx']);
    assert.ok(h.logs.some((l) => l.includes('recovered 2 committed WAL transaction(s)')), h.logs.join('\n'));
    assert.equal(db.pos.txid, 5n);
    assert.equal(db.pos.postApplyChecksum, pos.postApplyChecksum, 'the same transactions, rebuilt from the WAL');
    assert.equal(ltxNames(db).length, 5);
    const image = readFileSync(db.databasePath);
    assert.equal(db.pos.postApplyChecksum, imageChecksum(image.subarray(0, db.pageN * PAGE)));
    db = h.open().db('a.db')!;
    assert.equal(forensicDirs(h, 'a.db').length, 1, 'a clean reopen adds no forensic folder');
  });

  test('an older WAL back after a power loss while newer LTX files survived: the WAL is set aside, the LTX files rebuild the database', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 2);
    tx(db, 1, 2, [1], true);
    new WalWriter(db, 100).transaction(2, 2, [2]);
    const olderWAL = readFileSync(db.walPath);
    // A checkpoint copies the frame into the database file, then SQLite restarts the WAL with new salts.
    const fd = db.io.open(db.databasePath, 'readWrite');
    db.writeDatabase(fd, page(2, 2, 2, true), PAGE);
    db.io.close(fd);
    const newer = new WalWriter(db, 101);
    newer.transaction(3, 3, [1, 3]);
    newer.transaction(4, 3, [2]);
    assert.equal(db.pos.txid, 5n);
    const pos = db.pos;
    // The restart is undone; TXIDs 4 and 5 (written back by the OS) survive.
    writeFileSync(db.walPath, olderWAL);
    db = h.open().db('a.db')!;
    const [dir, ...more] = forensicDirs(h, 'a.db');
    assert.equal(more.length, 0);
    const r = report(dir!);
    assert.match(String(r.reason), /^WAL \(salts 64\/4d\) is older than the last LTX file \(salts 65\/4d\)/);
    assert.deepEqual(r.replayedLTX, ['0000000000000004-0000000000000004.ltx', '0000000000000005-0000000000000005.ltx']);
    assert.deepEqual(readFileSync(join(dir!, 'wal')), olderWAL);
    assert.equal(db.pos.txid, 5n);
    assert.equal(db.pos.postApplyChecksum, pos.postApplyChecksum);
    const image = readFileSync(db.databasePath);
    assert.equal(db.pos.postApplyChecksum, imageChecksum(image.subarray(0, db.pageN * PAGE)));
  });

  test('checksum after recovery differs (a page changed while stopped): forensic copy, snapshot 1-(N+1), older LTX moved aside', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 3);
    tx(db, 2, 3, [1]);
    overwrite(db.databasePath, 2 * PAGE + 10, Buffer.from('changed behind our back'));
    const image = readFileSync(db.databasePath);
    db = h.open().db('a.db')!;
    const [dir, ...more] = forensicDirs(h, 'a.db');
    assert.equal(more.length, 0);
    const r = report(dir!);
    assert.match(String(r.reason), /^database checksum [0-9a-f]{16} on TXID 0000000000000002 does not match LTX post-apply checksum/);
    assert.deepEqual(r.before, { txid: formatHex16(2n), postApplyChecksum: (r.before as { postApplyChecksum: string }).postApplyChecksum });
    assert.deepEqual(readFileSync(join(dir!, 'database')), image);
    assert.deepEqual(readdirSync(join(dir!, 'ltx')), ['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);
    assert.deepEqual(ltxNames(db), ['0000000000000001-0000000000000003.ltx']);
    assert.equal(db.pos.txid, 3n);
    assert.equal(db.pos.postApplyChecksum, imageChecksum(image));
    assert.equal(h.logs.filter((l) => l.includes('re-based onto snapshot TXID 0000000000000003')).length, 1);
    assert.ok(!existsSync(join(h.dataDir, 'dbs', 'forensic')), 'forensic folder outside dbs/');
  });

  test('a stale WAL beside a rollback-mode database is moved to wal.removed, not checkpointed over newer pages', () => {
    let db = h.open().createDB('a.db');
    tx(db, 1, 2);
    const image = readFileSync(db.databasePath);
    const built = buildWalHeader({ bigEndianChecksum: false, pageSize: PAGE, checkpointSeq: 0, salt1: 1, salt2: 2 });
    const frame = encodeWalFrame({ bigEndianChecksum: false, salt1: 1, salt2: 2 }, built.header.checksum, 2, 2, page(0xee, 2, 2, true));
    writeFileSync(db.walPath, Buffer.concat([built.bytes, frame.bytes]));
    db = h.open().db('a.db')!;
    assert.deepEqual(readFileSync(db.databasePath), image);
    assert.equal(existsSync(`${db.walPath}.removed`), true);
    assert.equal(db.pos.txid, 1n);
  });
});
