import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChecksumFlag,
  DatabaseChecksum,
  checksumDatabase,
  checksumPage,
  checksumPageInto,
  joinChecksum,
  lockPgno,
} from '../../../src/ltx/checksum.js';
import { LITEFS_DB, fill, hex, read } from './helpers.js';
import { fixture } from '../../helpers/paths.js';

function dbChecksum(pageSize: number, pages: Record<number, Uint8Array>): string {
  const acc = new DatabaseChecksum(pageSize);
  for (const [pgno, data] of Object.entries(pages)) acc.addPage(Number(pgno), data);
  return hex(acc.value);
}

const ascii = (ch: string, n: number): Uint8Array => fill(n, ch.charCodeAt(0));

describe('page checksums (formats.md A.12)', () => {
  test('ChecksumFlag is bit 63', () => {
    assert.equal(ChecksumFlag, 0x8000000000000000n);
  });

  test('ChecksumPage vectors', () => {
    assert.equal(hex(checksumPage(1, fill(512, 0))), 'efb1f44fecd99000');
    assert.equal(hex(checksumPage(1, fill(4096, 0))), 'd9328f592d9e733d');
    assert.equal(hex(checksumPage(2, fill(4096, 0))), 'f7901e47304ca33f');
    const ramp = new Uint8Array(4096).map((_, i) => i & 0xff);
    assert.equal(hex(checksumPage(1, ramp)), 'da5833f10d978faa');
  });

  test('checksumPageInto writes the same value as halves', () => {
    const out = new Uint32Array(6);
    checksumPageInto(2, fill(4096, 0), out, 2);
    assert.equal(hex(joinChecksum(out[4], out[5])), 'f7901e47304ca33f');
    assert.equal(out[0], 0);
  });

  test('lock page numbers for every page size', () => {
    const expected: Record<number, number> = {
      512: 2097153,
      1024: 1048577,
      2048: 524289,
      4096: 262145,
      8192: 131073,
      16384: 65537,
      32768: 32769,
      65536: 16385,
    };
    for (const [p, lock] of Object.entries(expected)) assert.equal(lockPgno(Number(p)), lock);
  });
});

describe('database checksums (formats.md A.12)', () => {
  test('vectors from ltx tests', () => {
    assert.equal(dbChecksum(512, { 1: fill(512, 1), 2: fill(512, 2), 3: fill(512, 3) }), 'efffffffecd99000');
    assert.equal(dbChecksum(1024, { 1: ascii('2', 1024), 2: ascii('3', 1024) }), 'e1899b6d587aaaaa');
    assert.equal(dbChecksum(512, { 1: ascii('2', 512), 2: ascii('3', 512) }), '8b87423eeeeeeeee');
    assert.equal(dbChecksum(512, { 1: ascii('1', 512) }), 'eb1a999231044ddd');
    assert.equal(dbChecksum(1024, { 1: fill(1024, 0x81), 2: fill(1024, 0x82), 3: fill(1024, 0x83) }), '8a249272ad9f7dea');
    assert.equal(dbChecksum(1024, { 1: fill(1024, 0x81) }), 'eb953fc47685d740');
  });

  test('an empty database is 8000000000000000', () => {
    assert.equal(hex(new DatabaseChecksum(4096).value), '8000000000000000');
    assert.equal(hex(checksumDatabase(4096, 0, () => new Uint8Array(4096))), '8000000000000000');
  });

  test('addPage ignores the lock page', () => {
    const acc = new DatabaseChecksum(4096);
    acc.addPage(lockPgno(4096), fill(4096, 9));
    assert.equal(acc.value, ChecksumFlag);
  });

  test("262155 pages of 'x' at 4096, lock page excluded, is c19b668c376662c7", () => {
    const page = ascii('x', 4096);
    let reads = 0;
    const sum = checksumDatabase(4096, 262155, () => {
      reads++;
      return page;
    });
    assert.equal(hex(sum), 'c19b668c376662c7');
    assert.equal(reads, 262154, 'the lock page is not read');
  });

  test('LiteFS v0.5.11 sqlite.db/database checksums to its LTX post-apply checksum', () => {
    const db = read(LITEFS_DB);
    assert.equal(db.length, 10 * 4096);
    const sum = checksumDatabase(4096, 10, (pgno) => db.subarray((pgno - 1) * 4096, pgno * 4096));
    assert.equal(hex(sum), 'fe3831a381c602b9');
  });

  test('LiteFS v0.5.11 write-snapshot-to/database checksums to e2e79e6905b952db', () => {
    const db = read(fixture('ltx', 'litefs-v0.5.11', 'testdata', 'db', 'write-snapshot-to', 'database'));
    const sum = checksumDatabase(4096, 2, (pgno) => db.subarray((pgno - 1) * 4096, pgno * 4096));
    assert.equal(hex(sum), 'e2e79e6905b952db');
  });
});
