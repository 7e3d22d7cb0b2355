import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShmIndexCorruptError, ShortBufferError } from '../../../src/sqlite/errors.js';
import { bufferReader } from '../../../src/sqlite/positional.js';
import {
  buildEmptyWalShmHeader,
  buildShmHeader,
  encodeWalIndexHeader,
  parseShmHeader,
  READ_MARK_UNUSED,
  SHM_HEADER_SIZE,
  shmStateAfterCommit,
  WAL_INDEX_VERSION,
  writeShmHeader,
} from '../../../src/sqlite/shm.js';
import {
  HASHTABLE_NPAGE_ONE,
  shmFindFrame,
  shmFramePgno,
  shmHashKey,
  shmIndexFrame,
  shmRegion,
  shmRegionOfFrame,
  shmSizeForFrames,
  SHM_REGION_SIZE,
} from '../../../src/sqlite/shm-index.js';
import { WalReader } from '../../../src/sqlite/wal-reader.js';
import { ltxFixture } from './helpers.js';

const liveShm = (): Buffer => Buffer.from(ltxFixture('sqlite-generated', 'wal-live-with-shm', 'snap.db-shm'));
const liveWal = (): Buffer => ltxFixture('sqlite-generated', 'wal-live-with-shm', 'snap.db-wal');

describe('wal-index header', () => {
  test('B.9 vector: exact bytes and aCksum', () => {
    const bytes = encodeWalIndexHeader({
      version: WAL_INDEX_VERSION,
      change: 1,
      isInit: 1,
      bigEndianChecksum: false,
      pageSize: 4096,
      mxFrame: 0,
      nPage: 2,
      frameChecksum: [0, 0],
      salt1: 0,
      salt2: 0,
    });
    assert.equal(
      bytes.subarray(0, 40).toString('hex'),
      '18e22d00' + '00000000' + '01000000' + '01' + '00' + '0010' + '00000000' + '02000000' + '0000000000000000' + '0000000000000000',
    );
    assert.equal(bytes.subarray(40).toString('hex'), '4b0718865493dbd9');
    const parsed = parseShmHeader(buildShmHeader(
      { version: WAL_INDEX_VERSION, change: 1, isInit: 1, bigEndianChecksum: false, pageSize: 4096, mxFrame: 0, nPage: 2, frameChecksum: [0, 0], salt1: 0, salt2: 0 },
      { nBackfill: 0, readMarks: [0, 0, 0, 0, 0], nBackfillAttempted: 0 },
    ));
    assert.deepEqual(parsed.copy1.checksum, [0x8618074b, 0xd9db9354]);
    assert.equal(parsed.valid, true);
  });

  test('parses the live snap.db-shm to the README values', () => {
    const shm = parseShmHeader(liveShm());
    assert.equal(shm.valid, true);
    assert.equal(shm.copiesEqual, true);
    assert.equal(shm.checksumValid, true);
    const h = shm.copy1;
    assert.equal(h.version, 3007000);
    assert.equal(h.change, 4);
    assert.equal(h.isInit, 1);
    assert.equal(h.bigEndianChecksum, false);
    assert.equal(h.pageSize, 4096);
    assert.equal(h.mxFrame, 5);
    assert.equal(h.nPage, 2);
    assert.deepEqual(h.frameChecksum, [4287463385, 4086931232]);
    assert.equal(`${h.salt1.toString(16)}${h.salt2.toString(16)}`, '4d5fd0e58d3806e2');
    assert.deepEqual(h.checksum, [1587348906, 2274224480]);
    assert.deepEqual(shm.checkpoint, { nBackfill: 0, readMarks: [0, 4, READ_MARK_UNUSED, READ_MARK_UNUSED, READ_MARK_UNUSED], nBackfillAttempted: 0 });
    // The salts equal the WAL header's and aFrameCksum the last frame's.
    const wal = WalReader.open(bufferReader(liveWal()));
    assert.deepEqual([h.salt1, h.salt2], [wal.header.salt1, wal.header.salt2]);
  });

  test('re-encoding the parsed header reproduces the 136 bytes SQLite wrote', () => {
    const raw = liveShm();
    const shm = parseShmHeader(raw);
    const { checksum: _c, ...fields } = shm.copy1;
    assert.ok(buildShmHeader(fields, shm.checkpoint).equals(raw.subarray(0, SHM_HEADER_SIZE)));
  });

  test('a torn or uninitialised header is not valid', () => {
    const torn = liveShm();
    torn.writeUInt32LE(5, 48 + 8); // copy 2's iChange differs
    assert.equal(parseShmHeader(torn).copiesEqual, false);
    assert.equal(parseShmHeader(torn).valid, false);
    const badSum = liveShm();
    badSum[40] ^= 1;
    badSum[48 + 40] ^= 1;
    assert.equal(parseShmHeader(badSum).checksumValid, false);
    assert.equal(parseShmHeader(Buffer.alloc(136)).valid, false);
    assert.throws(() => parseShmHeader(Buffer.alloc(135)), ShortBufferError);
  });

  test('LiteFS strategy: empty-WAL header after applying pages to the database file', () => {
    const previous = parseShmHeader(liveShm()).copy1;
    const bytes = buildEmptyWalShmHeader({ previous, pageSize: 65536, nPage: 7, frameChecksum: [11, 22], salt1: 0x01020304, salt2: 0x05060708 });
    assert.equal(bytes.length, 136);
    const shm = parseShmHeader(bytes);
    assert.equal(shm.valid, true);
    assert.deepEqual(
      { ...shm.copy1, checksum: null },
      { version: 3007000, change: 5, isInit: 1, bigEndianChecksum: false, pageSize: 65536, mxFrame: 0, nPage: 7, frameChecksum: [11, 22], salt1: 0x01020304, salt2: 0x05060708, checksum: null },
    );
    assert.equal(bytes.readUInt16LE(14), 1, '65536 stored as 1');
    assert.equal(bytes.subarray(32, 40).toString('hex'), '0102030405060708', 'salts as raw WAL header bytes');
    assert.deepEqual(shm.checkpoint, { nBackfill: 0, readMarks: [0, READ_MARK_UNUSED, READ_MARK_UNUSED, READ_MARK_UNUSED, READ_MARK_UNUSED], nBackfillAttempted: 0 });
    assert.ok(bytes.subarray(120, 136).equals(Buffer.alloc(16)), 'lock bytes and the rest are zero');
    const fresh = parseShmHeader(buildEmptyWalShmHeader({ previous: null, pageSize: 4096, nPage: 1, frameChecksum: [0, 0], salt1: 0, salt2: 0 }));
    assert.equal(fresh.copy1.change, 1);
  });
});

