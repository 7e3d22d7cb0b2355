import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChecksumFlag, DatabaseChecksum, checksumPage } from '../../../src/ltx/checksum.js';
import { Crc64 } from '../../../src/ltx/crc64.js';
import { LTXDecoder, type DecodeOptions, decodeBytes, decodeStream } from '../../../src/ltx/decoder.js';
import { decodeDatabaseTo, decodeFileSync, verifyFileSync } from '../../../src/ltx/decode-file.js';
import { LTXDecodeError, LTXError } from '../../../src/ltx/errors.js';
import { type Header, isSnapshot, makeHeader, marshalHeader } from '../../../src/ltx/header.js';
import { CollectSink } from '../../../src/ltx/sink.js';
import { LITEFS_LTX, fill, gen, hex, read } from './helpers.js';

/** Builds an uncompressed LTX file without the encoder's checks (for files Go's decoder accepts but the encoder refuses). */
function rawLTX(h: Header, pages: Array<[number, Uint8Array]>, post?: bigint): Buffer {
  const parts: Uint8Array[] = [marshalHeader(h)];
  const acc = new DatabaseChecksum(h.pageSize);
  for (const [pgno, data] of pages) {
    const ph = Buffer.alloc(4);
    ph.writeUInt32BE(pgno);
    parts.push(ph, data);
    acc.addPage(pgno, data);
  }
  parts.push(new Uint8Array(4));
  const trailer = Buffer.alloc(16);
  trailer.writeBigUInt64BE(post ?? (isSnapshot(h) ? acc.value : ChecksumFlag));
  const crc = new Crc64();
  for (const p of parts) crc.update(p);
  crc.update(trailer, 0, 8);
  trailer.writeBigUInt64BE(ChecksumFlag | crc.digest(), 8);
  parts.push(trailer);
  return Buffer.concat(parts);
}

function rule(fn: () => unknown, expectedRule: string, message?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LTXDecodeError, `expected LTXDecodeError, got ${String(err)}`);
    assert.equal(err.rule, expectedRule, err.message);
    if (message !== undefined) assert.equal(err.message, message);
    return true;
  });
}

const strict: DecodeOptions = { strict: true };
const incr = makeHeader({ pageSize: 512, commit: 4, minTXID: 5n, maxTXID: 5n, preApplyChecksum: 0x8000000000000001n });
const snap = makeHeader({ pageSize: 512, commit: 3, minTXID: 1n, maxTXID: 5n });
const p = (n: number): Uint8Array => fill(512, n);

describe('decoder: non-strict accepts what Go accepts, strict mode rejects it', () => {
  test('out-of-order pages in an incremental file', () => {
    const file = rawLTX(incr, [[3, p(3)], [2, p(2)]]);
    assert.equal(decodeBytes(file).pageCount, 2);
    rule(() => decodeBytes(file, {}, strict), 'out-of-order-page-numbers', 'out-of-order page numbers: 3,2');
  });

  test('duplicate pages in an incremental file', () => {
    const file = rawLTX(incr, [[2, p(2)], [2, p(9)]]);
    assert.equal(decodeBytes(file).pageCount, 2);
    rule(() => decodeBytes(file, {}, strict), 'out-of-order-page-numbers');
  });

  test('a page beyond Commit', () => {
    const file = rawLTX(incr, [[5, p(5)]]);
    assert.equal(decodeBytes(file).pageCount, 1);
    rule(() => decodeBytes(file, {}, strict), 'page-out-of-bounds', 'page number 5 out-of-bounds for commit size 4');
  });

  test('the lock page', () => {
    const h = makeHeader({ pageSize: 65536, commit: 16386, minTXID: 5n, maxTXID: 5n, preApplyChecksum: 0x8000000000000001n });
    const file = rawLTX(h, [[16385, new Uint8Array(65536)]]);
    assert.equal(decodeBytes(file).pageCount, 1);
    rule(() => decodeBytes(file, {}, strict), 'lock-page');
  });

  test('a snapshot out of order, and one that stops before Commit', () => {
    const unordered = rawLTX(snap, [[2, p(2)], [1, p(1)], [3, p(3)]]);
    assert.equal(decodeBytes(unordered).pageCount, 3);
    rule(() => decodeBytes(unordered, {}, strict), 'snapshot-must-start-at-page-1');
    const short = rawLTX(snap, [[1, p(1)], [2, p(2)]]);
    assert.equal(decodeBytes(short).pageCount, 2);
    rule(() => decodeBytes(short, {}, strict), 'snapshot-incomplete');
    decodeBytes(rawLTX(snap, [[1, p(1)], [2, p(2)], [3, p(3)]]), {}, strict);
  });

  test('strict mode checks the trailer format of non-snapshots', () => {
    const file = rawLTX(incr, [[1, p(1)]], 5n);
    assert.equal(decodeBytes(file).trailer.postApplyChecksum, 5n);
    rule(() => decodeBytes(file, {}, strict), 'invalid-post-apply-checksum-format');
  });

  test('every fixture also passes strict mode', () => {
    for (const f of ['v1-snapshot-512-lz4.ltx', 'v4-snapshot-40x4096-lz4-multiblock.ltx', 'v3-incremental-4096-uncompressed.ltx', 'v5-delete-commit0-lz4.ltx', 'v6-compact-output.ltx']) {
      decodeBytes(read(gen(f)), {}, strict);
    }
    decodeBytes(read(LITEFS_LTX), {}, strict);
  });
});

