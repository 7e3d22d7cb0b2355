/**
 * DataDirReplicationSource against real data directories: LTX files written
 * by LTXEncoder with a matching database file (rollback or WAL mode).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChecksumFlag,
  CollectSink,
  HeaderFlagCompressLZ4,
  LTXEncoder,
  checksumDatabase,
  decodeBytes,
  decodeDatabaseTo,
  formatHex16,
  makeHeader,
} from '../../../src/ltx/index.js';
import { buildWalHeader, encodeWalFrame, type WalChecksum } from '../../../src/sqlite/index.js';
import { LTX_PIECE_SIZE, DataDirReplicationSource } from '../../../src/node/replication-source.js';
import type { Pos } from '../../../src/http/posmap.js';
import { FileImageLocks } from './file-image-locks.js';

const PAGE = 4096;
const NODE_ID = 0x0102030405060708n;
const NOW = 1_795_468_834_564;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'replication-source-'));
  dirs.push(d);
  return d;
}

/** A SQLite-looking image of `pages` pages whose content depends on `seed`; `wal` marks page 1 for WAL mode. */
function image(pages: number, seed: number, wal = false): Buffer {
  const img = Buffer.alloc(pages * PAGE);
  for (let i = 100; i < img.length; i++) img[i] = (i * 31 + seed * 7) & 0xff;
  img.write('SQLite format 3\0', 0, 'latin1');
  img.writeUInt16BE(PAGE, 16);
  img[18] = img[19] = wal ? 2 : 1;
  img.writeUInt32BE(seed, 24);
  img.writeUInt32BE(pages, 28);
  return img;
}

function checksumOf(img: Buffer): bigint {
  if (img.length === 0) return ChecksumFlag;
  return checksumDatabase(PAGE, img.length / PAGE, (p) => img.subarray((p - 1) * PAGE, p * PAGE));
}

/** Encodes an incremental LTX file holding every page of `img`. */
function ltxFile(txid: bigint, pre: bigint, img: Buffer, compress: boolean): Buffer {
  const sink = new CollectSink();
  const enc = new LTXEncoder(sink);
  const pages = img.length / PAGE;
  enc.encodeHeader(
    makeHeader({
      flags: compress ? HeaderFlagCompressLZ4 : 0,
      pageSize: PAGE,
      commit: pages,
      minTXID: txid,
      maxTXID: txid,
      timestamp: 1000n * txid,
      preApplyChecksum: pre,
      nodeID: NODE_ID,
    }),
  );
  for (let p = 1; p <= pages; p++) enc.encodePage(p, img.subarray((p - 1) * PAGE, p * PAGE));
  enc.setPostApplyChecksum(checksumOf(img));
  enc.close();
  return sink.bytes();
}

interface TestDB {
  dataDir: string;
  dir: string;
  images: Buffer[];
  files: Buffer[];
  pos: Pos;
}

/** `<data>/dbs/<name>` with one LTX file per image (TXIDs 1..n) and the database file at the last one. */
function writeDB(dataDir: string, name: string, images: Buffer[], compress = true): TestDB {
  const dir = join(dataDir, 'dbs', name);
  mkdirSync(join(dir, 'ltx'), { recursive: true });
  const files: Buffer[] = [];
  let pre = 0n;
  images.forEach((img, i) => {
    const txid = BigInt(i + 1);
    const file = ltxFile(txid, pre, img, compress);
    writeFileSync(join(dir, 'ltx', `${formatHex16(txid)}-${formatHex16(txid)}.ltx`), file);
    files.push(file);
    pre = checksumOf(img);
  });
  writeFileSync(join(dir, 'database'), images.at(-1)!);
  return { dataDir, dir, images, files, pos: { txid: BigInt(images.length), postApplyChecksum: pre } };
}

function source(dataDir: string, over: Partial<ConstructorParameters<typeof DataDirReplicationSource>[0]> = {}) {
  const logs: string[] = [];
  const src = new DataDirReplicationSource({
    dataDir,
    nodeID: NODE_ID,
    compress: true,
    now: () => NOW,
    images: new FileImageLocks(dataDir),
    log: (l) => logs.push(l),
    ...over,
  });
  return { src, logs };
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b));
  return out;
}

