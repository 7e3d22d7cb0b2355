import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checksumDatabase, checksumPage, ChecksumFlag, DatabaseChecksum, lockPgno } from '../../../src/ltx/index.js';
import {
  CHECKSUM_BLOCK_PAGES,
  ChecksumCache,
  loadPageChecksums,
  MissingChecksumError,
  PageChecksumOverlay,
} from '../../../src/store/checksum-cache.js';
import { xorshift32 } from '../../helpers/rng.js';

const rng = xorshift32;

function pageData(pageSize: number, seed: number): Uint8Array {
  const next = rng(seed);
  const words = new Uint32Array(pageSize / 4);
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer);
}

describe('ChecksumCache basics', () => {
  test('an empty database checksums to the flag alone', () => {
    const cache = new ChecksumCache(4096);
    assert.equal(cache.databaseChecksum(0), ChecksumFlag);
  });

  test('page checksums are stored, read back, forgotten by truncate', () => {
    const cache = new ChecksumCache(4096);
    const data = pageData(4096, 1);
    cache.computePage(3, data);
    assert.equal(cache.getPage(3), checksumPage(3, data));
    assert.equal(cache.getPage(2), 0n);
    assert.equal(cache.getPage(100_000), 0n);
    cache.truncate(2);
    assert.equal(cache.getPage(3), 0n);
    assert.equal(cache.knownPages, 0);
  });

  test('a missing page is reported by number and database', () => {
    const cache = new ChecksumCache(4096, 'db.sqlite');
    for (let p = 1; p <= 600; p++) if (p !== 300) cache.computePage(p, pageData(4096, p));
    assert.throws(
      () => cache.databaseChecksum(600),
      (err: unknown) =>
        err instanceof MissingChecksumError &&
        err.pgno === 300 &&
        err.message === 'db.sqlite: missing checksum for page 300',
    );
    const tx = new PageChecksumOverlay();
    tx.setChecksum(300, checksumPage(300, pageData(4096, 300)));
    const all = checksumDatabase(4096, 600, (p) => pageData(4096, p));
    assert.equal(cache.databaseChecksum(600, tx), all, 'an overlay can supply the missing page');
    cache.wal.setChecksum(5, 0n);
    assert.throws(() => cache.databaseChecksum(600, tx), /missing checksum for page 5$/);
    assert.equal(cache.databaseChecksum(4), checksumDatabase(4096, 4, (p) => pageData(4096, p)));
  });
});