describe('decoder: checksums and malformed input', () => {
  test('a flipped page byte fails the file checksum', () => {
    const file = Buffer.from(read(gen('v3-incremental-4096-uncompressed.ltx')));
    file[200] ^= 1;
    rule(() => decodeBytes(file), 'file-checksum-mismatch', 'file checksum mismatch');
  });

  test("a snapshot whose trailer does not match its pages fails the post-apply check", () => {
    const file = rawLTX(snap, [[1, p(1)], [2, p(2)], [3, p(3)]], 0x8000000000000007n);
    rule(
      () => decodeBytes(file),
      'post-apply-checksum-mismatch',
      `post-apply checksum in trailer (8000000000000007) does not match calculated checksum (${hex(
        (() => {
          const a = new DatabaseChecksum(512);
          for (const n of [1, 2, 3]) a.addPage(n, p(n));
          return a.value;
        })(),
      )})`,
    );
  });

  test('invalid header: magic, then validation rule, named in the error', () => {
    const file = Buffer.from(read(gen('v1-snapshot-512-uncompressed.ltx')));
    const badMagic = Buffer.from(file);
    badMagic[0] = 0;
    rule(() => decodeBytes(badMagic), 'invalid-file', 'unmarshal header: invalid LTX file');
    const badSize = Buffer.from(file);
    badSize.writeUInt32BE(1000, 8);
    rule(() => decodeBytes(badSize), 'invalid-page-size', 'invalid page size: 1000');
  });

  test('every truncation of a file is an unexpected EOF', () => {
    for (const f of ['v2-snapshot-1024-uncompressed.ltx', 'v2-snapshot-1024-lz4.ltx']) {
      const file = read(gen(f));
      rule(() => decodeBytes(file.subarray(0, 0)), 'unexpected-eof', 'EOF');
      for (let n = 1; n < file.length; n++) rule(() => decodeBytes(file.subarray(0, n)), 'unexpected-eof');
    }
  });

  test('bytes after the trailer are ignored', () => {
    const file = Buffer.concat([read(gen('v1-snapshot-512-lz4.ltx')), Buffer.from('junk')]);
    assert.equal(decodeBytes(file).pageCount, 1);
  });

  test('every single-byte corruption of an LZ4 file throws a typed error or decodes', () => {
    const file = read(gen('v4-snapshot-40x4096-lz4-multiblock.ltx'));
    let rejected = 0;
    for (let i = 0; i < file.length; i += 97) {
      const bad = Buffer.from(file);
      bad[i] ^= 0x5a;
      try {
        decodeBytes(bad);
      } catch (e) {
        assert.ok(e instanceof LTXError, `offset ${i}: ${String(e)}`);
        rejected++;
      }
    }
    assert.ok(rejected > 0);
  });

  test('a failed decoder keeps failing with the same error', () => {
    const dec = new LTXDecoder();
    const bad = Buffer.from(read(gen('v1-snapshot-512-uncompressed.ltx')));
    bad[0] = 0;
    let first: unknown;
    try {
      dec.push(bad);
    } catch (e) {
      first = e;
    }
    assert.throws(() => dec.push(Buffer.alloc(1)), (e: unknown) => e === first);
    assert.throws(() => dec.end(), (e: unknown) => e === first);
  });
});

