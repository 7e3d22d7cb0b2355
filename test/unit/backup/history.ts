/**
 * Test fixture for the backup tests: one database's history built from page
 * changes, with the image after every TXID and LTX files for any TXID range
 * of it (a snapshot when the range starts at 1), written by the project's
 * encoder, so every checksum is the real rolling one and every expected
 * image is computed independently of the code under test.
 */
import assert from 'node:assert/strict';
import { CollectSink, HeaderFlagCompressLZ4, LTXEncoder, type Pos, checksumDatabase, makeHeader } from '../../../src/ltx/index.js';

export const BASE_MS = Date.UTC(2025, 0, 1);

/** A page whose bytes depend on its number and on `seed`. */
export function pageBytes(pageSize: number, pgno: number, seed: number): Buffer {
  const b = Buffer.alloc(pageSize);
  for (let i = 0; i < pageSize; i++) b[i] = (i * 13 + pgno * 31 + seed * 7) & 0xff;
  b.writeUInt32BE(pgno, 0);
  b.writeUInt32BE(seed, 4);
  return b;
}

export class History {
  /** images[t]: the database after TXID t; images[0] is the empty database. */
  readonly images: Buffer[] = [Buffer.alloc(0)];
  /** changed[t]: the pages TXID t wrote. */
  private readonly changed: number[][] = [[]];

  /** `salt` makes another history's pages differ; `baseMs` sets its commit times (TXID t at baseMs + t s). */
  constructor(
    readonly pageSize: number,
    private readonly salt = 0,
    private readonly baseMs = BASE_MS,
  ) {}

  get txid(): bigint {
    return BigInt(this.images.length - 1);
  }

  /** Commits a transaction writing `pgnos`; the database is then `commit` pages long (grown pages must be written). */
  commit(pgnos: number[], commit?: number): bigint {
    const size = this.pageSize;
    const prev = this.images[this.images.length - 1]!;
    const prevPages = prev.length / size;
    const pages = commit ?? prevPages;
    for (let p = prevPages + 1; p <= pages; p++) assert.ok(pgnos.includes(p), `grown page ${p} must be written`);
    const img = Buffer.alloc(pages * size);
    prev.copy(img, 0, 0, Math.min(prev.length, img.length));
    const seed = this.images.length * 101 + this.salt;
    for (const p of pgnos) {
      assert.ok(p >= 1 && p <= pages);
      pageBytes(size, p, seed).copy(img, (p - 1) * size);
    }
    this.images.push(img);
    this.changed.push([...pgnos]);
    return this.txid;
  }

  image(t: bigint): Buffer {
    return this.images[Number(t)]!;
  }

  page(t: bigint, pgno: number): Buffer {
    return this.image(t).subarray((pgno - 1) * this.pageSize, pgno * this.pageSize);
  }

  checksum(t: bigint): bigint {
    const img = this.image(t);
    return checksumDatabase(this.pageSize, img.length / this.pageSize, (p) => this.page(t, p));
  }

  pos(t: bigint): Pos {
    return { txid: t, postApplyChecksum: this.checksum(t) };
  }

  /** When TXID t was committed (ms since the epoch). */
  timestamp(t: bigint): number {
    return this.baseMs + Number(t) * 1000;
  }

  /** The LTX header of the file for TXIDs min..max of a database `commit` pages long. */
  header(min: bigint, max: bigint, commit: number, compress: boolean): ReturnType<typeof makeHeader> {
    return makeHeader({
      flags: compress ? HeaderFlagCompressLZ4 : 0,
      pageSize: this.pageSize,
      commit,
      minTXID: min,
      maxTXID: max,
      timestamp: BigInt(this.timestamp(max)),
      preApplyChecksum: min === 1n ? 0n : this.checksum(min - 1n),
      nodeID: 0x42n,
    });
  }

  /** The LTX file for TXIDs min..max, as a primary would write or compact it. */
  file(min: bigint, max: bigint, compress = false): Buffer {
    const commit = this.image(max).length / this.pageSize;
    let pgnos: number[];
    if (min === 1n) {
      pgnos = Array.from({ length: commit }, (_, i) => i + 1);
    } else {
      const set = new Set<number>();
      for (let t = Number(min); t <= Number(max); t++) for (const p of this.changed[t]!) set.add(p);
      pgnos = [...set].filter((p) => p <= commit).sort((a, b) => a - b);
    }
    const sink = new CollectSink();
    const enc = new LTXEncoder(sink);
    enc.encodeHeader(this.header(min, max, commit, compress));
    for (const p of pgnos) enc.encodePage(p, this.page(max, p));
    enc.setPostApplyChecksum(this.checksum(max));
    enc.close();
    return sink.bytes();
  }
}

/** `buf` as an upload body of `size`-byte chunks. */
export async function* chunks(buf: Uint8Array, size = buf.length): AsyncIterable<Uint8Array> {
  for (let off = 0; off < buf.length; off += size) yield buf.subarray(off, Math.min(off + size, buf.length));
}
