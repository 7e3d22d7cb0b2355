import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LTXEncoder } from '../../../src/ltx/encoder.js';
import { LTXEncodeError, LTXValidationError } from '../../../src/ltx/errors.js';
import { type Header, makeHeader } from '../../../src/ltx/header.js';
import { BufferedSink, CollectSink } from '../../../src/ltx/sink.js';
import { fill } from './helpers.js';

const deletion = makeHeader({
  pageSize: 4096,
  commit: 0,
  minTXID: 9n,
  maxTXID: 9n,
  timestamp: 1700000000999n,
  preApplyChecksum: 0x8000000000000005n,
});

function encodeEmpty(h: Header, post: bigint): Buffer {
  const sink = new CollectSink();
  const enc = new LTXEncoder(sink);
  enc.encodeHeader(h);
  enc.setPostApplyChecksum(post);
  enc.close();
  return sink.bytes();
}

function fromHex(s: string): Buffer {
  return Buffer.from(s.replace(/[^0-9a-f]/g, ''), 'hex');
}

describe('encoder: complete files (formats.md A.12)', () => {
  test('the 120-byte deletion LTX', () => {
    const expected = fromHex(`
      4c545831 00000000 00001000 00000000
      00000000 00000009 00000000 00000009
      0000018b cfe56be7 80000000 00000005
      00000000 00000000 00000000 00000000
      00000000 00000000 00000000 00000000
      00000000 00000000 00000000 00000000
      00000000 00000000 80000000 00000000 e875beb3 0cb2a5e7`);
    assert.equal(expected.length, 120);
    assert.ok(encodeEmpty(deletion, 0x8000000000000000n).equals(expected));
  });

  test('its 139-byte LZ4 twin', () => {
    const plain = encodeEmpty(deletion, 0x8000000000000000n);
    const lz4 = encodeEmpty({ ...deletion, flags: 1 }, 0x8000000000000000n);
    assert.equal(lz4.length, 139);
    const expected = Buffer.concat([
      plain.subarray(0, 7),
      Buffer.from([1]),
      plain.subarray(8, 100),
      fromHex('04224d18 6440a7 04000080 00000000 00000000 69d9d608'),
      fromHex('8000000000000000 e925aae249a6f5f2'),
    ]);
    assert.ok(lz4.equals(expected));
  });
});

describe('encoder: page rules in ltx order with exact messages', () => {
  function encoder(fields: Partial<Header>): LTXEncoder {
    const enc = new LTXEncoder(new CollectSink());
    enc.encodeHeader(makeHeader({ pageSize: 512, commit: 10, minTXID: 2n, maxTXID: 2n, preApplyChecksum: 0x8000000000000001n, ...fields }));
    return enc;
  }
  function rejects(fn: () => void, message: string, rule: string): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof LTXEncodeError, String(err));
      assert.equal(err.message, message);
      assert.equal(err.rule, rule);
      return true;
    });
  }
  const page = fill(512, 1);

  test('a page before the header', () => {
    const enc = new LTXEncoder(new CollectSink());
    rejects(() => enc.encodePage(1, page), 'cannot encode page header, expected header', 'expected-header');
    rejects(() => enc.close(), 'cannot close, expected header', 'expected-header');
  });

  test('pgno beyond commit is checked before pgno 0 and the buffer size', () => {
    rejects(() => encoder({}).encodePage(11, new Uint8Array(3)), 'page number 11 out-of-bounds for commit size 10', 'page-out-of-bounds');
  });

  test('pgno 0', () => rejects(() => encoder({}).encodePage(0, new Uint8Array(3)), 'page number required', 'page-number-required'));

  test('buffer size', () =>
    rejects(() => encoder({}).encodePage(1, new Uint8Array(3)), 'invalid page buffer size: 3, expecting 512', 'invalid-page-buffer-size'));

  test('lock page', () => {
    const enc = encoder({ commit: 3000000 });
    rejects(() => enc.encodePage(2097153, page), 'cannot encode lock page: pgno=2097153', 'lock-page');
  });

  test('snapshot must start at 1', () =>
    rejects(() => encoder({ minTXID: 1n, preApplyChecksum: 0n }).encodePage(2, page), 'snapshot transaction file must start with page number 1', 'snapshot-must-start-at-page-1'));

  test('snapshot pages are sequential', () => {
    const enc = encoder({ minTXID: 1n, preApplyChecksum: 0n });
    enc.encodePage(1, page);
    rejects(() => enc.encodePage(3, page), 'nonsequential page numbers in snapshot transaction: 1,3', 'nonsequential-page-numbers');
  });

  test('snapshot skips exactly the lock page', () => {
    const big = makeHeader({ pageSize: 65536, commit: 16390, minTXID: 1n, maxTXID: 1n });
    const sink = { write(): void {} };
    const enc = new LTXEncoder(sink);
    enc.encodeHeader(big);
    const p = new Uint8Array(65536);
    for (let pgno = 1; pgno <= 16384; pgno++) enc.encodePage(pgno, p);
    rejects(() => enc.encodePage(16387, p), 'nonsequential page numbers in snapshot transaction (skip lock page): 16384,16387', 'nonsequential-page-numbers');
    enc.encodePage(16386, p);
  });

  test('incremental pages strictly increase', () => {
    const enc = encoder({});
    enc.encodePage(3, page);
    enc.encodePage(7, page);
    rejects(() => enc.encodePage(7, page), 'out-of-order page numbers: 7,7', 'out-of-order-page-numbers');
    rejects(() => enc.encodePage(5, page), 'out-of-order page numbers: 7,5', 'out-of-order-page-numbers');
  });

  test('header twice, header after close, page after close, close twice', () => {
    const enc = encoder({});
    rejects(() => enc.encodeHeader(deletion), 'cannot encode header frame, expected page', 'header-already-encoded');
    enc.setPostApplyChecksum(0x8000000000000001n);
    enc.close();
    enc.close();
    rejects(() => enc.encodeHeader(deletion), 'ltx encoder closed', 'encoder-closed');
    rejects(() => enc.encodePage(1, page), 'ltx encoder closed', 'encoder-closed');
  });

  test('invalid header is rejected by validation', () => {
    const enc = new LTXEncoder(new CollectSink());
    assert.throws(() => enc.encodeHeader(makeHeader({ pageSize: 100, minTXID: 1n, maxTXID: 1n })), LTXValidationError);
  });

  test('close: trailer validation and the Commit=0 rule', () => {
    rejects(() => encoder({}).close(), 'post-apply checksum required', 'post-apply-checksum-required');
    const enc = encoder({});
    enc.setPostApplyChecksum(5n);
    rejects(() => enc.close(), 'invalid post-apply checksum format', 'invalid-post-apply-checksum-format');
    const del = new LTXEncoder(new CollectSink());
    del.encodeHeader(deletion);
    del.setPostApplyChecksum(0x8000000000000001n);
    rejects(() => del.close(), 'post-apply checksum must be empty for zero-length database', 'deleted-database-post-apply-checksum');
  });

  test('positions and n', () => {
    const enc = encoder({});
    enc.encodePage(1, page);
    enc.setPostApplyChecksum(0x8000000000000009n);
    enc.close();
    assert.deepEqual(enc.postApplyPos(), { txid: 2n, postApplyChecksum: 0x8000000000000009n });
    assert.equal(enc.n, 100 + 516 + 4 + 16);
    assert.ok((enc.trailer.fileChecksum & (1n << 63n)) !== 0n);
  });
});

