import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { WalHeaderError } from '../../../src/sqlite/errors.js';
import { bufferReader } from '../../../src/sqlite/positional.js';
import {
  buildWalHeader,
  encodeWalFrame,
  parseWalFrameHeader,
  parseWalHeader,
  walFrameChecksum,
  walFrameOffset,
  WAL_FRAME_HEADER_SIZE,
} from '../../../src/sqlite/wal.js';
import { formatWalChecksum, walChecksum, type WalChecksum } from '../../../src/sqlite/wal-checksum.js';
import { readWalTransaction, scanWal, WalReader, type WalFrame } from '../../../src/sqlite/wal-reader.js';
import { skipUnless } from '../../helpers/prereq.js';
import { copyFixtures, ltxFixture, sqlite3, withTempDir } from './helpers.js';

const skip = skipUnless(['sqlite3']);
const walReaderFixture = (name: string): Buffer => ltxFixture('litefs-v0.5.11', 'testdata', 'wal-reader', name, 'wal');
const ck = (c: WalChecksum): string => formatWalChecksum(c);

function readAll(reader: WalReader): Array<Omit<WalFrame, 'data'>> {
  const frames: Array<Omit<WalFrame, 'data'>> = [];
  for (let f = reader.next(); f !== null; f = reader.next()) {
    const { data: _data, ...rest } = f;
    frames.push(rest);
  }
  return frames;
}

describe('WAL checksum (formats.md B.9 vectors)', () => {
  test('header checksum of LiteFS BadHeaderVersion bytes, big-endian words', () => {
    const bytes = Buffer.alloc(24);
    bytes.writeUInt32BE(0x377f0683, 0);
    bytes.writeUInt32BE(1, 4);
    assert.equal(ck(walChecksum(bytes, true)), '157b2092 bbf8341d');
  });

  test('built headers carry the vector checksums for both magics', () => {
    const fields = { pageSize: 4096, checkpointSeq: 0, salt1: 0x01020304, salt2: 0x05060708 };
    const le = buildWalHeader({ ...fields, bigEndianChecksum: false });
    assert.equal(le.bytes.subarray(0, 24).toString('hex'), '377f0682002de218000010000000000001020304' + '05060708');
    assert.equal(ck(le.header.checksum), 'd8ea0514 98d8e2be');
    const be = buildWalHeader({ ...fields, bigEndianChecksum: true });
    assert.equal(ck(be.header.checksum), '1706e9db c2e5d89c');
    assert.deepEqual(parseWalHeader(be.bytes), be.header);
  });

  test('frame checksums continue from the header checksum', () => {
    const ctx = { bigEndianChecksum: false, salt1: 0x01020304, salt2: 0x05060708 };
    const seed: WalChecksum = [0xd8ea0514, 0x98d8e2be];
    const zeros = encodeWalFrame(ctx, seed, 1, 1, Buffer.alloc(4096));
    assert.equal(ck(zeros.checksum), '3835a294 0c5cc3b6');
    const pattern = Buffer.alloc(4096);
    for (let i = 0; i < pattern.length; i++) pattern[i] = i & 0xff;
    const patterned = encodeWalFrame(ctx, seed, 1, 1, pattern);
    assert.equal(ck(patterned.checksum), '4e0886f0 ce9cd782');
    const fh = parseWalFrameHeader(patterned.bytes);
    assert.deepEqual(fh, { pgno: 1, commit: 1, salt1: 0x01020304, salt2: 0x05060708, checksum: patterned.checksum });
  });

  test('unaligned input gives the same result as aligned input', () => {
    const data = Buffer.alloc(4096 + 1);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const aligned = Buffer.from(data.subarray(1));
    for (const be of [false, true]) {
      assert.deepEqual(walChecksum(data.subarray(1), be, [5, 9]), walChecksum(aligned, be, [5, 9]));
    }
  });
});

