/**
 * Every LTX fixture decodes to exactly the values test/fixtures/ltx/README.md
 * lists, and re-encoding reproduces the uncompressed ones byte for byte.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checksumPage } from '../../../src/ltx/checksum.js';
import { decodeBytes } from '../../../src/ltx/decoder.js';
import { LTXEncoder } from '../../../src/ltx/encoder.js';
import { LTXDecodeError } from '../../../src/ltx/errors.js';
import type { Header } from '../../../src/ltx/header.js';
import { CollectSink } from '../../../src/ltx/sink.js';
import { LITEFS_DB, LITEFS_LTX, crafted, fill, gen, hex, lcg, lz4Blocks, pattern, read } from './helpers.js';

interface Expected {
  file: string;
  bytes: number;
  flags: number;
  pageSize: number;
  commit: number;
  min: bigint;
  max: bigint;
  timestamp: bigint;
  pre: string;
  pages: Array<[number, Uint8Array]>;
  post: string;
  fileChecksum: string;
  blocks?: Array<[number, boolean]>;
  wal?: { offset: bigint; size: bigint; salt1: number; salt2: number; nodeID: bigint };
}

const ascii = (ch: string, n: number): Uint8Array => fill(n, ch.charCodeAt(0));
const v4Pages: Array<[number, Uint8Array]> = [];
for (let p = 1; p <= 40; p++) v4Pages.push([p, p <= 20 ? lcg(p) : pattern(p)]);
const v3Wal = { offset: 32n, size: 12360n, salt1: 0xdeadbeef, salt2: 0x01020304, nodeID: 0xa1b2c3d4e5f60718n };

const generated: Expected[] = [
  { file: 'v1-snapshot-512-uncompressed.ltx', bytes: 636, flags: 0, pageSize: 512, commit: 1, min: 1n, max: 1n, timestamp: 1000n, pre: '0000000000000000', pages: [[1, ascii('1', 512)]], post: 'eb1a999231044ddd', fileChecksum: 'bab9b3d8b4fa3b31' },
  { file: 'v1-snapshot-512-lz4.ltx', bytes: 160, flags: 1, pageSize: 512, commit: 1, min: 1n, max: 1n, timestamp: 1000n, pre: '0000000000000000', pages: [[1, ascii('1', 512)]], post: 'eb1a999231044ddd', fileChecksum: 'f1d4055ab5064223', blocks: [[25, false]] },
  { file: 'v2-snapshot-1024-uncompressed.ltx', bytes: 2176, flags: 0, pageSize: 1024, commit: 2, min: 1n, max: 1n, timestamp: 1000n, pre: '0000000000000000', pages: [[1, ascii('2', 1024)], [2, ascii('3', 1024)]], post: 'e1899b6d587aaaaa', fileChecksum: 'f18eeb815908e22c' },
  { file: 'v2-snapshot-1024-lz4.ltx', bytes: 174, flags: 1, pageSize: 1024, commit: 2, min: 1n, max: 1n, timestamp: 1000n, pre: '0000000000000000', pages: [[1, ascii('2', 1024)], [2, ascii('3', 1024)]], post: 'e1899b6d587aaaaa', fileChecksum: 'f02e30274465832c', blocks: [[39, false]] },
  { file: 'v3-incremental-4096-uncompressed.ltx', bytes: 8320, flags: 0, pageSize: 4096, commit: 6, min: 0x1234n, max: 0x1234n, timestamp: 1700000000123n, pre: '8123456789abcdef', pages: [[2, pattern(2)], [5, pattern(5)]], post: 'fedcba9876543210', fileChecksum: '9f77d30f5fb76d97', wal: v3Wal },
  { file: 'v3-incremental-4096-lz4.ltx', bytes: 1212, flags: 1, pageSize: 4096, commit: 6, min: 0x1234n, max: 0x1234n, timestamp: 1700000000123n, pre: '8123456789abcdef', pages: [[2, pattern(2)], [5, pattern(5)]], post: 'fedcba9876543210', fileChecksum: 'eebcb3912f707078', blocks: [[1077, false]], wal: v3Wal },
  { file: 'v4-snapshot-40x4096-uncompressed.ltx', bytes: 164120, flags: 0, pageSize: 4096, commit: 40, min: 1n, max: 7n, timestamp: 1700000000000n, pre: '0000000000000000', pages: v4Pages, post: '88d6d675f51ca959', fileChecksum: '9200b8796947bb31' },
  { file: 'v4-snapshot-40x4096-lz4-multiblock.ltx', bytes: 85106, flags: 1, pageSize: 4096, commit: 40, min: 1n, max: 7n, timestamp: 1700000000000n, pre: '0000000000000000', pages: v4Pages, post: '88d6d675f51ca959', fileChecksum: 'a0ba5a0b971d2333', blocks: [[65536, true], [18134, false], [1293, false]] },
  { file: 'v5-delete-commit0-uncompressed.ltx', bytes: 120, flags: 0, pageSize: 4096, commit: 0, min: 9n, max: 9n, timestamp: 1700000000999n, pre: '8000000000000005', pages: [], post: '8000000000000000', fileChecksum: 'e875beb30cb2a5e7' },
  { file: 'v5-delete-commit0-lz4.ltx', bytes: 139, flags: 1, pageSize: 4096, commit: 0, min: 9n, max: 9n, timestamp: 1700000000999n, pre: '8000000000000005', pages: [], post: '8000000000000000', fileChecksum: 'e925aae249a6f5f2', blocks: [[4, true]] },
  { file: 'v6-compact-input-a.ltx', bytes: 3204, flags: 0, pageSize: 1024, commit: 3, min: 1n, max: 1n, timestamp: 1000n, pre: '0000000000000000', pages: [[1, fill(1024, 0x81)], [2, fill(1024, 0x82)], [3, fill(1024, 0x83)]], post: '8a249272ad9f7dea', fileChecksum: 'ec56368bf0d73ed6' },
  { file: 'v6-compact-input-b.ltx', bytes: 162, flags: 1, pageSize: 1024, commit: 2, min: 2n, max: 3n, timestamp: 2000n, pre: '8a249272ad9f7dea', pages: [[2, fill(1024, 0x92)]], post: 'e8099b6ac7855555', fileChecksum: 'aef1b0df531505bd', blocks: [[27, false]] },
  { file: 'v6-compact-output.ltx', bytes: 2176, flags: 0, pageSize: 1024, commit: 2, min: 1n, max: 3n, timestamp: 2000n, pre: '0000000000000000', pages: [[1, fill(1024, 0x81)], [2, fill(1024, 0x92)]], post: 'e8099b6ac7855555', fileChecksum: 'dfcf0fcef2cdbfad' },
];

const craftedContent = {
  flags: 1, pageSize: 512, commit: 2, min: 1n, max: 1n, timestamp: 1000n, pre: '0000000000000000',
  pages: [[1, ascii('2', 512)], [2, ascii('3', 512)]] as Array<[number, Uint8Array]>,
  post: '8b87423eeeeeeeee', fileChecksum: '828d4f9f3e7bb9f8',
};
const craftedFiles: Array<[string, number, Array<[number, boolean]> | null]> = [
  ['stored-64k-cc.ltx', 0x64, [[1036, true]]],
  ['stored-64k-nocc.ltx', 0x60, [[1036, true]]],
  ['stored-4m-cc.ltx', 0x64, [[1036, true]]],
  ['stored-64k-blockck.ltx', 0x74, [[1036, true]]],
  ['stored-64k-small-blocks.ltx', 0x64, null],
  ['linked-blocks.ltx', 0x44, [[1036, true]]],
];

interface Decoded {
  header: Header;
  pages: Array<[number, Uint8Array]>;
  post: bigint;
  fileChecksum: bigint;
  n: number;
}

function decodeAll(bytes: Uint8Array): Decoded {
  const pages: Array<[number, Uint8Array]> = [];
  const s = decodeBytes(bytes, { onPage: (pgno, data) => pages.push([pgno, data.slice()]) });
  return { header: s.header, pages, post: s.trailer.postApplyChecksum, fileChecksum: s.trailer.fileChecksum, n: s.n };
}

function encodeAll(header: Header, pages: Array<[number, Uint8Array]>, post: bigint): Buffer {
  const sink = new CollectSink();
  const enc = new LTXEncoder(sink);
  enc.encodeHeader(header);
  for (const [pgno, data] of pages) enc.encodePage(pgno, data);
  enc.setPostApplyChecksum(post);
  enc.close();
  assert.equal(enc.n, 120 + pages.length * (header.pageSize + 4), 'n counts logical bytes');
  return sink.bytes();
}

function assertPages(actual: Array<[number, Uint8Array]>, expected: Array<[number, Uint8Array]>, file: string): void {
  assert.deepEqual(actual.map(([p]) => p), expected.map(([p]) => p), `${file}: page numbers`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Buffer.from(actual[i][1]).equals(expected[i][1]), `${file}: page ${expected[i][0]} contents`);
  }
}

describe('ltx-v0.3.13-generated fixtures', () => {
  for (const e of generated) {
    test(`${e.file} decodes to the README's values`, () => {
      const bytes = read(gen(e.file));
      assert.equal(bytes.length, e.bytes);
      const d = decodeAll(bytes);
      const h = d.header;
      assert.deepEqual(
        [h.flags, h.pageSize, h.commit, h.minTXID, h.maxTXID, h.timestamp, hex(h.preApplyChecksum)],
        [e.flags, e.pageSize, e.commit, e.min, e.max, e.timestamp, e.pre],
      );
      const wal = e.wal ?? { offset: 0n, size: 0n, salt1: 0, salt2: 0, nodeID: 0n };
      assert.deepEqual([h.walOffset, h.walSize, h.walSalt1, h.walSalt2, h.nodeID], [wal.offset, wal.size, wal.salt1, wal.salt2, wal.nodeID]);
      assertPages(d.pages, e.pages, e.file);
      assert.equal(hex(d.post), e.post);
      assert.equal(hex(d.fileChecksum), e.fileChecksum);
      assert.equal(d.n, 120 + e.pages.length * (e.pageSize + 4));
      if (e.blocks) {
        assert.deepEqual([...bytes.subarray(100, 107)], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]);
        assert.deepEqual(lz4Blocks(bytes), e.blocks);
      }
    });

    if (e.flags === 0) {
      test(`${e.file} re-encodes byte for byte`, () => {
        const bytes = read(gen(e.file));
        const d = decodeAll(bytes);
        assert.ok(encodeAll(d.header, d.pages, d.post).equals(bytes));
      });
    } else {
      test(`${e.file}: our LZ4 encoding decodes to the same content and file checksum`, (t) => {
        const bytes = read(gen(e.file));
        const d = decodeAll(bytes);
        const ours = encodeAll(d.header, d.pages, d.post);
        const back = decodeAll(ours);
        assert.deepEqual(back.header, d.header);
        assertPages(back.pages, e.pages, e.file);
        assert.equal(hex(back.fileChecksum), e.fileChecksum);
        assert.deepEqual([...ours.subarray(100, 107)], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]);
        t.diagnostic(
          `byte-identical to pierrec: ${ours.equals(bytes)}; blocks ours ${JSON.stringify(lz4Blocks(ours))} vs ${JSON.stringify(lz4Blocks(bytes))}`,
        );
      });
    }
  }
});

describe('ltx-python-crafted-lz4-variants fixtures', () => {
  for (const [file, flg, blocks] of craftedFiles) {
    test(`${file} (FLG ${flg.toString(16)}) is accepted with the shared content`, () => {
      const bytes = read(crafted(file));
      assert.equal(bytes[104], flg);
      const d = decodeAll(bytes);
      const h = d.header;
      const c = craftedContent;
      assert.deepEqual(
        [h.flags, h.pageSize, h.commit, h.minTXID, h.maxTXID, h.timestamp, hex(h.preApplyChecksum)],
        [c.flags, c.pageSize, c.commit, c.min, c.max, c.timestamp, c.pre],
      );
      assertPages(d.pages, c.pages, file);
      assert.equal(hex(d.post), c.post);
      assert.equal(hex(d.fileChecksum), c.fileChecksum);
      const actualBlocks = lz4Blocks(bytes);
      if (blocks) assert.deepEqual(actualBlocks, blocks);
      else {
        assert.equal(actualBlocks.length, 11);
        assert.ok(actualBlocks.every(([size, raw]) => size <= 100 && raw));
      }
    });
  }

  test('stored-4m-cc.ltx declares BD 70 / HC b9', () => {
    const bytes = read(crafted('stored-4m-cc.ltx'));
    assert.deepEqual([bytes[105], bytes[106]], [0x70, 0xb9]);
  });

  test('reject-extra-byte-after-end-marker.ltx is rejected: expected lz4 end frame', () => {
    assert.throws(() => decodeBytes(read(crafted('reject-extra-byte-after-end-marker.ltx'))), (err: unknown) => {
      assert.ok(err instanceof LTXDecodeError);
      assert.equal(err.rule, 'expected-lz4-end-frame');
      assert.equal(err.message, 'expected lz4 end frame');
      return true;
    });
  });
});

describe('LiteFS v0.5.11 000000000000000d-000000000000000d.ltx', () => {
  test('decodes to the README values; pages equal the sibling database', () => {
    const bytes = read(LITEFS_LTX);
    assert.equal(bytes.length, 12420);
    const d = decodeAll(bytes);
    const h = d.header;
    assert.deepEqual(
      [h.flags, h.pageSize, h.commit, h.minTXID, h.maxTXID, h.timestamp, hex(h.preApplyChecksum), h.walOffset, h.nodeID],
      [0, 4096, 10, 13n, 13n, 0n, '9c74a15b4e4f246c', 0n, 0n],
    );
    assert.deepEqual(d.pages.map(([p]) => p), [1, 7, 8]);
    assert.deepEqual(
      d.pages.map(([p, data]) => hex(checksumPage(p, data))),
      ['adf3e188cb5dc241', 'eaf0947b2055d648', '9a7407c73d4bb9da'],
    );
    const db = read(LITEFS_DB);
    for (const [p, data] of d.pages) assert.ok(db.subarray((p - 1) * 4096, p * 4096).equals(data), `page ${p}`);
    assert.equal(hex(d.post), 'fe3831a381c602b9');
    assert.equal(hex(d.fileChecksum), '9496a29358326fb5');
  });

  test('re-encodes byte for byte', () => {
    const bytes = read(LITEFS_LTX);
    const d = decodeAll(bytes);
    assert.ok(encodeAll(d.header, d.pages, d.post).equals(bytes));
  });
});
