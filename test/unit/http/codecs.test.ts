import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePosMap, encodePosMap, type Pos } from '../../../src/http/posmap.js';
import { ChunkDecoder, CHUNK_TERMINATOR, encodeChunkedStream, encodeChunks } from '../../../src/http/chunk.js';
import {
  decodeFrames,
  encodeFrame,
  encodeLTXFrame,
  FrameDecoder,
  MAX_NAME_LENGTH,
  type DecodedFrame,
  type StreamFrame,
} from '../../../src/http/frames.js';
import { FrameReader } from '../../../src/http/frame-reader.js';
import {
  ChunkStreamError,
  UnexpectedEOFError,
  UnknownFrameTypeError,
  WireEOFError,
  WireLimitError,
} from '../../../src/http/errors.js';
import { capture, recordedLTX, wireFile, wireIndex } from './wire-fixtures.js';

const pos = (txid: bigint, chk: bigint): Pos => ({ txid, postApplyChecksum: chk });

describe('position map', () => {
  test('encodes a.db at TXID 2 exactly as the recorded stream-a-txid2 request body', () => {
    const body = encodePosMap(new Map([['a.db', pos(2n, 0xdda7a2c3a9890af9n)]]));
    assert.deepEqual(body, wireFile('stream-a-txid2.req.bin'));
  });

  test('sorts entries by name bytes whatever the insertion order (stream-drop-db body)', () => {
    const map = new Map([
      ['gone.db', pos(5n, 0x8000000000001234n)],
      ['b.db', pos(3n, 0xd37a7dd1148a75bcn)],
      ['a.db', pos(3n, 0xa444cfc485df4b1dn)],
    ]);
    assert.deepEqual(encodePosMap(map), wireFile('stream-drop-db.req.bin'));
  });

  test('every recorded well-formed request body decodes and re-encodes to the same bytes', () => {
    let checked = 0;
    for (const c of wireIndex.captures) {
      if (!c.files.request_body || !c.frames) continue;
      const body = wireFile(c.files.request_body);
      assert.deepEqual(encodePosMap(decodePosMap(body)), body, c.name);
      checked++;
    }
    assert.ok(checked >= 10, `checked ${checked} bodies`);
  });

  test('an empty map is 00000000', () => {
    assert.deepEqual(encodePosMap(new Map()), Buffer.from('00000000', 'hex'));
    assert.equal(decodePosMap(Buffer.from('00000000', 'hex')).size, 0);
  });

  test('a 0-byte body fails with EOF, as Go answers stream-empty-body', () => {
    assert.equal(wireFile('stream-empty-body.body.txt').toString(), 'EOF\n');
    assert.throws(() => decodePosMap(Buffer.alloc(0)), (e: unknown) => e instanceof WireEOFError && e.message === 'EOF');
  });

  test('a body ending inside an entry fails with unexpected EOF, as Go answers stream-truncated-body', () => {
    assert.equal(wireFile('stream-truncated-body.body.txt').toString(), 'unexpected EOF\n');
    const body = wireFile('stream-truncated-body.req.bin');
    assert.throws(() => decodePosMap(body), (e: unknown) => e instanceof UnexpectedEOFError && e.message === 'unexpected EOF');
  });

  test('truncation at every offset gives EOF at field starts and unexpected EOF inside fields (Go binary.Read)', () => {
    const full = wireFile('stream-caught-up.req.bin');
    // Field boundaries: count, then per entry nameLen | name | txid | checksum.
    const starts = new Set([0, 4, 8, 12, 20, 28, 32, 36, 44, 52]);
    for (let n = 0; n < full.length; n++) {
      assert.throws(
        () => decodePosMap(full.subarray(0, n)),
        (e: unknown) => (starts.has(n) ? e instanceof WireEOFError : e instanceof UnexpectedEOFError),
        `length ${n}`,
      );
    }
  });

  test('a huge count or name length with little data fails without allocating for it', () => {
    assert.throws(() => decodePosMap(Buffer.from('ffffffff', 'hex')), WireEOFError);
    assert.throws(() => decodePosMap(Buffer.from('00000001ffffffff6162', 'hex')), UnexpectedEOFError);
  });

  test('trailing bytes after the last entry are ignored and duplicate names keep the last', () => {
    const one = encodePosMap(new Map([['x', pos(1n, 2n)]]));
    const two = Buffer.concat([Buffer.from('00000002', 'hex'), one.subarray(4), one.subarray(4)]);
    two.writeBigUInt64BE(9n, two.length - 8);
    const m = decodePosMap(Buffer.concat([two, Buffer.from('junk')]));
    assert.deepEqual([...m], [['x', pos(1n, 9n)]]);
  });
});