describe('WAL header validation', () => {
  const ok = walReaderFixture('ok');
  test('parses the LiteFS wal-reader header', () => {
    const h = parseWalHeader(ok);
    assert.equal(h.bigEndianChecksum, false);
    assert.equal(h.pageSize, 4096);
    assert.equal(h.checkpointSeq, 0);
    assert.equal(`${h.salt1.toString(16)} ${h.salt2.toString(16)}`, '4875a40b a38de4f5');
    assert.equal(ck(h.checksum), 'e08b785b 8e57dda3');
  });

  test('names the failed check', () => {
    const cases: Array<[string, (b: Buffer) => Buffer]> = [
      ['short', (b) => b.subarray(0, 31)],
      ['magic', (b) => (b.writeUInt32BE(0x377f0684, 0), b)],
      ['version', (b) => (b.writeUInt32BE(3007001, 4), b)],
      ['page-size', (b) => (b.writeUInt32BE(1000, 8), b)],
      ['checksum', (b) => (b.writeUInt32BE(7, 12), b)],
    ];
    for (const [problem, mutate] of cases) {
      const bytes = mutate(Buffer.from(ok.subarray(0, 32)));
      assert.throws(() => parseWalHeader(bytes), (err: unknown) => err instanceof WalHeaderError && err.problem === problem);
    }
  });

  test('65536-byte pages are stored as the actual value', () => {
    const { bytes, header } = buildWalHeader({ bigEndianChecksum: false, pageSize: 65536, checkpointSeq: 3, salt1: 1, salt2: 2 });
    assert.equal(bytes.readUInt32BE(8), 0x10000);
    assert.equal(parseWalHeader(bytes).pageSize, 65536);
    assert.equal(header.checkpointSeq, 3);
  });
});

describe('WAL reader over the LiteFS wal-reader fixtures', () => {
  test('ok: frames at 32, 4152, 8272 with the listed checksums, then end of file', () => {
    const reader = WalReader.open(bufferReader(walReaderFixture('ok')));
    const frames = readAll(reader);
    assert.deepEqual(
      frames.map((f) => [f.index, f.offset, f.pgno, f.commit, ck(f.checksum)]),
      [
        [1, 32, 1, 0, '366b4d98 34f637cf'],
        [2, 4152, 2, 2, 'd6702fda f16cceda'],
        [3, 8272, 2, 2, '420a5a7c f49c13ab'],
      ],
    );
    assert.equal(reader.endReason, 'eof');
    assert.equal(reader.offset, 12392);
    assert.equal(reader.next(), null);
  });

  test('salt-mismatch: frame 1, then the log ends', () => {
    const reader = WalReader.open(bufferReader(walReaderFixture('salt-mismatch')));
    assert.deepEqual(readAll(reader).map((f) => f.offset), [32]);
    assert.equal(reader.endReason, 'salt-mismatch');
  });

  test('frame-checksum-mismatch: frame 1, then the log ends', () => {
    const reader = WalReader.open(bufferReader(walReaderFixture('frame-checksum-mismatch')));
    assert.deepEqual(readAll(reader).map((f) => f.offset), [32]);
    assert.equal(reader.endReason, 'checksum-mismatch');
  });

  test('a frame with pgno 0 ends the log even with a valid checksum', () => {
    const { bytes, header } = buildWalHeader({ bigEndianChecksum: false, pageSize: 512, checkpointSeq: 0, salt1: 9, salt2: 8 });
    const ctx = { bigEndianChecksum: false, salt1: 9, salt2: 8 };
    const f1 = encodeWalFrame(ctx, header.checksum, 1, 1, Buffer.alloc(512, 1));
    const f2 = encodeWalFrame(ctx, f1.checksum, 1, 1, Buffer.alloc(512, 2));
    // pgno 0 with a checksum recomputed to match, so only the pgno rule rejects it.
    f2.bytes.writeUInt32BE(0, 0);
    const fixed = walFrameChecksum(f2.bytes, f2.bytes.subarray(WAL_FRAME_HEADER_SIZE), false, f1.checksum);
    f2.bytes.writeUInt32BE(fixed[0], 16);
    f2.bytes.writeUInt32BE(fixed[1], 20);
    const reader = WalReader.open(bufferReader(Buffer.concat([bytes, f1.bytes, f2.bytes])));
    assert.equal(readAll(reader).length, 1);
    assert.equal(reader.endReason, 'zero-pgno');
  });

  test('a short final frame counts as the end', () => {
    const ok = walReaderFixture('ok');
    const reader = WalReader.open(bufferReader(ok.subarray(0, ok.length - 1)));
    assert.equal(readAll(reader).length, 2);
    assert.equal(reader.endReason, 'eof');
  });
});

