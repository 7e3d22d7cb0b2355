import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { parseDatabaseHeader } from '../../../src/sqlite/header.js';
import {
  buildJournalHeader,
  buildJournalRecord,
  journalRecordChecksum,
  JournalReader,
  parseJournalHeader,
  type JournalReaderOptions,
} from '../../../src/sqlite/journal.js';
import { bufferReader } from '../../../src/sqlite/positional.js';
import { applyRollbackPlan, planRollback } from '../../../src/sqlite/rollback.js';
import { skipUnless } from '../../helpers/prereq.js';
import { copyFixtures, fdFile, ltxFixture, sqlite3, withFd, withTempDir } from './helpers.js';

const skip = skipUnless(['sqlite3']);

function patternPage(size: number, seed = 0): Buffer {
  const page = Buffer.alloc(size);
  for (let i = 0; i < size; i++) page[i] = (i + seed) & 0xff;
  return page;
}

function reader(bytes: Buffer, options?: JournalReaderOptions): JournalReader {
  return new JournalReader(bufferReader(bytes), options);
}

function pgnos(r: JournalReader): number[] {
  const out: number[] = [];
  for (let rec = r.next(); rec !== null; rec = r.next()) out.push(rec.pgno);
  return out;
}

/** Rolls back `<db>-journal` onto `<db>` with our code, then removes the journal. */
function rollBackWithOurCode(db: string): void {
  const journalPath = `${db}-journal`;
  withFd(journalPath, 'r', (jfd) =>
    withFd(db, 'r+', (dbfd) => {
      const journal = fdFile(jfd);
      const plan = planRollback(new JournalReader(journal));
      assert.ok(plan, 'journal has a valid header');
      applyRollbackPlan(plan, journal, fdFile(dbfd));
    }),
  );
  unlinkSync(journalPath);
}

describe('journal record checksum (formats.md B.9 vectors)', () => {
  test('nonce 12345678 over a 1024-byte pattern page', () => {
    assert.equal(journalRecordChecksum(0x12345678, patternPage(1024)), 0x123458c0);
  });
  test('nonce 0 over a 4096-byte pattern page', () => {
    assert.equal(journalRecordChecksum(0, patternPage(4096)), 0x9f0);
  });
});

describe('hot-journal-multisegment fixture', () => {
  const journal = ltxFixture('sqlite-generated', 'hot-journal-multisegment', 'hot.db-journal');

  test('29 synced segments of 2 records; the unsynced 30th header stops playback', () => {
    const r = reader(journal);
    assert.equal(r.pageSize, 1024);
    assert.equal(r.sectorSize, 512);
    assert.equal(r.firstHeader?.initialPageCount, 62);
    const pages = pgnos(r);
    assert.equal(pages.length, 58);
    assert.deepEqual(pages, Array.from({ length: 58 }, (_, i) => i + 3));
    assert.equal(r.stopReason, 'no-magic');
    assert.deepEqual(r.segments.map((s) => s.offset), Array.from({ length: 29 }, (_, i) => i * 3072));
    assert.ok(r.segments.every((s) => s.header.nRec === 2 && s.header.hasMagic));
    assert.equal(new Set(r.segments.map((s) => s.header.nonce)).size, 29, 'each segment has its own nonce');
    const unsynced = parseJournalHeader(journal.subarray(89088));
    assert.equal(unsynced.hasMagic, false);
    assert.equal(unsynced.nRec, 0);
    assert.deepEqual([unsynced.initialPageCount, unsynced.sectorSize, unsynced.pageSize], [62, 512, 1024]);
  });

  test('plan: truncate to 62 pages and restore pages 3..60', () => {
    const plan = planRollback(reader(journal));
    assert.ok(plan);
    assert.equal(plan.initialPageCount, 62);
    assert.equal(plan.pageSize, 1024);
    assert.equal(plan.segmentCount, 29);
    assert.equal(plan.recordCount, 58);
    assert.deepEqual([...plan.pages.keys()], Array.from({ length: 58 }, (_, i) => i + 3));
    // Segment s holds pages 3+2s and 4+2s, each record after the 512-byte header.
    assert.equal(plan.pages.get(3), 512 + 4);
    assert.equal(plan.pages.get(4), 512 + 1032 + 4);
    assert.equal(plan.pages.get(60), 28 * 3072 + 512 + 1032 + 4);
  });

  test('our rollback gives 60 intact rows and the same bytes as SQLite\'s own rollback', { skip }, () => {
    withTempDir((dir) => {
      const ours = join(dir, 'ours');
      const theirs = join(dir, 'theirs');
      for (const sub of [ours, theirs]) {
        mkdirSync(sub);
        copyFixtures(sub, 'hot-journal-multisegment', ['hot.db', 'hot.db-journal']);
      }
      rollBackWithOurCode(join(ours, 'hot.db'));
      const ourBytes = readFileSync(join(ours, 'hot.db'));
      assert.equal(ourBytes.length, 62 * 1024);

      // SQLite rolls the hot journal back on first read.
      assert.equal(sqlite3(join(theirs, 'hot.db'), 'PRAGMA integrity_check;'), 'ok');
      assert.equal(existsSync(join(theirs, 'hot.db-journal')), false);
      const theirBytes = readFileSync(join(theirs, 'hot.db'));
      assert.equal(theirBytes.length, ourBytes.length);
      assert.ok(ourBytes.equals(theirBytes), 'rolled-back database differs from SQLite\'s');

      assert.equal(sqlite3(join(ours, 'hot.db'), 'SELECT count(*), sum(length(x)) FROM t;'), '60|54000');
      assert.equal(sqlite3(join(ours, 'hot.db'), 'PRAGMA integrity_check;'), 'ok');
    });
  });
});

