import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { xxh32 } from '@node-rs/xxhash';
import { LZ4FrameDecoder, LZ4FrameEncoder } from '../../../src/ltx/lz4frame.js';
import { decodeBlock } from '../../../src/ltx/lz4block.js';
import { LZ4FrameError } from '../../../src/ltx/errors.js';
import { CollectSink } from '../../../src/ltx/sink.js';

function encode(data: Uint8Array, pieces = 1): Buffer {
  const sink = new CollectSink();
  const enc = new LZ4FrameEncoder(sink);
  const step = Math.ceil(data.length / pieces) || 1;
  for (let i = 0; i < data.length; i += step) enc.write(data.subarray(i, i + step));
  enc.close();
  return sink.bytes();
}

/** Decodes a frame pushed in `chunk`-byte pieces; returns the output and how many input bytes were used. */
function decode(frame: Uint8Array, chunk = frame.length): { out: Buffer; used: number } {
  const dec = new LZ4FrameDecoder();
  const parts: Buffer[] = [];
  let off = 0;
  while (!dec.done) {
    if (dec.pending > 0) {
      parts.push(Buffer.from(dec.outputBuffer.subarray(dec.outputOffset, dec.outputOffset + dec.pending)));
      dec.consume(dec.pending);
      continue;
    }
    if (off >= frame.length) throw new Error('frame truncated');
    off += dec.push(frame, off, Math.min(chunk, frame.length - off));
  }
  return { out: Buffer.concat(parts), used: off };
}

function sample(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    if (i % 1000 < 700) out[i] = (i >> 5) & 0xff; // compressible runs
    else {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      out[i] = x >>> 24;
    }
  }
  return out;
}

function storedFrame(flg: number, bd: number, blocks: Uint8Array[], contentChecksum: boolean, blockChecksum = false): Buffer {
  const desc = Buffer.from([flg, bd]);
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18]), desc, Buffer.from([(xxh32(desc, 0) >>> 8) & 0xff])];
  for (const b of blocks) {
    const w = Buffer.alloc(4);
    w.writeUInt32LE((b.length | 0x80000000) >>> 0);
    parts.push(w, Buffer.from(b));
    if (blockChecksum) {
      const c = Buffer.alloc(4);
      c.writeUInt32LE(xxh32(b, 0) >>> 0);
      parts.push(c);
    }
  }
  parts.push(Buffer.alloc(4));
  if (contentChecksum) {
    const c = Buffer.alloc(4);
    c.writeUInt32LE(xxh32(Buffer.concat(blocks.map((b) => Buffer.from(b))), 0) >>> 0);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

function rule(fn: () => unknown, expected: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LZ4FrameError, String(err));
    assert.equal(err.rule, expected);
    return true;
  });
}

describe('LZ4 frame encoder', () => {
  test('writes FLG 64, BD 40, HC a7 and cuts 64 KiB blocks at fixed offsets', () => {
    const data = sample(200_000, 1);
    const frame = encode(data, 7);
    assert.deepEqual([...frame.subarray(0, 7)], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]);
    const { out, used } = decode(frame);
    assert.ok(out.equals(data));
    assert.equal(used, frame.length);
    // Same output whatever the write pattern: blocks depend only on the logical stream.
    assert.ok(encode(data, 1).equals(encode(data, 1000)));
  });

  test('stores incompressible blocks raw and ends with the xxh32 content checksum', () => {
    const random = new Uint8Array(70_000);
    let x = 99;
    for (let i = 0; i < random.length; i++) random[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
    const frame = encode(random);
    assert.equal(frame.readUInt32LE(7), (65536 | 0x80000000) >>> 0);
    assert.equal(frame.readUInt32LE(frame.length - 4), xxh32(random, 0) >>> 0);
    assert.equal(frame.readUInt32LE(frame.length - 8), 0);
    assert.ok(decode(frame).out.equals(random));
  });

  test('empty input is header, end mark and checksum', () => {
    const frame = encode(new Uint8Array(0));
    assert.deepEqual([...frame], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0, 0, 0, 0, 0x05, 0x5d, 0xcc, 0x02]);
  });
});

