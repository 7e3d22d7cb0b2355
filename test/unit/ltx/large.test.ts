/**
 * Large files stream through the encoder and decoder in constant memory:
 * pages are generated on the fly and never accumulated.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseChecksum, lockPgno } from '../../../src/ltx/checksum.js';
import { LTXDecoder } from '../../../src/ltx/decoder.js';
import { decodeDatabaseTo } from '../../../src/ltx/decode-file.js';
import { LTXEncoder } from '../../../src/ltx/encoder.js';
import { type Header, makeHeader } from '../../../src/ltx/header.js';
import type { SyncReader } from '../../../src/ltx/source.js';

/** Page `pgno`: its number in the first 4 bytes, then a byte pattern (compressible, distinct per page). */
function makePage(buf: Uint8Array, pgno: number): Uint8Array {
  new DataView(buf.buffer, buf.byteOffset).setUint32(0, pgno);
  buf.fill(pgno & 0xff, 4, 64);
  return buf;
}

/** A snapshot LTX file produced page by page as it is read: at most a few chunks in memory. */
class GeneratedSnapshot implements SyncReader {
  private readonly queue: Uint8Array[] = [];
  private qOff = 0;
  private readonly enc: LTXEncoder;
  private next = 1;
  private finished = false;
  private readonly page: Uint8Array;
  private readonly acc: DatabaseChecksum;
  bytesOut = 0;

  constructor(private readonly header: Header) {
    this.enc = new LTXEncoder({ write: (c) => this.queue.push(c.slice()) });
    this.enc.encodeHeader(header);
    this.page = new Uint8Array(header.pageSize);
    for (let i = 64; i < header.pageSize; i++) this.page[i] = (i * 31) & 0xff;
    this.acc = new DatabaseChecksum(header.pageSize);
  }

  read(buf: Uint8Array): number {
    while (this.queue.length === 0 && !this.finished) this.produce();
    if (this.queue.length === 0) return 0;
    const head = this.queue[0];
    const n = Math.min(buf.length, head.length - this.qOff);
    buf.set(head.subarray(this.qOff, this.qOff + n));
    this.qOff += n;
    if (this.qOff === head.length) {
      this.queue.shift();
      this.qOff = 0;
    }
    this.bytesOut += n;
    return n;
  }

  private produce(): void {
    const lock = lockPgno(this.header.pageSize);
    for (let i = 0; i < 16 && this.next <= this.header.commit; i++, this.next++) {
      if (this.next === lock) continue;
      const data = makePage(this.page, this.next);
      this.acc.addPage(this.next, data);
      this.enc.encodePage(this.next, data);
    }
    if (this.next > this.header.commit) {
      this.enc.setPostApplyChecksum(this.acc.value);
      this.enc.close();
      this.finished = true;
    }
  }
}

function rssMiB(): number {
  return process.memoryUsage().rss / (1 << 20);
}

describe('large files in constant memory', () => {
  test('a 1 GiB snapshot of 64 KiB pages past the lock page decodes to a database image with a zero lock page', () => {
    const commit = 16386;
    const header = makeHeader({ pageSize: 65536, commit, minTXID: 1n, maxTXID: 1n });
    const src = new GeneratedSnapshot(header);
    const before = rssMiB();
    let peak = before;
    let size = 0;
    let lockPageZero = false;
    const lockOffset = (lockPgno(65536) - 1) * 65536;
    decodeDatabaseTo(src, {
      write(chunk) {
        if (size === lockOffset) lockPageZero = chunk.length === 65536 && chunk.every((b) => b === 0);
        else {
          const pgno = new DataView(chunk.buffer, chunk.byteOffset).getUint32(0);
          if (pgno !== size / 65536 + 1) throw new Error(`page at offset ${size} holds pgno ${pgno}`);
        }
        size += chunk.length;
        if ((size & 0x3ffffff) === 0) peak = Math.max(peak, rssMiB());
      },
    });
    assert.equal(size, commit * 65536);
    assert.ok(lockPageZero, 'lock page written as zeros');
    assert.ok(src.bytesOut > 1 << 30);
    assert.ok(peak - before < 200, `rss grew by ${(peak - before).toFixed(0)} MiB for a 1 GiB file`);
  });

  test('a 128 MiB LZ4 snapshot streams from the encoder straight into the decoder', () => {
    const commit = 32768;
    const header = makeHeader({ flags: 1, pageSize: 4096, commit, minTXID: 1n, maxTXID: 3n });
    let pages = 0;
    let compressed = 0;
    const dec = new LTXDecoder({ onPage: () => pages++ }, { strict: true });
    const acc = new DatabaseChecksum(4096);
    const enc = new LTXEncoder({
      write(chunk) {
        compressed += chunk.length;
        dec.push(chunk);
      },
    });
    const before = rssMiB();
    let peak = before;
    enc.encodeHeader(header);
    const page = new Uint8Array(4096);
    for (let i = 64; i < 4096; i++) page[i] = (i * 31) & 0xff;
    for (let pgno = 1; pgno <= commit; pgno++) {
      makePage(page, pgno);
      acc.addPage(pgno, page);
      enc.encodePage(pgno, page);
      if ((pgno & 0x3fff) === 0) peak = Math.max(peak, rssMiB());
    }
    enc.setPostApplyChecksum(acc.value);
    enc.close();
    const s = dec.end();
    assert.equal(pages, commit);
    assert.equal(s.trailer.postApplyChecksum, acc.value);
    assert.equal(s.n, 120 + commit * 4100);
    assert.ok(compressed < s.n / 4, `compressed to ${compressed} bytes`);
    assert.ok(peak - before < 100, `rss grew by ${(peak - before).toFixed(0)} MiB for a 128 MiB file`);
  });
});