describe('wal-index header after appending frames (strategy 1)', () => {
  const live = parseShmHeader(liveShm());
  const previous = { header: live.copy1, checkpoint: live.checkpoint };

  test('a commit bumps iChange and moves mxFrame, nPage and the running checksum', () => {
    const next = shmStateAfterCommit(previous, { pageSize: 4096, mxFrame: 7, nPage: 3, frameChecksum: [1, 2] });
    assert.deepEqual(next.header, {
      version: 3007000, change: 5, isInit: 1, bigEndianChecksum: false, pageSize: 4096,
      mxFrame: 7, nPage: 3, frameChecksum: [1, 2], salt1: live.copy1.salt1, salt2: live.copy1.salt2,
    });
    assert.deepEqual(next.checkpoint, live.checkpoint);
  });

  test('a restart takes the new WAL header\'s salts and resets the checkpoint info', () => {
    const next = shmStateAfterCommit(previous, {
      pageSize: 4096, mxFrame: 1, nPage: 2, frameChecksum: [3, 4],
      newWalHeader: { salt1: live.copy1.salt1 + 1, salt2: 99, bigEndianChecksum: false }, restarted: true,
    });
    assert.equal(next.header.salt1, live.copy1.salt1 + 1);
    assert.equal(next.header.salt2, 99);
    assert.deepEqual(next.checkpoint, { nBackfill: 0, readMarks: [0, 0, READ_MARK_UNUSED, READ_MARK_UNUSED, READ_MARK_UNUSED], nBackfillAttempted: 0 });
    const target = Buffer.alloc(SHM_HEADER_SIZE);
    writeShmHeader(target, next.header, next.checkpoint);
    assert.equal(parseShmHeader(target).valid, true);
  });
});