describe('journal-crafted fixture', () => {
  const journal = ltxFixture('sqlite-generated', 'journal-crafted', 'jc.db-journal');

  test('one record with checksum equal to the nonce', () => {
    const r = reader(journal);
    assert.equal(r.firstHeader?.nonce, 0xcafebabe);
    assert.equal(r.firstHeader?.initialPageCount, 2);
    const rec = r.next();
    assert.ok(rec);
    assert.equal(rec.pgno, 1);
    assert.equal(journalRecordChecksum(0xcafebabe, rec.data), 0xcafebabe);
    assert.equal(r.next(), null);
  });

  test('rolling back restores user_version 0 and truncates to 2048 bytes, as SQLite does', { skip }, () => {
    withTempDir((dir) => {
      const ours = join(dir, 'ours');
      const theirs = join(dir, 'theirs');
      for (const sub of [ours, theirs]) {
        mkdirSync(sub);
        copyFixtures(sub, 'journal-crafted', ['jc.db', 'jc.db-journal']);
      }
      assert.equal(parseDatabaseHeader(readFileSync(join(ours, 'jc.db'))).userVersion, 0x777);
      rollBackWithOurCode(join(ours, 'jc.db'));
      assert.equal(statSync(join(ours, 'jc.db')).size, 2048);
      assert.equal(parseDatabaseHeader(readFileSync(join(ours, 'jc.db'))).userVersion, 0);
      assert.equal(sqlite3(join(theirs, 'jc.db'), 'PRAGMA user_version;'), '0');
      assert.ok(readFileSync(join(ours, 'jc.db')).equals(readFileSync(join(theirs, 'jc.db'))));
      assert.equal(sqlite3(join(ours, 'jc.db'), 'PRAGMA user_version;'), '0');
    });
  });
});

