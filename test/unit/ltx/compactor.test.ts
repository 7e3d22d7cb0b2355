import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compact } from '../../../src/ltx/compactor.js';
import { decodeBytes } from '../../../src/ltx/decoder.js';
import { LTXEncoder } from '../../../src/ltx/encoder.js';
import { LTXCompactError, LTXDecodeError } from '../../../src/ltx/errors.js';
import { type Header, makeHeader } from '../../../src/ltx/header.js';
import { CollectSink } from '../../../src/ltx/sink.js';
import { bufferReader } from '../../../src/ltx/source.js';
import { fill, gen, hex, read } from './helpers.js';

function ltx(h: Partial<Header>, pages: Array<[number, number]>, post: bigint): Buffer {
  const sink = new CollectSink();
  const enc = new LTXEncoder(sink);
  const header = makeHeader({ pageSize: 1024, ...h });
  enc.encodeHeader(header);
  for (const [pgno, b] of pages) enc.encodePage(pgno, fill(header.pageSize, b));
  enc.setPostApplyChecksum(post);
  enc.close();
  return sink.bytes();
}

function compactToBytes(inputs: Parameters<typeof compact>[1], opts = {}): Buffer {
  const sink = new CollectSink();
  compact(sink, inputs, opts);
  return sink.bytes();
}

describe('compactor (formats.md A.10)', () => {
  test('reproduces v6-compact-output.ltx byte for byte from inputs (b, a)', () => {
    const out = compactToBytes([read(gen('v6-compact-input-b.ltx')), read(gen('v6-compact-input-a.ltx'))]);
    assert.ok(out.equals(read(gen('v6-compact-output.ltx'))));
  });

  test('reads inputs from paths and readers as well', () => {
    const out = compactToBytes([gen('v6-compact-input-b.ltx'), bufferReader(read(gen('v6-compact-input-a.ltx')))]);
    assert.ok(out.equals(read(gen('v6-compact-output.ltx'))));
  });

  test('ltx compactor test: three files merge to the documented checksums', () => {
    // From ltx's compactor tests (formats.md A.12): inputs then the expected output's file checksum.
    const a = ltx({ commit: 3, minTXID: 1n, maxTXID: 2n, timestamp: 2000n }, [[1, 0x91], [2, 0x82], [3, 0x93]], 0x8a249272ad9f7dean);
    assert.equal(hex(decodeBytes(a, {}, {}).trailer.fileChecksum), 'caf341fe1e6cddfb');
    const b = ltx(
      { commit: 5, minTXID: 2n, maxTXID: 9n, timestamp: 3000n, preApplyChecksum: 0x8000000000000002n },
      [[1, 0x91], [2, 0xa2], [3, 0xa3], [5, 0xa5]],
      0x8000000000000009n,
    );
    assert.equal(hex(decodeBytes(b).trailer.fileChecksum), 'ead633959f3c67a8');
    const c = ltx({ commit: 2, minTXID: 2n, maxTXID: 5n, timestamp: 2000n, preApplyChecksum: 0x8000000000000002n }, [[1, 0x91]], 0x8000000000000005n);
    assert.equal(hex(decodeBytes(c).trailer.fileChecksum), 'f688132c3904f118');
  });

  test('takes each page from the latest input and drops pages beyond the last Commit', () => {
    const f1 = ltx({ commit: 4, minTXID: 2n, maxTXID: 2n, preApplyChecksum: 0x8000000000000001n }, [[1, 1], [3, 3], [4, 4]], 0x8000000000000002n);
    const f2 = ltx({ commit: 4, minTXID: 3n, maxTXID: 4n, timestamp: 77n, preApplyChecksum: 0x8000000000000002n, flags: 1 }, [[2, 0x22], [3, 0x33]], 0x8000000000000004n);
    const f3 = ltx({ commit: 3, minTXID: 5n, maxTXID: 5n, timestamp: 99n, preApplyChecksum: 0x8000000000000004n }, [[1, 0x51]], 0x8000000000000005n);
    const pages: string[] = [];
    const s = decodeBytes(compactToBytes([f3, f1, f2], { headerFlags: 1 }), {
      onPage: (pgno, data) => pages.push(`${pgno}:${data[0].toString(16)}`),
    });
    assert.deepEqual(pages, ['1:51', '2:22', '3:33']);
    const h = s.header;
    assert.deepEqual(
      [h.flags, h.commit, h.minTXID, h.maxTXID, h.timestamp, h.preApplyChecksum, h.nodeID, h.walOffset],
      [1, 3, 2n, 5n, 99n, 0x8000000000000001n, 0n, 0n],
    );
    assert.equal(s.trailer.postApplyChecksum, 0x8000000000000005n);
  });

  test('errors: no inputs, mismatched page sizes, non-contiguous TXIDs', () => {
    assert.throws(() => compactToBytes([]), { message: 'at least one input reader required' });
    // Header checks fail before any input body is read, so the post-apply values here do not matter.
    const a = ltx({ commit: 1, minTXID: 1n, maxTXID: 1n }, [[1, 1]], 0x8000000000000000n);
    const b512 = ltx({ pageSize: 512, commit: 1, minTXID: 2n, maxTXID: 2n, preApplyChecksum: 0x8000000000000001n }, [[1, 1]], 0x8000000000000002n);
    const b3 = ltx({ commit: 1, minTXID: 3n, maxTXID: 4n, preApplyChecksum: 0x8000000000000001n }, [[1, 1]], 0x8000000000000002n);
    assert.throws(() => compactToBytes([a, b512]), (e: unknown) => {
      assert.ok(e instanceof LTXCompactError);
      assert.equal(e.message, 'input files have mismatched page sizes: 1024 != 512');
      return true;
    });
    assert.throws(() => compactToBytes([b3, a]), {
      message: 'non-contiguous transaction ids in input files: (0000000000000001,0000000000000001) -> (0000000000000003,0000000000000004)',
    });
  });

  test('a broken input header throws (Go v0.3.13 silently returned nil)', () => {
    const bad = Buffer.from(read(gen('v6-compact-input-a.ltx')));
    bad[0] = 0;
    assert.throws(() => compactToBytes([read(gen('v6-compact-input-b.ltx')), bad]), (e: unknown) => {
      assert.ok(e instanceof LTXDecodeError);
      assert.equal(e.rule, 'invalid-file');
      assert.match(e.message, /^decode input header 1: /);
      return true;
    });
  });

  test('a corrupt input body fails its checksum during the merge', () => {
    const bad = Buffer.from(read(gen('v6-compact-input-a.ltx')));
    bad[500] ^= 1;
    assert.throws(() => compactToBytes([read(gen('v6-compact-input-b.ltx')), bad]), { message: 'file checksum mismatch' });
  });
});
