import { readFileSync } from 'node:fs';
import { fixture } from '../../helpers/paths.js';
import type { FuzzTarget } from '../target.js';
import { SqliteFormatError } from '../../../src/sqlite/errors.js';
import { databasePageCount, lockPageNumber, parseDatabaseHeader } from '../../../src/sqlite/header.js';

const testdata = (...p: string[]): Buffer => readFileSync(fixture('ltx', 'litefs-v0.5.11', 'testdata', ...p));

export const target: FuzzTarget = {
  name: 'sqlite-header',
  seeds: () => [
    testdata('store', 'open-and-write-snapshot', 'dbs', 'sqlite.db', 'database').subarray(0, 4096),
    testdata('db', 'write-snapshot-to', 'database'),
    testdata('store', 'open-invalid-database-header', 'dbs', 'test.db', 'database'),
    readFileSync(fixture('ltx', 'sqlite-generated', 'wal-live-with-shm', 'snap.db')),
  ],
  run(input) {
    const header = parseDatabaseHeader(input);
    databasePageCount(header, input.length);
    lockPageNumber(header.pageSize);
  },
  isExpected: (err) => err instanceof SqliteFormatError,
};