/** Runs writeSnapshot and returns its writes and position. */
async function snapshot(src: DataDirReplicationSource, name: string, signal = new AbortController().signal) {
  const writes: Buffer[] = [];
  const pos = await src.writeSnapshot(name, async (b) => void writes.push(Buffer.from(b)), signal);
  return { writes, pos, bytes: Buffer.concat(writes) };
}

function databaseOf(snapshotBytes: Buffer): Buffer {
  const sink = new CollectSink();
  decodeDatabaseTo(snapshotBytes, sink);
  return sink.bytes();
}

describe('positions', () => {
  test('start from the newest LTX file of each database, then follow onTx', () => {
    const dataDir = tempDataDir();
    const a = writeDB(dataDir, 'a.db', [image(2, 1), image(2, 2), image(3, 3)]);
    const b = writeDB(dataDir, 'b.db', [image(1, 9)]);
    mkdirSync(join(dataDir, 'dbs', 'never-committed.db'));
    const { src } = source(dataDir);
    assert.deepEqual(src.databaseNames(), ['a.db', 'b.db']);
    assert.deepEqual(src.position('a.db'), a.pos);
    assert.deepEqual(src.position('b.db'), b.pos);
    assert.equal(src.position('never-committed.db'), undefined);
    src.onTx('c.db', { txid: 1n, postApplyChecksum: 5n });
    assert.deepEqual(src.databaseNames(), ['a.db', 'b.db', 'c.db']);
    assert.equal(src.hwm(), 0n);
  });
});

describe('openLTXFile', () => {
  test('verifies the file and yields it in 32 KiB pieces, as Go copies it', async () => {
    const dataDir = tempDataDir();
    // Uncompressed, 20 pages: a file of ~82 KB.
    const db = writeDB(dataDir, 'big.db', [image(20, 1), image(20, 2)], false);
    const { src } = source(dataDir);
    const file = await src.openLTXFile('big.db', 2n);
    assert.ok(file);
    try {
      assert.equal(file.preApplyChecksum, checksumOf(db.images[0]!));
      assert.deepEqual(file.pos, db.pos);
      const pieces = await collect(file.body);
      const expected = db.files[1]!;
      assert.ok(expected.length > 2 * LTX_PIECE_SIZE);
      assert.deepEqual(
        pieces.map((p) => p.length),
        [LTX_PIECE_SIZE, LTX_PIECE_SIZE, expected.length - 2 * LTX_PIECE_SIZE],
      );
      assert.ok(Buffer.concat(pieces).equals(expected));
    } finally {
      await file.close();
    }
  });

  test("the newest commit's bytes from the store's tx event stream from memory, in the same pieces", async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'big.db', [image(20, 1), image(20, 2)], false);
    const { src } = source(dataDir);
    // The disk file goes: only the bytes handed over can serve TXID 2 now.
    const path = join(db.dir, 'ltx', `${formatHex16(2n)}-${formatHex16(2n)}.ltx`);
    unlinkSync(path);
    src.onTx('big.db', db.pos, db.files[1]);
    const file = await src.openLTXFile('big.db', 2n);
    assert.ok(file);
    assert.equal(file.preApplyChecksum, checksumOf(db.images[0]!));
    assert.deepEqual(file.pos, db.pos);
    const pieces = await collect(file.body);
    assert.deepEqual(
      pieces.map((p) => p.length),
      [LTX_PIECE_SIZE, LTX_PIECE_SIZE, db.files[1]!.length - 2 * LTX_PIECE_SIZE],
    );
    assert.ok(Buffer.concat(pieces).equals(db.files[1]!));
    await file.close();
    // Any other TXID comes from disk; a tx event without bytes forgets them.
    const first = await src.openLTXFile('big.db', 1n);
    assert.ok(first);
    assert.ok(Buffer.concat(await collect(first.body)).equals(db.files[0]!));
    await first.close();
    src.onTx('big.db', db.pos);
    assert.equal(await src.openLTXFile('big.db', 2n), undefined);
  });

  test('keeps the descriptor: a file unlinked by retention while it streams still arrives whole', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'a.db', [image(2, 1), image(2, 2)]);
    const { src } = source(dataDir);
    const file = await src.openLTXFile('a.db', 2n);
    assert.ok(file);
    unlinkSync(join(db.dir, 'ltx', `${formatHex16(2n)}-${formatHex16(2n)}.ltx`));
    assert.ok(Buffer.concat(await collect(file.body)).equals(db.files[1]!));
    await file.close();
  });

  test('a missing file, an unknown database or a TXID past the end is undefined, without a log line', async () => {
    const dataDir = tempDataDir();
    writeDB(dataDir, 'a.db', [image(2, 1), image(2, 2)]);
    const { src, logs } = source(dataDir);
    assert.equal(await src.openLTXFile('a.db', 3n), undefined);
    assert.equal(await src.openLTXFile('nope.db', 1n), undefined);
    assert.equal(await src.openLTXFile('../a.db', 1n), undefined);
    assert.deepEqual(logs, []);
  });

  test('a tampered file is undefined (a snapshot goes instead) and is logged once', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'a.db', [image(2, 1), image(2, 2)], false);
    const tampered = Buffer.from(db.files[1]!);
    tampered[200] ^= 0xff; // a page byte: the file checksum no longer matches
    writeFileSync(join(db.dir, 'ltx', `${formatHex16(2n)}-${formatHex16(2n)}.ltx`), tampered);
    const { src, logs } = source(dataDir);
    assert.equal(await src.openLTXFile('a.db', 2n), undefined);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /a\.db: .*0000000000000002-0000000000000002\.ltx fails verification/);
  });

  test('a file whose header holds other TXIDs than its name is refused', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'a.db', [image(2, 1), image(2, 2)]);
    writeFileSync(join(db.dir, 'ltx', `${formatHex16(3n)}-${formatHex16(3n)}.ltx`), db.files[1]!);
    const { src, logs } = source(dataDir);
    assert.equal(await src.openLTXFile('a.db', 3n), undefined);
    assert.match(logs[0]!, /header holds TXIDs 0000000000000002-0000000000000002/);
  });
});