describe('journal playback rules', () => {
  const P = 512;
  const S = 512;
  const header = (nRec: number, nonce: number, extra: Partial<Parameters<typeof buildJournalHeader>[0]> = {}): Buffer =>
    buildJournalHeader({ nRec, nonce, initialPageCount: 10, sectorSize: S, pageSize: P, ...extra });
  const rec = (pgno: number, nonce: number, seed = pgno): Buffer => buildJournalRecord(pgno, patternPage(P, seed), nonce);
  /** Pads to the next sector boundary, where the next header goes. */
  const pad = (parts: Buffer[]): Buffer => {
    const b = Buffer.concat(parts);
    return Buffer.concat([b, Buffer.alloc((S - (b.length % S)) % S)]);
  };

  test('nRec 0: no records in a hot journal, records to the end for our own rollback', () => {
    const j = Buffer.concat([header(0, 1), rec(2, 1), rec(3, 1)]);
    assert.deepEqual(pgnos(reader(j)), []);
    assert.deepEqual(pgnos(reader(j, { nRecZero: 'own' })), [2, 3]);
    assert.equal(planRollback(reader(j))?.initialPageCount, 10, 'the first header still sets the size');
  });

  test('nRec 0xFFFFFFFF: records fill the file and no further header is read', () => {
    const j = Buffer.concat([header(0xffffffff, 7), rec(2, 7), rec(4, 7), rec(6, 7), Buffer.alloc(100)]);
    const r = reader(j);
    assert.deepEqual(pgnos(r), [2, 4, 6]);
    assert.equal(r.segments[0]?.recordCount, 3);
    assert.equal(r.stopReason, 'eof');
  });

  test('a header without the magic ends playback; a zeroed first header means nothing to roll back', () => {
    const j = Buffer.concat([pad([header(1, 1), rec(2, 1)]), pad([header(1, 2, { hasMagic: false }), rec(3, 2)])]);
    const r = reader(j);
    assert.deepEqual(pgnos(r), [2]);
    assert.equal(r.stopReason, 'no-magic');
    const zeroed = Buffer.concat([Buffer.alloc(28), Buffer.alloc(S - 28), rec(2, 0)]);
    assert.equal(planRollback(reader(zeroed)), null);
    assert.equal(planRollback(reader(Buffer.alloc(0))), null);
  });

  test('pgno 0, the lock page and a checksum mismatch each stop playback', () => {
    const zero = Buffer.concat([header(3, 5), rec(2, 5), rec(0, 5), rec(3, 5)]);
    const zr = reader(zero);
    assert.deepEqual(pgnos(zr), [2]);
    assert.equal(zr.stopReason, 'zero-pgno');
    const lockPage = 0x40000000 / P + 1;
    const sj = Buffer.concat([header(3, 5), rec(2, 5), rec(lockPage, 5), rec(3, 5)]);
    const sr = reader(sj);
    assert.deepEqual(pgnos(sr), [2]);
    assert.equal(sr.stopReason, 'lock-page');
    const bad = rec(3, 5);
    bad.writeUInt32BE(bad.readUInt32BE(P + 4) + 1, P + 4);
    const cr = reader(Buffer.concat([header(3, 5), rec(2, 5), bad, rec(4, 5)]));
    assert.deepEqual(pgnos(cr), [2]);
    assert.equal(cr.stopReason, 'checksum-mismatch');
  });

  test('records past the end of the file stop playback', () => {
    const j = Buffer.concat([header(3, 5), rec(2, 5), rec(3, 5).subarray(0, 100)]);
    const r = reader(j);
    assert.deepEqual(pgnos(r), [2]);
    assert.equal(r.stopReason, 'eof');
  });

  test('out-of-range sector or page sizes in the first header stop playback', () => {
    for (const extra of [{ sectorSize: 16 }, { sectorSize: 1000 }, { sectorSize: 131072 }, { pageSize: 256 }, { pageSize: 3000 }]) {
      const h = buildJournalHeader({ nRec: 1, nonce: 1, initialPageCount: 10, sectorSize: S, pageSize: P, ...extra });
      h.writeUInt32BE(extra.sectorSize ?? S, 20);
      const r = reader(Buffer.concat([h.subarray(0, S), rec(2, 1)]));
      assert.equal(r.stopReason, 'bad-sizes', JSON.stringify(extra));
      assert.equal(planRollback(r), null);
    }
  });

  test('page size 0 falls back to the database page size', () => {
    const j = Buffer.concat([header(1, 3, { pageSize: 0 }), rec(2, 3)]);
    assert.equal(reader(j).stopReason, 'bad-sizes');
    assert.deepEqual(pgnos(reader(j, { databasePageSize: P })), [2]);
  });

  test('the sector size comes from the first header only; later segments are sector-aligned', () => {
    const big = 1024;
    const first = buildJournalHeader({ nRec: 1, nonce: 1, initialPageCount: 10, sectorSize: big, pageSize: P });
    const second = buildJournalHeader({ nRec: 1, nonce: 2, initialPageCount: 99, sectorSize: 32, pageSize: 65536 });
    const seg1 = Buffer.concat([first, rec(2, 1)]);
    const gap = Buffer.alloc(big - (seg1.length % big));
    const secondPadded = Buffer.concat([second, Buffer.alloc(big - second.length)]);
    const r = reader(Buffer.concat([seg1, gap, secondPadded, rec(3, 2)]));
    assert.deepEqual(pgnos(r), [2, 3]);
    assert.deepEqual(r.segments.map((s) => s.offset), [0, 2 * big]);
    const plan = planRollback(reader(Buffer.concat([seg1, gap, secondPadded, rec(3, 2)])));
    assert.equal(plan?.initialPageCount, 10, 'later headers do not change the size');
  });

  test('pages beyond the initial size are skipped; a repeated page takes the later record', () => {
    const j = Buffer.concat([pad([header(2, 1), rec(2, 1, 1), rec(11, 1)]), header(1, 2), rec(2, 2, 99)]);
    const plan = planRollback(reader(j));
    assert.ok(plan);
    assert.equal(plan.recordCount, 3);
    assert.deepEqual([...plan.pages.keys()], [2]);
    assert.equal(plan.pages.get(2), 4 * S + S + 4, "second header at 2048, its first record after one sector");
  });
});