describe('encoder: buffers handed on by closed encoders', () => {
  // Closed encoders give their output buffer (and LZ4 scratch) to the next
  // one on the thread; a file must never depend on what a buffer held.
  const header = (txid: bigint, flags: number): Header =>
    makeHeader({ flags, pageSize: 512, commit: 300, minTXID: txid, maxTXID: txid, preApplyChecksum: 0x8000000000000001n });
  // 300 pages of 512 bytes: more than one 64 KiB output buffer and LZ4 block.
  const pageOf = (seed: number, pgno: number): Uint8Array => fill(512, seed * 1000 + pgno);

  function start(seed: number, flags: number): { enc: LTXEncoder; sink: CollectSink } {
    const sink = new CollectSink();
    const enc = new LTXEncoder(sink);
    enc.encodeHeader(header(BigInt(seed + 1), flags));
    return { enc, sink };
  }
  function finish(e: { enc: LTXEncoder; sink: CollectSink }): Buffer {
    e.enc.setPostApplyChecksum(0x8000000000000002n);
    e.enc.close();
    return e.sink.bytes();
  }
  function alone(seed: number, flags: number): Buffer {
    const e = start(seed, flags);
    for (let pgno = 1; pgno <= 300; pgno++) e.enc.encodePage(pgno, pageOf(seed, pgno));
    return finish(e);
  }

  for (const flags of [0, 1]) {
    test(`${flags === 1 ? 'LZ4: ' : ''}side by side, and started after another closed, the bytes are the same`, () => {
      const a = start(1, flags);
      const b = start(2, flags);
      for (let pgno = 1; pgno <= 150; pgno++) {
        a.enc.encodePage(pgno, pageOf(1, pgno));
        b.enc.encodePage(pgno, pageOf(2, pgno));
      }
      for (let pgno = 151; pgno <= 300; pgno++) a.enc.encodePage(pgno, pageOf(1, pgno));
      const aBytes = finish(a);
      // c takes a's buffers while b still writes into its own.
      const c = start(3, flags);
      for (let pgno = 1; pgno <= 300; pgno++) {
        c.enc.encodePage(pgno, pageOf(3, pgno));
        if (pgno > 150) b.enc.encodePage(pgno, pageOf(2, pgno));
      }
      const bBytes = finish(b);
      const cBytes = finish(c);
      assert.ok(aBytes.equals(alone(1, flags)));
      assert.ok(bBytes.equals(alone(2, flags)));
      assert.ok(cBytes.equals(alone(3, flags)));
    });
  }

  test('a released sink flushes first and refuses later writes', () => {
    const sink = new CollectSink();
    const buffered = new BufferedSink(sink);
    buffered.write(Uint8Array.of(1, 2, 3));
    buffered.release();
    assert.deepEqual([...sink.bytes()], [1, 2, 3]);
    assert.throws(() => buffered.write(Uint8Array.of(4)), /write after release/);
  });
});