describe('writeSnapshot', () => {
  test('an LZ4 snapshot in Go\'s write layout decodes to the database at the current position', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'a.db', [image(2, 1), image(3, 2), image(3, 3)]);
    const { src } = source(dataDir);
    const { writes, pos, bytes } = await snapshot(src, 'a.db');
    assert.deepEqual(pos, db.pos);
    const sizes = writes.map((w) => w.length);
    assert.deepEqual([sizes[0], sizes[1], sizes[2], sizes[4], sizes[5]], [100, 7, 4, 8, 16]);
    assert.equal(sizes.length, 6);
    const summary = decodeBytes(bytes);
    assert.equal(summary.header.flags, HeaderFlagCompressLZ4);
    assert.equal(summary.header.minTXID, 1n);
    assert.equal(summary.header.maxTXID, 3n);
    assert.equal(summary.header.preApplyChecksum, 0n);
    assert.equal(summary.header.commit, 3);
    assert.equal(summary.header.pageSize, PAGE);
    assert.equal(summary.header.timestamp, BigInt(NOW));
    assert.equal(summary.header.nodeID, NODE_ID);
    assert.equal(summary.trailer.postApplyChecksum, db.pos.postApplyChecksum);
    assert.ok(databaseOf(bytes).equals(db.images[2]!));
  });

  test('uncompressed (data.compress false): header, each page header and page, end header, trailer', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'a.db', [image(3, 1)], false);
    const { src } = source(dataDir, { compress: false });
    const { writes, bytes } = await snapshot(src, 'a.db');
    assert.deepEqual(
      writes.map((w) => w.length),
      [100, 4, PAGE, 4, PAGE, 4, PAGE, 4, 16],
    );
    assert.equal(decodeBytes(bytes).header.flags, 0);
    assert.ok(databaseOf(bytes).equals(db.images[0]!));
  });

  test('a large database spans several LZ4 blocks, each its own size and data write', async () => {
    const dataDir = tempDataDir();
    const big = image(40, 1);
    // Incompressible pages make stored blocks of 64 KiB (chunked later at 65535).
    for (let i = PAGE; i < big.length; i++) big[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff;
    const db = writeDB(dataDir, 'big.db', [big]);
    const { src } = source(dataDir);
    const { writes, bytes } = await snapshot(src, 'big.db');
    const sizes = writes.map((w) => w.length);
    assert.deepEqual(sizes.slice(0, 2), [100, 7]);
    assert.deepEqual(sizes.slice(-2), [8, 16]);
    const blocks = sizes.slice(2, -2);
    assert.equal(blocks.length % 2, 0);
    assert.ok(blocks.length >= 6, `blocks ${JSON.stringify(blocks)}`);
    for (let i = 0; i < blocks.length; i += 2) assert.equal(blocks[i], 4);
    assert.ok(databaseOf(bytes).equals(db.images[0]!));
  });

  test('a WAL-mode database: committed WAL frames are in the image, an uncommitted tail is not', async () => {
    const dataDir = tempDataDir();
    const v1 = image(2, 1, true);
    const v2 = image(3, 2, true);
    const v3 = image(3, 3, true);
    // LTX files for TXIDs 1..3; the database file still holds TXID 1, the WAL holds 2 and 3.
    const db = writeDB(dataDir, 'w.db', [v1, v2, v3]);
    writeFileSync(join(db.dir, 'database'), v1);
    const { bytes: header, header: h } = buildWalHeader({ bigEndianChecksum: false, pageSize: PAGE, checkpointSeq: 0, salt1: 11, salt2: 22 });
    const ctx = { bigEndianChecksum: false, salt1: 11, salt2: 22 };
    const frames: Buffer[] = [header];
    let ck: WalChecksum = h.checksum;
    const frame = (img: Buffer, pgno: number, commit: number): void => {
      const f = encodeWalFrame(ctx, ck, pgno, commit, img.subarray((pgno - 1) * PAGE, pgno * PAGE));
      frames.push(Buffer.from(f.bytes));
      ck = f.checksum;
    };
    frame(v2, 1, 0);
    frame(v2, 2, 0);
    frame(v2, 3, 3);
    frame(v3, 1, 0);
    frame(v3, 2, 0);
    frame(v3, 3, 3);
    // An uncommitted transaction after the last commit: must not show.
    frame(image(3, 4, true), 1, 0);
    writeFileSync(join(db.dir, 'wal'), Buffer.concat(frames));
    const { src } = source(dataDir);
    const { pos, bytes } = await snapshot(src, 'w.db');
    assert.deepEqual(pos, db.pos);
    assert.ok(databaseOf(bytes).equals(v3));
  });

  test('a deleted database gives a header-only snapshot with commit 0', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'd.db', [image(2, 1)]);
    // The drop: an LTX with commit 0 and no pages, and no database file.
    const sink = new CollectSink();
    const enc = new LTXEncoder(sink);
    enc.encodeHeader(makeHeader({ flags: 1, pageSize: PAGE, commit: 0, minTXID: 2n, maxTXID: 2n, timestamp: 1n, preApplyChecksum: db.pos.postApplyChecksum }));
    enc.setPostApplyChecksum(ChecksumFlag);
    enc.close();
    writeFileSync(join(db.dir, 'ltx', `${formatHex16(2n)}-${formatHex16(2n)}.ltx`), sink.bytes());
    unlinkSync(join(db.dir, 'database'));
    const { src } = source(dataDir);
    assert.deepEqual(src.position('d.db'), { txid: 2n, postApplyChecksum: ChecksumFlag });
    const { pos, bytes } = await snapshot(src, 'd.db');
    assert.deepEqual(pos, { txid: 2n, postApplyChecksum: ChecksumFlag });
    const summary = decodeBytes(bytes);
    assert.equal(summary.header.commit, 0);
    assert.equal(summary.header.pageSize, PAGE);
    assert.equal(summary.header.maxTXID, 2n);
    assert.equal(summary.pageCount, 0);
    assert.equal(summary.trailer.postApplyChecksum, ChecksumFlag);
  });

  test('the read locks are held only for the copy, and the spool file is gone afterwards', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'a.db', [image(2, 1), image(3, 2)]);
    const images = new FileImageLocks(dataDir);
    const { src } = source(dataDir, { images });
    let releasedBeforeFirstWrite: boolean | undefined;
    const pos = await src.writeSnapshot('a.db', async () => void (releasedBeforeFirstWrite ??= images.releases === 1), new AbortController().signal);
    assert.deepEqual(pos, db.pos);
    assert.equal(images.holds, 1);
    assert.equal(images.releases, 1);
    assert.equal(releasedBeforeFirstWrite, true, 'the stream is written after the locks are released');
    assert.deepEqual(readdirSync(join(dataDir, 'tmp')), []);
  });

  test('an image that never matches the position is never sent: the snapshot fails without a write', async () => {
    const dataDir = tempDataDir();
    const db = writeDB(dataDir, 'a.db', [image(2, 1), image(2, 2)]);
    writeFileSync(join(db.dir, 'database'), image(2, 7));
    const { src } = source(dataDir);
    const writes: Uint8Array[] = [];
    await assert.rejects(
      src.writeSnapshot('a.db', async (b) => void writes.push(b), new AbortController().signal),
      /snapshot a\.db: snapshot checksum mismatch: image [0-9a-f]{16}, position 0000000000000002\//,
    );
    assert.equal(writes.length, 0);
    assert.deepEqual(readdirSync(join(dataDir, 'tmp')), [], 'no spool file left');
  });

  test('an aborted signal stops the snapshot', async () => {
    const dataDir = tempDataDir();
    writeDB(dataDir, 'a.db', [image(2, 1)]);
    const { src } = source(dataDir);
    await assert.rejects(src.writeSnapshot('a.db', async () => {}, AbortSignal.abort()), /cancelled/);
  });
});