describe('WAL scan and transactions', () => {
  test('scan of ok finds the last commit at frame 3', () => {
    const scan = scanWal(bufferReader(walReaderFixture('ok')));
    assert.equal(scan.mxFrame, 3);
    assert.equal(scan.nPage, 2);
    assert.equal(ck(scan.checksum), '420a5a7c f49c13ab');
    assert.equal(scan.endOffset, 12392);
    assert.deepEqual([...scan.frameOffsets], [[1, 32], [2, 8272]]);
    assert.equal(scan.uncommittedFrames, 0);
  });

  test('scan ignores valid frames after the last commit', () => {
    const scan = scanWal(bufferReader(walReaderFixture('salt-mismatch')));
    assert.equal(scan.mxFrame, 0);
    assert.equal(scan.nPage, 0);
    assert.equal(ck(scan.checksum), 'e08b785b 8e57dda3');
    assert.equal(scan.endOffset, 32);
    assert.equal(scan.frameOffsets.size, 0);
    assert.equal(scan.uncommittedFrames, 1);
    assert.equal(scan.endReason, 'salt-mismatch');
  });

  test('transactions are read one at a time from a position and running checksum', () => {
    const src = bufferReader(walReaderFixture('ok'));
    const header = WalReader.open(src).header;
    const tx1 = readWalTransaction(src, header, 32, header.checksum);
    assert.ok(tx1);
    assert.deepEqual([...tx1.frameOffsets], [[1, 32], [2, 4152]]);
    assert.equal(tx1.commit, 2);
    assert.equal(tx1.endOffset, 8272);
    assert.equal(tx1.frameCount, 2);
    assert.equal(ck(tx1.checksum), 'd6702fda f16cceda');
    const tx2 = readWalTransaction(src, header, tx1.endOffset, tx1.checksum);
    assert.ok(tx2);
    assert.deepEqual([...tx2.frameOffsets], [[2, 8272]]);
    assert.equal(tx2.endOffset, 12392);
    assert.equal(readWalTransaction(src, header, tx2.endOffset, tx2.checksum), null);
    // A wrong running checksum means there is no transaction there.
    assert.equal(readWalTransaction(src, header, tx1.endOffset, header.checksum), null);
    assert.throws(() => readWalTransaction(src, header, 33, header.checksum), RangeError);
  });

  test('a transaction within the byte budget hands back copies of its pages; a larger one none', () => {
    const wal = walReaderFixture('ok');
    const src = bufferReader(wal);
    const header = WalReader.open(src).header;
    const frameData = (offset: number): Buffer => wal.subarray(offset + 24, offset + 24 + header.pageSize);
    assert.equal(readWalTransaction(src, header, 32, header.checksum)?.pages, null);
    const tx1 = readWalTransaction(src, header, 32, header.checksum, 2 * header.pageSize);
    assert.ok(tx1?.pages);
    assert.deepEqual([...tx1.pages.keys()], [1, 2]);
    assert.deepEqual(Buffer.from(tx1.pages.get(1)!), frameData(32));
    assert.deepEqual(Buffer.from(tx1.pages.get(2)!), frameData(4152));
    // Copies, not views of the reader's frame buffer (reused for every frame).
    assert.notDeepEqual(Buffer.from(tx1.pages.get(1)!), Buffer.from(tx1.pages.get(2)!));
    const over = readWalTransaction(src, header, 32, header.checksum, 2 * header.pageSize - 1);
    assert.ok(over);
    assert.equal(over.pages, null);
    assert.deepEqual([...over.frameOffsets], [[1, 32], [2, 4152]]);
  });

  test('an uncommitted tail is not a transaction', () => {
    const src = bufferReader(walReaderFixture('salt-mismatch'));
    const header = WalReader.open(src).header;
    assert.equal(readWalTransaction(src, header, 32, header.checksum), null);
  });
});