describe('LZ4 frame decoder', () => {
  test('one byte at a time gives the same output and stops exactly at the frame end', () => {
    const data = sample(150_000, 2);
    const frame = Buffer.concat([encode(data), Buffer.from('TRAILER')]);
    for (const chunk of [1, 3, 4096, frame.length]) {
      const { out, used } = decode(frame, chunk);
      assert.ok(out.equals(data), `chunk ${chunk}`);
      assert.equal(used, frame.length - 7, `chunk ${chunk}`);
    }
  });

  test('decoders running side by side never share block buffers; a finished one hands them to the next', () => {
    // Finished frames give their buffers back for reuse: two decoders at
    // once, each fed in pieces (so both assemble blocks in their own buffer),
    // then more after them, must each produce exactly their own data.
    const datas = [sample(200_000, 11), sample(180_000, 12), sample(70_000, 13), sample(90_000, 14)];
    const frames = datas.map((d) => encode(d));
    const decs = [new LZ4FrameDecoder(), new LZ4FrameDecoder()];
    const outs: Buffer[][] = [[], []];
    const offs = [0, 0];
    while (decs.some((d) => !d.done)) {
      for (const i of [0, 1]) {
        const dec = decs[i]!;
        if (dec.done) continue;
        if (dec.pending > 0) {
          outs[i]!.push(Buffer.from(dec.outputBuffer.subarray(dec.outputOffset, dec.outputOffset + dec.pending)));
          dec.consume(dec.pending);
          continue;
        }
        offs[i]! += dec.push(frames[i]!, offs[i]!, Math.min(5000, frames[i]!.length - offs[i]!));
      }
    }
    assert.ok(Buffer.concat(outs[0]!).equals(datas[0]!));
    assert.ok(Buffer.concat(outs[1]!).equals(datas[1]!));
    for (const i of [2, 3]) for (const chunk of [7, 4096, frames[i]!.length]) assert.ok(decode(frames[i]!, chunk).out.equals(datas[i]!), `frame ${i}, chunk ${chunk}`);
  });

  test('accepts stored blocks, no content checksum, 4 MiB blocks, block checksums, small blocks', () => {
    const data = sample(5000, 3);
    const blocks = [data.subarray(0, 100), data.subarray(100, 4000), data.subarray(4000)];
    const variants = [
      storedFrame(0x64, 0x40, blocks, true),
      storedFrame(0x60, 0x40, blocks, false),
      storedFrame(0x64, 0x70, [data], true),
      storedFrame(0x74, 0x40, blocks, true, true),
      storedFrame(0x44, 0x40, blocks, true),
    ];
    for (const frame of variants) {
      for (const chunk of [1, 7, frame.length]) assert.ok(decode(frame, chunk).out.equals(data));
    }
  });

  test('rejects a bad magic, version, block size index and header checksum', () => {
    const good = storedFrame(0x64, 0x40, [Uint8Array.of(1, 2, 3)], true);
    const mutate = (i: number, v: number): Buffer => {
      const b = Buffer.from(good);
      b[i] = v;
      return b;
    };
    rule(() => decode(mutate(0, 5)), 'lz4-invalid-magic');
    rule(() => decode(mutate(4, 0x24)), 'lz4-unsupported-version');
    rule(() => decode(mutate(5, 0x30)), 'lz4-invalid-block-size');
    rule(() => decode(mutate(6, 0)), 'lz4-header-checksum-mismatch');
  });

  test('rejects oversized blocks and checksum mismatches', () => {
    const big = storedFrame(0x64, 0x40, [new Uint8Array(65537)], true);
    rule(() => decode(big), 'lz4-block-too-large');
    const cc = storedFrame(0x64, 0x40, [Uint8Array.of(1, 2, 3)], true);
    cc[cc.length - 1] ^= 1;
    rule(() => decode(cc), 'lz4-content-checksum-mismatch');
    const bc = storedFrame(0x74, 0x40, [Uint8Array.of(1, 2, 3)], true, true);
    bc[14] ^= 1;
    rule(() => decode(bc), 'lz4-block-checksum-mismatch');
  });

  test('rejects corrupt compressed blocks', () => {
    // token: 0 literals, match with offset 5 before any output.
    const desc = Buffer.from([0x60, 0x40]);
    const frame = Buffer.concat([
      Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, (xxh32(desc, 0) >>> 8) & 0xff]),
      Buffer.from([3, 0, 0, 0, 0x00, 0x05, 0x00]),
      Buffer.alloc(4),
    ]);
    rule(() => decode(frame), 'lz4-corrupt-block');
  });
});

describe('LZ4 block decoder', () => {
  test('checks every bound and handles overlapping matches', () => {
    const dst = new Uint8Array(32);
    // 1 literal 'a', then match offset 1 length 4+3 = 7: "aaaaaaaa", then 2 literals.
    const src = Uint8Array.of(0x13, 0x61, 0x01, 0x00, 0x20, 0x62, 0x63);
    const n = decodeBlock(src, 0, src.length, dst, 0, dst.length, 0);
    assert.equal(Buffer.from(dst.subarray(0, n)).toString(), 'aaaaaaaabc');
    assert.equal(decodeBlock(src, 0, src.length, dst, 0, 5, 0), -1, 'output bound');
    assert.equal(decodeBlock(Uint8Array.of(0xf0, 0xff, 0xff), 0, 3, dst, 0, 32, 0), -1, 'truncated length');
    assert.equal(decodeBlock(Uint8Array.of(0x50, 1, 2), 0, 3, dst, 0, 32, 0), -1, 'literals past input');
    assert.equal(decodeBlock(Uint8Array.of(0x10, 1, 0, 0), 0, 4, dst, 0, 32, 0), -1, 'zero offset');
  });
});