describe('wal-index hash tables', () => {
  test('keys and region mapping match formats.md B.6', () => {
    const keys = [1, 2, 3, 22, 100, 262145].map(shmHashKey);
    assert.deepEqual(keys, [383, 766, 1149, 234, 5532, 383]);
    assert.equal(HASHTABLE_NPAGE_ONE, 4062);
    assert.deepEqual([1, 4062, 4063, 8158, 8159].map(shmRegionOfFrame), [0, 0, 1, 1, 2]);
    assert.deepEqual(shmRegion(0), { index: 0, frameZero: 0, capacity: 4062, pgnoOffset: 136, hashOffset: 16384 });
    assert.deepEqual(shmRegion(2), { index: 2, frameZero: 8158, capacity: 4096, pgnoOffset: 65536, hashOffset: 65536 + 16384 });
    assert.equal(shmSizeForFrames(0), SHM_REGION_SIZE);
    assert.equal(shmSizeForFrames(4063), 2 * SHM_REGION_SIZE);
  });

  test('the live fixture: aPgno [1,2,2,2,2], slots 383→1, 766→2, 767→3, 768→4, 769→5', () => {
    const shm = liveShm();
    assert.deepEqual([1, 2, 3, 4, 5].map((f) => shmFramePgno(shm, f)), [1, 2, 2, 2, 2]);
    const slot = (key: number): number => shm.readUInt16LE(16384 + 2 * key);
    assert.deepEqual([383, 766, 767, 768, 769].map(slot), [1, 2, 3, 4, 5]);
  });

  test('lookup returns the newest frame at or below the reader\'s mxFrame', () => {
    const shm = liveShm();
    assert.equal(shmFindFrame(shm, 1, 5), 1);
    assert.equal(shmFindFrame(shm, 2, 5), 5);
    assert.equal(shmFindFrame(shm, 2, 3), 3);
    assert.equal(shmFindFrame(shm, 2, 1), 0);
    assert.equal(shmFindFrame(shm, 3, 5), 0);
    assert.equal(shmFindFrame(shm, 1, 5, 2), 0, 'frames below minFrame are backfilled');
    assert.equal(shmFindFrame(shm, 2, 0), 0);
  });

  test('indexing the WAL\'s frames reproduces SQLite\'s index bytes exactly', () => {
    const shm = Buffer.alloc(SHM_REGION_SIZE);
    const reader = WalReader.open(bufferReader(liveWal()));
    for (let f = reader.next(); f !== null; f = reader.next()) shmIndexFrame(shm, f.index, f.pgno);
    assert.ok(shm.subarray(SHM_HEADER_SIZE).equals(liveShm().subarray(SHM_HEADER_SIZE)));
  });

  test('lookup agrees with a brute-force scan across three regions', () => {
    const frames = 10000;
    const shm = Buffer.alloc(shmSizeForFrames(frames));
    const pgnoOf: number[] = [0];
    let x = 12345;
    for (let f = 1; f <= frames; f++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const pgno = 1 + (x >>> 8) % 3000;
      pgnoOf.push(pgno);
      shmIndexFrame(shm, f, pgno);
    }
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const pgno = 1 + (x >>> 8) % 3100;
      const mxFrame = 1 + (x % frames);
      const minFrame = i % 3 === 0 ? 1 + ((x >>> 4) % mxFrame) : 1;
      let expected = 0;
      for (let f = mxFrame; f >= minFrame; f--) {
        if (pgnoOf[f] === pgno) {
          expected = f;
          break;
        }
      }
      assert.equal(shmFindFrame(shm, pgno, mxFrame, minFrame), expected, `pgno ${pgno} mxFrame ${mxFrame} minFrame ${minFrame}`);
      checked++;
    }
    assert.equal(checked, 3000);
  });

  test('re-indexing a position forgets the stale frames of a dead writer', () => {
    const shm = Buffer.alloc(SHM_REGION_SIZE);
    for (let f = 1; f <= 10; f++) shmIndexFrame(shm, f, f);
    shmIndexFrame(shm, 6, 100); // a new writer after a crash at mxFrame 5
    assert.equal(shmFindFrame(shm, 8, 10), 0);
    assert.equal(shmFindFrame(shm, 100, 6), 6);
    assert.equal(shmFindFrame(shm, 3, 6), 3);
    assert.equal(shmFramePgno(shm, 7), 0);
  });

  test('a corrupt full hash table is reported, and lookups still terminate', () => {
    const shm = Buffer.alloc(SHM_REGION_SIZE);
    shm.fill(0xff, 16384);
    assert.equal(shmFindFrame(shm, 1, 4000), 0);
    // aPgno[2] is empty, so no cleanup clears the bogus slots before probing.
    assert.throws(() => shmIndexFrame(shm, 3, 1), ShmIndexCorruptError);
    assert.throws(() => shmFindFrame(Buffer.alloc(100), 1, 1), ShortBufferError);
  });
});