describe('change subscriptions', () => {
  const idle = (): AbortSignal => new AbortController().signal;

  test('a commit marks every subscriber dirty; several commits coalesce into one notice', async () => {
    const { src } = source(tempDataDir());
    const s1 = src.subscribeChanges(1n);
    const s2 = src.subscribeChanges(2n);
    const waiting = s1.next(idle());
    src.onTx('a.db', { txid: 1n, postApplyChecksum: 1n });
    assert.deepEqual([...(await waiting)!.dirty], ['a.db']);
    src.onTx('b.db', { txid: 1n, postApplyChecksum: 1n });
    src.onTx('a.db', { txid: 2n, postApplyChecksum: 2n });
    assert.deepEqual([...(await s2.next(idle()))!.dirty].sort(), ['a.db', 'b.db']);
    assert.deepEqual([...(await s1.next(idle()))!.dirty].sort(), ['a.db', 'b.db']);
    s1.close();
    s2.close();
  });

  test('an aborted wait resolves undefined and loses nothing', async () => {
    const { src } = source(tempDataDir());
    const sub = src.subscribeChanges(1n);
    const ac = new AbortController();
    const waiting = sub.next(ac.signal);
    ac.abort();
    assert.equal(await waiting, undefined);
    src.markDirty('a.db');
    // Pending changes survive a wait given up before it looked at them.
    const ac2 = new AbortController();
    const again = sub.next(ac2.signal);
    ac2.abort();
    assert.deepEqual([...(await again)!.dirty], ['a.db']);
    src.markDirty('b.db');
    const tick = new AbortController();
    tick.abort();
    assert.deepEqual([...(await sub.next(tick.signal))!.dirty], ['b.db']);
    sub.close();
  });

  test('a closed subscription stops receiving; handoff reaches only the named replica', async () => {
    const { src } = source(tempDataDir());
    const gone = src.subscribeChanges(1n);
    gone.close();
    src.markDirty('a.db');
    assert.equal(await gone.next(idle()), undefined);
    assert.equal(src.handoff(1n, 'lease-1'), undefined);
    const target = src.subscribeChanges(2n);
    src.markDirty('x.db');
    const outcome = src.handoff(2n, 'lease-2');
    assert.ok(outcome !== undefined);
    const notice = await target.next(idle());
    assert.deepEqual([...notice!.dirty], ['x.db']);
    assert.equal(notice!.handoffLeaseID, 'lease-2');
    target.handoffSent?.();
    target.close();
    assert.equal(await outcome, true, 'delivered once the stream wrote the frame');
    const other = src.subscribeChanges(3n);
    const lost = src.handoff(3n, 'lease-3');
    other.close();
    assert.equal(await lost, false, 'a stream that ends without the frame did not deliver it');
  });

  test('primarySignal aborts when the node stops being primary and is new after it becomes primary again', () => {
    const { src } = source(tempDataDir());
    const first = src.primarySignal();
    assert.ok(first && !first.aborted);
    src.setPrimary(false);
    assert.ok(first.aborted);
    assert.equal(src.primarySignal(), undefined);
    src.setPrimary(true);
    assert.ok(src.primarySignal() && !src.primarySignal()!.aborted);
    src.close();
    assert.equal(src.primarySignal(), undefined);
    const replica = source(tempDataDir(), { primary: false }).src;
    assert.equal(replica.primarySignal(), undefined);
  });
});