describe('chunked byte stream', () => {
  test('writes split into chunks of at most 65535 bytes and never empty', () => {
    assert.deepEqual(encodeChunks(Buffer.alloc(0)), []);
    const sizes = (n: number) => encodeChunks(Buffer.alloc(n, 7)).map((c) => c.readUInt16BE(0));
    assert.deepEqual(sizes(1), [1]);
    assert.deepEqual(sizes(65535), [65535]);
    assert.deepEqual(sizes(65536), [65535, 1]);
    assert.deepEqual(sizes(200_000), [65535, 65535, 65535, 3395]);
  });

  test('the decoder hands out the payload, fed one byte at a time, and stops right after the terminator', () => {
    const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i & 0xff));
    const wire = Buffer.concat([encodeChunkedStream([payload.subarray(0, 10), payload.subarray(10)]), Buffer.from('NEXT')]);
    const dec = new ChunkDecoder();
    const got: Buffer[] = [];
    const lengths: number[] = [];
    let consumed = 0;
    for (let i = 0; i < wire.length && !dec.done; i++) {
      consumed += dec.push(wire.subarray(i, i + 1), (p) => got.push(Buffer.from(p)), (n) => lengths.push(n));
    }
    assert.equal(dec.done, true);
    assert.deepEqual(Buffer.concat(got), payload);
    assert.deepEqual(lengths, [10, 65535, 4455]);
    assert.equal(consumed, wire.length - 4);
  });

  test('one push returns the bytes consumed up to the terminator; pushing after the end is an error', () => {
    const wire = Buffer.concat([encodeChunkedStream([Buffer.from('abc')]), Buffer.from('rest')]);
    const dec = new ChunkDecoder();
    const got: Buffer[] = [];
    assert.equal(dec.push(wire, (p) => got.push(p)), 7);
    assert.equal(Buffer.concat(got).toString(), 'abc');
    assert.throws(() => dec.push(Buffer.from('x'), () => {}), ChunkStreamError);
    assert.deepEqual(CHUNK_TERMINATOR, Buffer.from([0, 0]));
  });
});

const everyFrame: StreamFrame[] = [
  { type: 'ready' },
  { type: 'end' },
  { type: 'dropDB', name: 'gone.db' },
  { type: 'handoff', leaseID: 'lease-7f3c' },
  { type: 'hwm', txid: 0xfedcba9876543210n, name: 'a.db' },
  { type: 'heartbeat', timestamp: 1795468539510n },
  { type: 'heartbeat', timestamp: -1n },
  { type: 'snapshotReason', name: 'a.db', reason: 'diverged' },
];