describe('ChecksumCache against a full recomputation', () => {
  /** Page contents' checksum halves, memoized: the reference recomputes from contents, once per version. */
  const halvesOf = new WeakMap<Uint8Array, [number, number]>();
  function halves(pgno: number, data: Uint8Array): [number, number] {
    let h = halvesOf.get(data);
    if (h === undefined) {
      const c = checksumPage(pgno, data);
      h = [Number(c >> 32n), Number(c & 0xffffffffn)];
      halvesOf.set(data, h);
    }
    return h;
  }

  /**
   * The model holds page contents in three layers; the expected checksum is
   * DatabaseChecksum over the current contents, or the first page with none.
   */
  function expected(
    pageSize: number,
    pageCount: number,
    layers: Map<number, Uint8Array | null>[],
  ): bigint | number {
    const acc = new DatabaseChecksum(pageSize);
    for (let p = 1; p <= pageCount; p++) {
      if (p === lockPgno(pageSize)) continue;
      let data: Uint8Array | null | undefined;
      for (const layer of layers) {
        if (layer.has(p)) {
          data = layer.get(p);
          break;
        }
      }
      if (data === null || data === undefined) return p;
      acc.xorHalves(...halves(p, data));
    }
    return acc.value;
  }

  test('random set / truncate / WAL and transaction overlays, 6 seeds x 1000 steps', () => {
    const pageSize = 512;
    let okCases = 0;
    let missingCases = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const next = rng(seed * 104729);
      const cache = new ChecksumCache(pageSize);
      const file = new Map<number, Uint8Array | null>();
      const wal = new Map<number, Uint8Array | null>();
      let tx = new PageChecksumOverlay();
      const txModel = new Map<number, Uint8Array | null>();
      // Start from a loaded file so most checksums succeed; gaps come from the steps.
      let pageCount = 3 * CHECKSUM_BLOCK_PAGES + (next() % 300);
      for (let p = 1; p <= pageCount; p++) {
        const d = pageData(pageSize, p + seed * 7);
        cache.computePage(p, d);
        file.set(p, d);
      }
      for (let step = 0; step < 1000; step++) {
        const where = `seed ${seed} step ${step}`;
        const op = next() % 16;
        const pgno = 1 + (next() % (5 * CHECKSUM_BLOCK_PAGES + 40));
        const data = pageData(pageSize, next());
        if (op < 7) {
          // Mostly SQLite-like: overwrite a page or append the next one; sometimes leave a gap.
          const p = next() % 64 === 0 ? pgno : 1 + (next() % (pageCount + 1));
          cache.computePage(p, data);
          file.set(p, data);
          pageCount = Math.max(pageCount, p);
        } else if (op === 7) {
          // Fill a whole range, as loading a file or a checkpoint does.
          const start = 1 + (next() % (pageCount + 1));
          const end = Math.min(start + 300, 5 * CHECKSUM_BLOCK_PAGES + 40);
          for (let p = start; p <= end; p++) {
            const d = pageData(pageSize, p * 31 + step);
            cache.computePage(p, d);
            file.set(p, d);
          }
          pageCount = Math.max(pageCount, end);
        } else if (op === 8 && next() % 3 === 0) {
          const n = next() % (pageCount + 1);
          cache.truncate(n);
          for (const p of [...file.keys()]) if (p > n) file.delete(p);
          pageCount = Math.min(pageCount, n);
        } else if (op === 8) {
          // No-op step: re-check the same state with the other overlay choice.
        } else if (op === 9 || op === 10) {
          cache.wal.setChecksum(pgno, checksumPage(pgno, data));
          wal.set(pgno, data);
        } else if (op === 11 || op === 12) {
          // Absent marks are what a shrinking commit records for the pages it cut off.
          if (pgno > pageCount && next() % 2 === 0) {
            tx.setChecksum(pgno, 0n);
            txModel.set(pgno, null);
          } else {
            tx.setChecksum(pgno, checksumPage(pgno, data));
            txModel.set(pgno, data);
          }
        } else if (op === 13) {
          // Commit: the transaction becomes part of the WAL.
          tx.mergeInto(cache.wal);
          for (const [p, d] of txModel) wal.set(p, d);
          tx = new PageChecksumOverlay();
          txModel.clear();
        } else if (op === 14) {
          cache.wal.clear();
          wal.clear();
        } else {
          // Shrink or grow the database size (a WAL commit can do either).
          pageCount = next() % 8 === 0 ? next() % (5 * CHECKSUM_BLOCK_PAGES + 41) : next() % (pageCount + 1);
        }
        const useTx = next() % 2 === 0;
        const want = expected(pageSize, pageCount, useTx ? [txModel, wal, file] : [wal, file]);
        if (typeof want === 'number') missingCases++;
        else okCases++;
        if (typeof want === 'number') {
          assert.throws(
            () => cache.databaseChecksum(pageCount, useTx ? tx : undefined),
            (err: unknown) => err instanceof MissingChecksumError && err.pgno === want,
            `${where}: expected missing page ${want}`,
          );
        } else {
          assert.equal(cache.databaseChecksum(pageCount, useTx ? tx : undefined), want, `${where}: pageCount ${pageCount}`);
        }
        assert.equal(cache.currentPage(pgno, tx), txModel.has(pgno) || wal.has(pgno) || file.has(pgno)
          ? (() => {
              const d = txModel.has(pgno) ? txModel.get(pgno) : wal.has(pgno) ? wal.get(pgno) : file.get(pgno);
              return d === null || d === undefined ? 0n : checksumPage(pgno, d);
            })()
          : 0n, where);
      }
    }
    console.log(`checksums ${okCases}, missing ${missingCases}`);
    assert.ok(okCases > 1500 && missingCases > 500, `checksums ${okCases}, missing-page errors ${missingCases}`);
  });
});

