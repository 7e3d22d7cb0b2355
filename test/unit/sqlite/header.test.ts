import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BadMagicError, BadPageSizeError, ShortBufferError } from '../../../src/sqlite/errors.js';
import {
  databasePageCount,
  decodePageSize,
  encodePageSize,
  lockPageNumber,
  parseDatabaseHeader,
  PENDING_BYTE,
} from '../../../src/sqlite/header.js';
import { ltxFixture } from './helpers.js';

const testdata = (...p: string[]): Buffer => ltxFixture('litefs-v0.5.11', 'testdata', ...p);

describe('database header', () => {
  test('parses every field of the LiteFS open-and-write-snapshot database', () => {
    const db = testdata('store', 'open-and-write-snapshot', 'dbs', 'sqlite.db', 'database');
    const h = parseDatabaseHeader(db);
    assert.equal(h.pageSize, 4096);
    assert.equal(h.writeVersion, 1);
    assert.equal(h.readVersion, 1);
    assert.equal(h.mode, 'rollback');
    assert.equal(h.changeCounter, 10);
    assert.equal(h.headerPageCount, 10);
    assert.equal(h.freelistTrunk, 0);
    assert.equal(h.freelistCount, 0);
    assert.equal(h.schemaCookie, 6);
    assert.equal(h.schemaFormat, 4);
    assert.equal(h.textEncoding, 1);
    assert.equal(h.versionValidFor, 10);
    assert.equal(h.sqliteVersion, 3035004);
    assert.equal(databasePageCount(h, db.length), 10);
  });

  test('reports WAL mode only when both version bytes are 2', () => {
    const snap = ltxFixture('sqlite-generated', 'wal-live-with-shm', 'snap.db');
    assert.equal(parseDatabaseHeader(snap).mode, 'wal');
    const mixed = Buffer.from(snap.subarray(0, 100));
    mixed[18] = 1;
    assert.equal(parseDatabaseHeader(mixed).mode, 'rollback');
  });

  test('trusts the in-header page count only when non-zero and [24] == [92]', () => {
    const db = Buffer.from(testdata('db', 'write-snapshot-to', 'database'));
    const h = parseDatabaseHeader(db);
    assert.equal(h.sqliteVersion, 3038005);
    assert.equal(databasePageCount(h, 99 * 4096), 2);
    db.writeUInt32BE(3, 92); // version-valid-for no longer matches the change counter
    assert.equal(databasePageCount(parseDatabaseHeader(db), 7 * 4096 + 100), 7);
    db.writeUInt32BE(2, 92);
    db.writeUInt32BE(0, 28);
    assert.equal(databasePageCount(parseDatabaseHeader(db), 5 * 4096), 5);
  });

  test('rejects the LiteFS invalid-header and short-database fixtures with typed errors', () => {
    const zeros = testdata('store', 'open-invalid-database-header', 'dbs', 'test.db', 'database');
    assert.throws(() => parseDatabaseHeader(zeros), BadMagicError);
    const short = testdata('store', 'open-short-database', 'dbs', 'test.db', 'database');
    assert.throws(() => parseDatabaseHeader(short), ShortBufferError);
    const empty = testdata('store', 'open-name-only', 'dbs', 'test.db', 'database');
    assert.throws(() => parseDatabaseHeader(empty), ShortBufferError);
  });

  test('decodes page size 1 as 65536 and rejects sizes SQLite would not open', () => {
    const db = Buffer.from(testdata('db', 'write-snapshot-to', 'database').subarray(0, 100));
    db.writeUInt16BE(1, 16);
    assert.equal(parseDatabaseHeader(db).pageSize, 65536);
    for (const bad of [0, 256, 1000, 3, 0x8001]) {
      db.writeUInt16BE(bad, 16);
      assert.throws(() => parseDatabaseHeader(db), BadPageSizeError, `page size field ${bad}`);
    }
  });

  test('page size encoding round-trips every valid size', () => {
    for (let size = 512; size <= 65536; size *= 2) {
      assert.equal(decodePageSize(encodePageSize(size)), size);
    }
    assert.equal(encodePageSize(65536), 1);
    assert.throws(() => encodePageSize(1000), BadPageSizeError);
  });

  test('lock page holds PENDING_BYTE', () => {
    assert.equal(PENDING_BYTE, 0x40000000);
    assert.equal(lockPageNumber(4096), 262145);
    assert.equal(lockPageNumber(512), 2097153);
    assert.equal(lockPageNumber(65536), 16385);
    for (let size = 512; size <= 65536; size *= 2) {
      const pg = lockPageNumber(size);
      assert.ok((pg - 1) * size <= PENDING_BYTE && PENDING_BYTE < pg * size);
    }
  });
});