describe('SQLite-written WALs', () => {
  test('wal-live-with-shm: five frames with the listed checksums', () => {
    const wal = ltxFixture('sqlite-generated', 'wal-live-with-shm', 'snap.db-wal');
    const reader = WalReader.open(bufferReader(wal));
    assert.equal(`${reader.header.salt1.toString(16)} ${reader.header.salt2.toString(16)}`, '4d5fd0e5 8d3806e2');
    const frames = readAll(reader);
    assert.deepEqual(
      frames.map((f) => [f.pgno, f.commit, f.checksum[0], f.checksum[1]]),
      [
        [1, 0, 448777904, 3725746114],
        [2, 2, 909755418, 1014910249],
        [2, 2, 2484341738, 4166994749],
        [2, 2, 649320497, 2326201785],
        [2, 2, 4287463385, 4086931232],
      ],
    );
    const scan = scanWal(bufferReader(wal));
    assert.equal(scan.mxFrame, 5);
    assert.equal(scan.nPage, 2);
    assert.equal(scan.frameOffsets.get(2), walFrameOffset(5, 4096));
  });

  test('re-encoding every frame SQLite wrote in wal-live-with-shm reproduces the file', () => {
    const wal = ltxFixture('sqlite-generated', 'wal-live-with-shm', 'snap.db-wal');
    const header = parseWalHeader(wal);
    assert.ok(buildWalHeader(header).bytes.equals(wal.subarray(0, 32)));
    const parts: Buffer[] = [wal.subarray(0, 32)];
    let checksum = header.checksum;
    for (let i = 1; i <= 5; i++) {
      const off = walFrameOffset(i, 4096);
      const fh = parseWalFrameHeader(wal.subarray(off));
      const frame = encodeWalFrame(header, checksum, fh.pgno, fh.commit, wal.subarray(off + 24, off + 24 + 4096));
      parts.push(frame.bytes);
      checksum = frame.checksum;
    }
    assert.ok(Buffer.concat(parts).equals(wal));
  });

  test('wal-crafted-le: re-encoding the frame reproduces the file byte for byte', () => {
    const wal = ltxFixture('sqlite-generated', 'wal-crafted-le', 'craft.db-wal');
    assert.equal(wal.length, 4152);
    const header = parseWalHeader(wal);
    assert.equal(ck(header.checksum), 'd8ea0514 98d8e2be');
    const rebuilt = buildWalHeader(header);
    assert.ok(rebuilt.bytes.equals(wal.subarray(0, 32)));
    const frame = encodeWalFrame(header, header.checksum, 1, 2, wal.subarray(32 + WAL_FRAME_HEADER_SIZE));
    assert.equal(ck(frame.checksum), '59732434 f25d5dbe');
    assert.ok(frame.bytes.equals(wal.subarray(32)));
  });

  test('SQLite recovers hand-built WALs with either magic', { skip }, () => {
    withTempDir((dir) => {
      copyFixtures(dir, 'wal-crafted-le', ['craft.db', 'craft.db-wal']);
      assert.equal(sqlite3(join(dir, 'craft.db'), 'PRAGMA user_version;'), String(0xbeef));
    });
    withTempDir((dir) => {
      copyFixtures(dir, 'wal-crafted-le', ['craft.db']);
      const db = join(dir, 'craft.db');
      const page1 = Buffer.from(readFileSync(db).subarray(0, 4096));
      page1.writeUInt32BE(0xbef0, 60);
      const { bytes, header } = buildWalHeader({ bigEndianChecksum: true, pageSize: 4096, checkpointSeq: 0, salt1: 0x01020304, salt2: 0x05060708 });
      const frame = encodeWalFrame(header, header.checksum, 1, 2, page1);
      writeFileSync(`${db}-wal`, Buffer.concat([bytes, frame.bytes]));
      assert.equal(sqlite3(db, 'PRAGMA user_version;'), String(0xbef0));
      assert.equal(sqlite3(db, 'PRAGMA integrity_check;'), 'ok');
    });
  });
});