describe('lock page at 512-byte pages (page 2097153)', () => {
  const pageSize = 512;
  const lock = lockPgno(pageSize);
  /** A synthetic checksum for pages we do not want to hash: any flagged value works. */
  const synthetic = (p: number): [number, number] => [(0x80000000 | Math.imul(p, 0x9e3779b1)) >>> 0, Math.imul(p, 0x85ebca6b) >>> 0];

  test('is never read, never stored, never missing; pages around it count', () => {
    assert.equal(lock, 2097153);
    assert.equal((lock - 1) % CHECKSUM_BLOCK_PAGES, 0, 'it opens its 256-page block');
    const cache = new ChecksumCache(pageSize, 'big.db');
    const first = lock - 300;
    const pageCount = lock + 300;
    const prefix = new DatabaseChecksum(pageSize);
    for (let p = 1; p < first; p++) {
      const [hi, lo] = synthetic(p);
      cache.setPage(p, hi, lo);
      prefix.xorHalves(hi, lo);
    }
    const ref = new DatabaseChecksum(pageSize);
    ref.xorHalves(prefix.valueHi, prefix.valueLo);
    // A sparse "file": only the pages from `first` on are read, and they are cheap.
    const reads: number[] = [];
    const last = loadPageChecksums(
      cache,
      pageCount,
      (p, into) => {
        assert.notEqual(p, lock, 'the lock page is never read');
        reads.push(p);
        into.set(pageData(pageSize, p));
        return into.length;
      },
      first,
    );
    assert.equal(last, pageCount);
    assert.equal(reads.length, pageCount - first);
    for (let p = first; p <= pageCount; p++) ref.addPage(p, pageData(pageSize, p));
    assert.equal(cache.databaseChecksum(pageCount), ref.value);

    cache.setPageChecksum(lock, checksumPage(lock, pageData(pageSize, 1)));
    cache.wal.setChecksum(lock, checksumPage(lock, pageData(pageSize, 2)));
    assert.equal(cache.getPage(lock), 0n);
    assert.equal(cache.databaseChecksum(pageCount), ref.value, 'lock-page overlays are ignored');

    // Ending exactly at, just before and just after the lock page.
    for (const n of [lock - 1, lock, lock + 1]) {
      const r = new DatabaseChecksum(pageSize);
      r.xorHalves(prefix.valueHi, prefix.valueLo);
      for (let p = first; p <= n; p++) r.addPage(p, pageData(pageSize, p));
      assert.equal(cache.databaseChecksum(n), r.value, `pageCount ${n}`);
    }
    cache.truncate(lock);
    assert.equal(cache.getPage(lock + 1), 0n);
    assert.throws(() => cache.databaseChecksum(lock + 2), /big\.db: missing checksum for page 2097154$/);
  });
});

describe('loadPageChecksums', () => {
  test('builds from a file and stops at a short read', () => {
    const pageSize = 1024;
    const pages = 700;
    const file = new Uint8Array(pageSize * pages - 100);
    for (let p = 1; p <= pages; p++) {
      file.set(pageData(pageSize, p).subarray(0, Math.min(pageSize, file.length - (p - 1) * pageSize)), (p - 1) * pageSize);
    }
    const reader = (p: number, into: Uint8Array): number => {
      const chunk = file.subarray((p - 1) * pageSize, p * pageSize);
      into.set(chunk);
      return chunk.length;
    };
    const cache = new ChecksumCache(pageSize);
    cache.computePage(900, pageData(pageSize, 900));
    assert.equal(loadPageChecksums(cache, pages, reader), pages - 1);
    assert.equal(cache.getPage(900), 0n, 'pages of an earlier load are forgotten');
    assert.equal(cache.knownPages, pages - 1);
    assert.equal(cache.databaseChecksum(pages - 1), checksumDatabase(pageSize, pages - 1, (p) => pageData(pageSize, p)));
    assert.throws(() => cache.databaseChecksum(pages), /missing checksum for page 700/);
  });
});

describe('speed', () => {
  test('database checksum of a 1 GiB database (262,144 pages) with fresh blocks and a 1000-page WAL', () => {
    const cache = new ChecksumCache(4096);
    const pages = 262_144;
    for (let p = 1; p <= pages; p++) cache.setPage(p, (0x80000000 | p) >>> 0, p);
    for (let p = 1; p <= 1000; p++) cache.wal.set(p * 200, 0x80000001, p);
    const t0 = process.hrtime.bigint();
    const rounds = 100;
    for (let i = 0; i < rounds; i++) cache.databaseChecksum(pages);
    const us = Number(process.hrtime.bigint() - t0) / 1000 / rounds;
    console.log(`databaseChecksum(262144 pages, 1000 WAL pages): ${us.toFixed(1)} us`);
    assert.ok(us < 5000, `${us} us per checksum`);
  });
});