describe('decoder: streaming', () => {
  function digest(file: Uint8Array, chunking: (len: number) => number[]): string {
    const seen: string[] = [];
    const dec = new LTXDecoder({
      onHeader: (h) => seen.push(`h${h.commit}`),
      onPage: (pgno, data) => seen.push(`${pgno}:${hex(checksumPage(pgno, data))}`),
      onTrailer: (t) => seen.push(hex(t.fileChecksum)),
    });
    let pos = 0;
    for (const n of chunking(file.length)) {
      dec.push(file.subarray(pos, pos + n));
      pos += n;
    }
    const s = dec.end();
    return `${seen.join(',')}|${s.pageCount}|${s.n}`;
  }

  let seed = 12345;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  const ones = (len: number): number[] => new Array<number>(len).fill(1);
  const randomChunks = (len: number): number[] => {
    const out: number[] = [];
    for (let left = len; left > 0; ) {
      const n = Math.min(left, 1 + (rand() % 9000));
      out.push(n);
      left -= n;
    }
    return out;
  };

  for (const f of ['v4-snapshot-40x4096-uncompressed.ltx', 'v4-snapshot-40x4096-lz4-multiblock.ltx']) {
    test(`${f}: one byte at a time and random chunks give the same result as one push`, () => {
      const file = read(gen(f));
      const whole = digest(file, (len) => [len]);
      assert.equal(digest(file, ones), whole);
      for (let i = 0; i < 5; i++) assert.equal(digest(file, randomChunks), whole);
    });
  }

  test('decodeStream reads an async iterable', async () => {
    const file = read(gen('v4-snapshot-40x4096-lz4-multiblock.ltx'));
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < file.length; i += 1000) yield file.subarray(i, i + 1000);
    }
    const pgnos: number[] = [];
    const s = await decodeStream(chunks(), (pgno) => pgnos.push(pgno));
    assert.equal(s.pageCount, 40);
    assert.deepEqual(pgnos, Array.from({ length: 40 }, (_, i) => i + 1));
    assert.equal(hex(s.trailer.fileChecksum), 'a0ba5a0b971d2333');
  });
});

describe('decoder: file helpers', () => {
  test('decodeFileSync returns page numbers and checksums from a path, an fd or bytes', () => {
    const r = decodeFileSync(LITEFS_LTX);
    assert.deepEqual(r.pgnos, [1, 7, 8]);
    assert.deepEqual(r.pageChecksums.map(hex), ['adf3e188cb5dc241', 'eaf0947b2055d648', '9a7407c73d4bb9da']);
    assert.equal(hex(r.trailer.postApplyChecksum), 'fe3831a381c602b9');
    assert.deepEqual(decodeFileSync(read(LITEFS_LTX)).pgnos, [1, 7, 8]);
  });

  test('verifyFileSync passes on a good file and names the rule on a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ltx-'));
    try {
      assert.equal(verifyFileSync(gen('v4-snapshot-40x4096-lz4-multiblock.ltx')).pageCount, 40);
      const bad = Buffer.from(read(gen('v4-snapshot-40x4096-uncompressed.ltx')));
      bad[bad.length - 1] ^= 1;
      writeFileSync(join(dir, 'bad.ltx'), bad);
      rule(() => verifyFileSync(join(dir, 'bad.ltx')), 'file-checksum-mismatch');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('decodeDatabaseTo writes the database image of a snapshot', () => {
    const sink = new CollectSink();
    decodeDatabaseTo(gen('v4-snapshot-40x4096-lz4-multiblock.ltx'), sink);
    const db = sink.bytes();
    assert.equal(db.length, 40 * 4096);
    const acc = new DatabaseChecksum(4096);
    for (let pg = 1; pg <= 40; pg++) acc.addPage(pg, db.subarray((pg - 1) * 4096, pg * 4096));
    assert.equal(hex(acc.value), '88d6d675f51ca959');
  });

  test('decodeDatabaseTo refuses incremental files and gaps', () => {
    rule(() => decodeDatabaseTo(read(LITEFS_LTX), new CollectSink()), 'not-snapshot', 'cannot decode non-snapshot LTX file to SQLite database');
    const gap = rawLTX(snap, [[1, p(1)], [3, p(3)]]);
    rule(() => decodeDatabaseTo(gap, new CollectSink()), 'unexpected-pgno', 'unexpected pgno while decoding page: read 3, expected 2');
  });
});
