import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { UNCOMPRESSED_IMPORT_BYTES, handleCommand } from '../../../src/fs/commands.js';
import { HeaderFlagCompressLZ4, decodeBytes } from '../../../src/ltx/index.js';
import type { StoreEvent } from '../../../src/store/messages.js';
import type { Store } from '../../../src/store/store.js';
import { type Harness, PAGE, harness, imageChecksum, page, tx } from '../store/store-fixture.js';

/**
 * The FUSE thread's `import` command (src/fs/commands.ts) on a real store
 * without a mount: the image is read from its file a chunk (1 MiB) at a
 * time, never whole, so these images span several chunks.
 */
describe('import command', () => {
  let h: Harness;
  let store: Store;
  let results: StoreEvent[];

  beforeEach(() => {
    h = harness();
    store = h.open();
    results = [];
  });
  afterEach(() => rmSync(h.base, { recursive: true, force: true }));

  /** `filePages` pages whose header says `commit`; each page filled with its number. */
  function imageFile(commit: number, filePages: number): { path: string; expected: Buffer } {
    const pages = Array.from({ length: filePages }, (_, i) => page((i + 1) & 0xff, i + 1, commit));
    pages[0]!.writeUInt32BE(77, 24); // change counter
    pages[0]!.writeUInt32BE(9, 40); // schema cookie
    const path = join(h.base, 'import.db');
    writeFileSync(path, Buffer.concat(pages));
    const expected = Buffer.concat(pages.slice(0, commit));
    expected.fill(0, 24, 28);
    expected.fill(0, 40, 44);
    return { path, expected };
  }

  function runImport(db: string, path: string): StoreEvent | undefined {
    handleCommand(store, { type: 'import', id: 1, db, path }, (e) => results.push(e), () => undefined);
    return results.find((e) => e.type === 'commandResult');
  }

  test('a new database: one snapshot LTX and a database file equal to the header-counted pages, counters zeroed', () => {
    const { path, expected } = imageFile(2500, 2600);
    assert.deepEqual(runImport('i.db', path), { type: 'commandResult', id: 1, status: 'ok', inodes: [] });
    const db = store.db('i.db')!;
    assert.equal(db.pos.txid, 1n);
    assert.equal(db.pos.postApplyChecksum, imageChecksum(expected));
    assert.ok(readFileSync(db.databasePath).equals(expected), 'the database file is the image, cut to its header count');
    const [name] = readdirSync(db.ltxDir);
    const pages: Buffer[] = [];
    const summary = decodeBytes(readFileSync(join(db.ltxDir, name!)), { onPage: (_pgno, data) => void pages.push(Buffer.from(data)) });
    assert.equal(summary.header.commit, 2500);
    assert.ok(Buffer.concat(pages).equals(expected), 'the LTX file holds the same pages');
  });

  test('over an existing database: the next TXID, and commits continue after it', () => {
    const db = store.createDB('i.db');
    tx(db, 1, 3);
    const { path, expected } = imageFile(1500, 1500);
    assert.equal(runImport('i.db', path)?.type, 'commandResult');
    assert.equal(db.pos.txid, 2n);
    assert.ok(readFileSync(db.databasePath).equals(expected));
    tx(db, 5, 1500, [1500]);
    assert.equal(db.pos.txid, 3n);
  });

  test('with data.compress on, an import is LZ4-compressed up to UNCOMPRESSED_IMPORT_BYTES and stored plain above it', () => {
    store = h.open({ compress: true });
    const flagsOf = (db: string): number => {
      const dir = store.db(db)!.ltxDir;
      return decodeBytes(readFileSync(join(dir, readdirSync(dir)[0]!))).header.flags;
    };
    const small = imageFile(100, 100);
    assert.equal(runImport('small.db', small.path)?.type, 'commandResult');
    assert.equal(flagsOf('small.db'), HeaderFlagCompressLZ4);
    const pages = UNCOMPRESSED_IMPORT_BYTES / PAGE + 1;
    const large = imageFile(pages, pages);
    results = [];
    assert.deepEqual(runImport('large.db', large.path), { type: 'commandResult', id: 1, status: 'ok', inodes: [] });
    assert.equal(flagsOf('large.db'), 0);
    assert.equal(store.db('large.db')!.pos.postApplyChecksum, imageChecksum(large.expected));
  });
});
