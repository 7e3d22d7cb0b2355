/**
 * writeLTXFile: the file on disk is what the encoder makes, whether it was
 * collected in memory (and its bytes handed back for streaming) or spilled
 * to the file once it grew past KEEP_BYTES_MAX.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CollectSink, HeaderFlagCompressLZ4, LTXEncoder, decodeBytes, makeHeader, type Header } from '../../../src/ltx/index.js';
import { RealIO } from '../../../src/store/io.js';
import { KEEP_BYTES_MAX, type PageEmitter, writeLTXFile } from '../../../src/store/ltx-writer.js';

const PAGE = 4096;
const dir = mkdtempSync(join(tmpdir(), 'litefs-ltx-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function header(txid: bigint, pages: number, flags: number): Header {
  return makeHeader({ flags, pageSize: PAGE, commit: pages, minTXID: txid, maxTXID: txid, timestamp: 1000n, preApplyChecksum: 0x8000000000000002n, nodeID: 1n });
}

/** Pages whose bytes do not compress much (so an uncompressed file's size is predictable). */
function pagesOf(count: number): PageEmitter {
  return (emit) => {
    for (let p = 1; p <= count; p++) {
      const data = new Uint8Array(PAGE);
      let x = p * 2654435761;
      for (let i = 0; i < PAGE; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        data[i] = x & 0xff;
      }
      emit(p, data);
    }
  };
}

/** The same file encoded straight into memory. */
function expected(h: Header, pages: PageEmitter): Buffer {
  const sink = new CollectSink();
  const enc = new LTXEncoder(sink);
  enc.encodeHeader(h);
  pages((pgno, data) => enc.encodePage(pgno, data));
  enc.setPostApplyChecksum(0x8000000000000001n);
  enc.close();
  return Buffer.from(sink.bytes());
}

for (const [what, flags] of [
  ['uncompressed', 0],
  ['LZ4', HeaderFlagCompressLZ4],
] as const) {
  test(`a small ${what} file: written whole and its bytes handed back`, () => {
    const h = header(2n, 5, flags);
    const written = writeLTXFile(new RealIO(), dir, h, 0x8000000000000001n, pagesOf(5), false);
    const onDisk = readFileSync(written.path);
    assert.ok(onDisk.equals(expected(h, pagesOf(5))));
    assert.ok(written.bytes !== null && Buffer.from(written.bytes).equals(onDisk));
    // Exactly the file, not a view of a larger buffer (it travels in a message).
    assert.equal(written.bytes.buffer.byteLength, onDisk.length);
    assert.equal(written.size, onDisk.length);
    assert.equal(written.pageCount, 5);
  });
}

test('a file larger than KEEP_BYTES_MAX spills to disk: the same bytes, none handed back', () => {
  const pages = Math.ceil(KEEP_BYTES_MAX / PAGE) + 20;
  const h = header(3n, pages, 0);
  const written = writeLTXFile(new RealIO(), dir, h, 0x8000000000000001n, pagesOf(pages), true);
  const onDisk = readFileSync(written.path);
  assert.ok(onDisk.length > KEEP_BYTES_MAX);
  assert.ok(onDisk.equals(expected(h, pagesOf(pages))));
  assert.equal(written.bytes, null);
  assert.equal(written.size, onDisk.length);
  let decoded = 0;
  decodeBytes(onDisk, { onPage: () => decoded++ });
  assert.equal(decoded, pages);
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
  );
});

/** RealIO that notes the calls that decide what a crash can leave behind. */
class RecordingIO extends RealIO {
  readonly calls: string[] = [];
  override open(path: string, mode: Parameters<RealIO['open']>[1]): number {
    this.calls.push(`open ${path.slice(dir.length + 1)}`);
    return super.open(path, mode);
  }
  override fdatasync(fd: number): void {
    this.calls.push('fdatasync');
    super.fdatasync(fd);
  }
  override rename(from: string, to: string): void {
    this.calls.push(`rename ${from.slice(dir.length + 1)} ${to.slice(dir.length + 1)}`);
    super.rename(from, to);
  }
  override fsyncDir(path: string): void {
    this.calls.push('fsyncDir');
    super.fsyncDir(path);
  }
}

test('a durable file goes through .tmp, fdatasync, rename, folder fsync; a small group file is written once under its final name', () => {
  const durable = new RecordingIO();
  writeLTXFile(durable, dir, header(4n, 2, HeaderFlagCompressLZ4), 0x8000000000000001n, pagesOf(2), true);
  const name = '0000000000000004-0000000000000004.ltx';
  assert.deepEqual(durable.calls, [`open ${name}.tmp`, 'fdatasync', `rename ${name}.tmp ${name}`, 'fsyncDir']);
  const group = new RecordingIO();
  const h = header(5n, 2, HeaderFlagCompressLZ4);
  const written = writeLTXFile(group, dir, h, 0x8000000000000001n, pagesOf(2), false);
  assert.deepEqual(group.calls, ['open 0000000000000005-0000000000000005.ltx']);
  assert.ok(readFileSync(written.path).equals(expected(h, pagesOf(2))));
});