describe('stream frames', () => {
  test('hand-made bytes for every frame type match the layout of ref §9.4', () => {
    const hex = (f: StreamFrame) => encodeFrame(f).toString('hex');
    assert.equal(hex({ type: 'ltx', name: 'a.db', size: 0n }), '00000001' + '0000000000000000' + '00000004612e6462');
    assert.equal(hex({ type: 'ready' }), '00000002');
    assert.equal(hex({ type: 'end' }), '00000003');
    assert.equal(hex({ type: 'dropDB', name: 'gone.db' }), '0000000400000007676f6e652e6462');
    assert.equal(hex({ type: 'handoff', leaseID: 'L1' }), '00000005000000024c31');
    assert.equal(hex({ type: 'hwm', txid: 0n, name: 'a.db' }), '00000006' + '0000000000000000' + '00000004612e6462');
    assert.equal(hex({ type: 'heartbeat', timestamp: 0x1a2b3c4dn }), '00000007000000001a2b3c4d');
    assert.equal(hex({ type: 'snapshotReason', name: 'a.db', reason: 'ahead' }), '00000008' + '00000004612e6462' + '000000056168656164');
  });

  test('every frame type round-trips, whole and fed one byte at a time', () => {
    const ltxBody = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
    const wire = Buffer.concat([
      ...everyFrame.map(encodeFrame),
      encodeLTXFrame('b.db', [ltxBody.subarray(0, 100), ltxBody.subarray(100)]),
      encodeFrame({ type: 'ready' }),
    ]);
    const expected: DecodedFrame[] = [
      ...(everyFrame as DecodedFrame[]),
      { type: 'ltx', name: 'b.db', size: 0n, payload: ltxBody, chunks: [100, 65535, 4365] },
      { type: 'ready' },
    ];
    assert.deepEqual(decodeFrames(wire), expected);

    const events: string[] = [];
    const dec = new FrameDecoder();
    for (let i = 0; i < wire.length; i++) {
      dec.push(wire.subarray(i, i + 1), (e) => events.push(e.kind === 'frame' ? e.frame.type : e.kind));
    }
    dec.end();
    assert.equal(events.filter((e) => e === 'ltx-end').length, 1);
    assert.deepEqual(
      events.filter((e) => !e.startsWith('ltx-')),
      ['ready', 'end', 'dropDB', 'handoff', 'hwm', 'heartbeat', 'heartbeat', 'snapshotReason', 'ltx', 'ready'],
    );
  });

  test('EOF at a frame boundary is a clean end; EOF anywhere inside a frame is unexpected EOF', () => {
    const frames = [encodeFrame({ type: 'hwm', txid: 3n, name: 'a.db' }), encodeLTXFrame('a.db', [Buffer.from('xyz')]), encodeFrame({ type: 'ready' })];
    const wire = Buffer.concat(frames);
    const boundaries = new Set<number>([0]);
    let off = 0;
    for (const f of frames) boundaries.add((off += f.length));
    for (let n = 0; n <= wire.length; n++) {
      const run = () => decodeFrames(wire.subarray(0, n));
      if (boundaries.has(n)) assert.doesNotThrow(run, `length ${n}`);
      else assert.throws(run, UnexpectedEOFError, `length ${n}`);
    }
  });

  test('unknown frame types are typed errors naming the type as Go does', () => {
    // 8 is SnapshotReason (ours); 9 is the first unknown type.
    for (const t of [0, 9, 0x100, 0xffffffff]) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(t, 0);
      assert.throws(() => decodeFrames(b), (e: unknown) => e instanceof UnknownFrameTypeError && e.frameType === t);
    }
    assert.throws(() => decodeFrames(Buffer.from('00000009', 'hex')), { message: 'invalid stream frame type: 0x09' });
  });

  test('a name length over the cap fails as soon as it is read, before any of its bytes arrive', () => {
    const headers = ['00000001' + '0000000000000000', '00000004', '00000005', '00000006' + '0000000000000000'];
    for (const h of headers) {
      const b = Buffer.from(h + '00001001', 'hex');
      assert.throws(() => decodeFrames(b), WireLimitError, h);
      const huge = Buffer.from(h + 'ffffffff', 'hex');
      assert.throws(() => new FrameDecoder().push(huge, () => {}), WireLimitError, h);
    }
    const atCap = encodeFrame({ type: 'dropDB', name: 'x'.repeat(MAX_NAME_LENGTH) });
    assert.equal(decodeFrames(atCap).length, 1);
  });

  test('the recorded stream bodies decode into exactly the frames index.json lists and re-encode byte for byte', () => {
    let frameCount = 0;
    for (const c of wireIndex.captures) {
      if (!c.frames) continue;
      const body = wireFile(c.files.body!);
      const frames = decodeFrames(body);
      assert.equal(frames.length, c.frames.length, c.name);
      c.frames.forEach((want, i) => {
        const got = frames[i]!;
        const where = `${c.name} frame ${i}`;
        switch (want.kind) {
          case 'LTX':
            assert.ok(got.type === 'ltx', where);
            assert.equal(got.name, want.name, where);
            assert.equal(got.size, BigInt(want.size_field!), where);
            assert.deepEqual(got.chunks, want.chunks, where);
            assert.equal(got.payload.length, want.ltx!.bytes, where);
            break;
          case 'Ready':
            assert.deepEqual(got, { type: 'ready' }, where);
            break;
          case 'DropDB':
            assert.deepEqual(got, { type: 'dropDB', name: want.name }, where);
            break;
          case 'HWM':
            assert.deepEqual(got, { type: 'hwm', txid: BigInt(want.txid!), name: want.name }, where);
            break;
          case 'Heartbeat':
            assert.deepEqual(got, { type: 'heartbeat', timestamp: BigInt(want.timestamp_ms!) }, where);
            break;
          default:
            assert.fail(`${where}: unexpected kind ${want.kind}`);
        }
      });
      // Re-encoding (LTX bodies with their recorded chunk split) reproduces the capture.
      const again = Buffer.concat(
        frames.map((f) => {
          if (f.type !== 'ltx') return encodeFrame(f);
          const writes: Buffer[] = [];
          let off = 0;
          for (const n of f.chunks) writes.push(f.payload.subarray(off, (off += n)));
          return encodeLTXFrame(f.name, writes);
        }),
      );
      assert.deepEqual(again, body, c.name);
      frameCount += frames.length;
    }
    assert.ok(frameCount >= 50, `decoded ${frameCount} frames`);
  });

  test('incremental LTX payloads are byte-identical to the recorded on-disk LTX files', () => {
    const frames = decodeFrames(wireFile(capture('stream-a-txid1-catchup').files.body!));
    const ltx = frames.filter((f) => f.type === 'ltx' && f.name === 'a.db');
    assert.equal(ltx.length, 3);
    ltx.forEach((f, i) => assert.deepEqual(f.type === 'ltx' && f.payload, recordedLTX('a.db', i + 2)));
    const live = decodeFrames(wireFile('stream-live-tx.body.bin')).find((f) => f.type === 'ltx');
    assert.deepEqual(live?.type === 'ltx' && live.payload, recordedLTX('a.db', 4));
  });
});

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let off = 0; off < buf.length; off += size) yield buf.subarray(off, off + size);
}

describe('async frame reader', () => {
  test('streams an LTX body piece by piece and then reads the frames after it', async () => {
    const body = Buffer.alloc(150_000, 0x5a);
    const wire = Buffer.concat([encodeLTXFrame('a.db', [body]), encodeFrame({ type: 'hwm', txid: 0n, name: 'a.db' }), encodeFrame({ type: 'ready' })]);
    const reader = new FrameReader(pieces(wire, 1000));
    const first = await reader.next();
    assert.ok(first?.type === 'ltx');
    let total = 0;
    let biggest = 0;
    for await (const part of first.body) {
      total += part.length;
      biggest = Math.max(biggest, part.length);
    }
    assert.equal(total, body.length);
    assert.ok(biggest <= 1000, 'body parts are no larger than the source pieces');
    assert.deepEqual(await reader.next(), { type: 'hwm', txid: 0n, name: 'a.db' });
    assert.deepEqual(await reader.next(), { type: 'ready' });
    assert.equal(await reader.next(), undefined);
  });

  test('a caller that skips an LTX body still gets the next frame', async () => {
    const wire = Buffer.concat([encodeLTXFrame('a.db', [Buffer.alloc(5000)]), encodeFrame({ type: 'end' })]);
    const frames: string[] = [];
    for await (const f of new FrameReader(pieces(wire, 7))) frames.push(f.type);
    assert.deepEqual(frames, ['ltx', 'end']);
  });

  test('EOF inside a frame rejects with UnexpectedEOFError, also from inside an LTX body', async () => {
    const wire = encodeLTXFrame('a.db', [Buffer.alloc(100)]);
    const r1 = new FrameReader(pieces(wire.subarray(0, 50), 8));
    const f = await r1.next();
    assert.ok(f?.type === 'ltx');
    await assert.rejects(async () => {
      for await (const _ of f.body) void _;
    }, UnexpectedEOFError);
    const r2 = new FrameReader(pieces(Buffer.from('000000070000', 'hex'), 2));
    await assert.rejects(r2.next(), UnexpectedEOFError);
  });

  test('reads a recorded stream body delivered in 3-byte pieces', async () => {
    const body = wireFile('stream-a-txid1-catchup.body.bin');
    const types: string[] = [];
    const payloads: Buffer[] = [];
    for await (const f of new FrameReader(pieces(body, 3))) {
      types.push(f.type);
      if (f.type === 'ltx') {
        const parts: Buffer[] = [];
        for await (const p of f.body) parts.push(Buffer.from(p));
        payloads.push(Buffer.concat(parts));
      }
    }
    assert.deepEqual(types, ['ltx', 'hwm', 'ltx', 'hwm', 'ltx', 'hwm', 'ready', 'heartbeat', 'heartbeat']);
    assert.deepEqual(payloads, [recordedLTX('a.db', 2), recordedLTX('a.db', 3), recordedLTX('a.db', 4)]);
  });
});
