import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatHex16 } from '../../src/ltx/index.js';
import { type LiteFSDaemon, assertChain, fileChecksum, readLTXFiles, replay, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runChild, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * `litefs mount` on one node: SQLite (the sqlite3 CLI in child processes)
 * writes through the mount in each journal mode, and every committed
 * transaction must become exactly one LTX file whose checksums chain and
 * reproduce the database.
 */

const skip = skipUnless(['root', 'fuse', 'sqlite3']);

/** Statements of the workload, each its own transaction unless noted; returns SQL and the number of commits. */
function workload(round: number): { sql: string; commits: number } {
  const lines: string[] = [];
  let commits = 0;
  const tx = (sql: string): void => {
    lines.push(sql);
    commits++;
  };
  if (round === 0) tx('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);');
  for (let i = 0; i < 5; i++) tx(`INSERT INTO t(v) VALUES (randomblob(${100 + i * 50}));`);
  // One transaction that grows the file by many pages.
  tx(`BEGIN; ${'INSERT INTO t(v) VALUES (randomblob(3000)); '.repeat(20)}COMMIT;`);
  tx('UPDATE t SET v = randomblob(40) WHERE id % 2 = 0;');
  // A transaction that rolls back writes nothing.
  lines.push('BEGIN; INSERT INTO t(v) VALUES (randomblob(10)); ROLLBACK;');
  tx('DELETE FROM t WHERE id > 12;');
  if (round === 0) tx('CREATE INDEX t_v ON t(v);');
  // Shrinks the file.
  if (round === 1) tx('VACUUM;');
  return { sql: lines.join('\n') + '\n', commits };
}

interface ModeCase {
  readonly db: string;
  readonly journalMode: 'delete' | 'truncate' | 'persist' | 'wal';
  readonly pageSize: number;
}

const CASES: readonly ModeCase[] = [
  { db: 'delete.db', journalMode: 'delete', pageSize: 4096 },
  { db: 'truncate.db', journalMode: 'truncate', pageSize: 4096 },
  { db: 'persist.db', journalMode: 'persist', pageSize: 4096 },
  { db: 'wal.db', journalMode: 'wal', pageSize: 4096 },
  { db: 'delete-1k.db', journalMode: 'delete', pageSize: 1024 },
  { db: 'wal-64k.db', journalMode: 'wal', pageSize: 65536 },
];

describe('litefs mount: SQLite commits become LTX files', { skip }, () => {
  let daemon: LiteFSDaemon;
  /** Committed transactions per database so far. */
  const expected = new Map<string, number>();

  before(async () => {
    daemon = await startLiteFS();
  });
  after(async () => {
    await daemon?.close();
  });

  async function sqlite(db: string, sql: string): Promise<string> {
    const r = await runSqlite3(join(daemon.mnt, db), sql, { timeoutMs: 30_000 });
    try {
      return expectSuccess(`sqlite3 on ${db}`, r);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- litefs output ---\n${daemon.output().slice(-4000)}`);
    }
  }

  /** Runs one workload round; the first also sets page size and journal mode. */
  async function runRound(c: ModeCase, round: number): Promise<void> {
    const w = workload(round);
    const setup = round === 0 ? `PRAGMA page_size=${c.pageSize};\nPRAGMA journal_mode=${c.journalMode};\n` : '';
    // Switching a new database to WAL writes its header: one more transaction.
    const extra = round === 0 && c.journalMode === 'wal' ? 1 : 0;
    // Rollback-journal modes other than DELETE are per connection: repeat them.
    const perConnection = round > 0 && c.journalMode !== 'wal' ? `PRAGMA journal_mode=${c.journalMode};\n` : '';
    await sqlite(c.db, setup + perConnection + w.sql);
    expected.set(c.db, (expected.get(c.db) ?? 0) + w.commits + extra);
  }

  /** All the checks of one database against its LTX files. */
  async function check(c: ModeCase): Promise<void> {
    const integrity = await sqlite(c.db, 'PRAGMA integrity_check;\n');
    assert.equal(integrity.trim(), 'ok', `${c.db}: integrity_check`);
    if (c.journalMode === 'wal') await sqlite(c.db, 'PRAGMA wal_checkpoint(TRUNCATE);\n');

    const files = readLTXFiles(daemon, c.db);
    assert.equal(files.length, expected.get(c.db), `${c.db}: LTX files ${files.map((f) => f.name).join(' ')}`);
    assertChain(c.db, files);
    for (const f of files) assert.equal(f.header.pageSize, c.pageSize, `${c.db}: ${f.name} page size`);

    const last = files.at(-1)!;
    const pos = readFileSync(join(daemon.mnt, `${c.db}-pos`), 'utf8');
    assert.equal(pos, `${formatHex16(last.header.maxTXID)}/${formatHex16(last.postApply)}\n`, `${c.db}: -pos`);

    const image = readFileSync(daemon.databasePath(c.db));
    assert.equal(
      formatHex16(fileChecksum(image, c.pageSize)),
      formatHex16(last.postApply),
      `${c.db}: checksum of the database file vs post-apply of ${last.name}`,
    );
    const replayed = replay(files);
    assert.equal(replayed.length, image.length, `${c.db}: replayed size`);
    assert.ok(replayed.equals(image), `${c.db}: replaying the LTX files does not reproduce the database file`);
  }

  for (const c of CASES) {
    test(`${c.journalMode} mode, page size ${c.pageSize}: one LTX per commit, chained, replay reproduces ${c.db}`, async () => {
      await runRound(c, 0);
      await runRound(c, 1);
      await check(c);
    });
  }

  test('journal mode transitions WAL → DELETE → WAL → PERSIST: every switch is a transaction, replay reproduces the file', async () => {
    const name = 'switch.db';
    const out = await sqlite(
      name,
      [
        'PRAGMA journal_mode=wal;',
        'CREATE TABLE t(x);',
        'INSERT INTO t VALUES (1);',
        'PRAGMA journal_mode=delete;',
        'INSERT INTO t VALUES (2);',
        'PRAGMA journal_mode=wal;',
        'INSERT INTO t VALUES (3);',
        'PRAGMA journal_mode=persist;',
        'INSERT INTO t VALUES (4);',
        'PRAGMA integrity_check;',
        '',
      ].join('\n'),
    );
    assert.deepEqual(out.trim().split('\n'), ['wal', 'delete', 'wal', 'persist', 'ok']);
    // 4 mode switches (each rewrites page 1), CREATE, 4 INSERTs.
    const files = readLTXFiles(daemon, name);
    assert.equal(files.length, 9, files.map((f) => f.name).join(' '));
    assertChain(name, files);
    const image = readFileSync(daemon.databasePath(name));
    assert.equal(formatHex16(fileChecksum(image, 4096)), formatHex16(files.at(-1)!.postApply));
    assert.ok(replay(files).equals(image), `${name}: replay differs from the database file`);
  });

  test('EXCLUSIVE locking mode with a rollback journal commits by zeroing the header (one LTX per commit)', async () => {
    const name = 'exclusive.db';
    const out = await sqlite(name, 'PRAGMA locking_mode=EXCLUSIVE;\nCREATE TABLE t(x);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\nPRAGMA integrity_check;\n');
    assert.deepEqual(out.trim().split('\n'), ['exclusive', 'ok']);
    const files = readLTXFiles(daemon, name);
    assert.equal(files.length, 3, files.map((f) => f.name).join(' '));
    assertChain(name, files);
    assert.ok(replay(files).equals(readFileSync(daemon.databasePath(name))), `${name}: replay differs`);
  });

  test('WAL with EXCLUSIVE locking mode is refused with an I/O error, as in LiteFS', async () => {
    const r = await runSqlite3(join(daemon.mnt, 'exclusive-wal.db'), 'PRAGMA locking_mode=EXCLUSIVE;\nPRAGMA journal_mode=WAL;\nCREATE TABLE t(x);\n', { timeoutMs: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /disk I\/O error/);
  });

  test('a reader holding -pos open sees each new position (the kernel copy is invalidated)', async () => {
    const name = 'pos-reader.db';
    await sqlite(name, 'CREATE TABLE t(x);\n');
    // python3: pread the open -pos file, commit through sqlite3, pread again
    // (polling briefly: the notifier thread writes the invalidation).
    const script = [
      'import os, subprocess, sys, time',
      'mnt, name = sys.argv[1], sys.argv[2]',
      "fd = os.open(os.path.join(mnt, name + '-pos'), os.O_RDONLY)",
      'before = os.pread(fd, 64, 0)',
      "subprocess.run(['sqlite3', os.path.join(mnt, name), 'INSERT INTO t VALUES (1)'], check=True)",
      'deadline = time.time() + 2',
      'after = os.pread(fd, 64, 0)',
      'while after == before and time.time() < deadline:',
      '    time.sleep(0.01)',
      '    after = os.pread(fd, 64, 0)',
      "print(before.decode().strip() + ' ' + after.decode().strip())",
    ].join('\n');
    const out = expectSuccess('pos reader', await runChild('python3', ['-c', script, daemon.mnt, name]));
    const [before, after] = out.trim().split(' ');
    assert.equal(before?.slice(0, 16), '0000000000000001');
    assert.equal(after?.slice(0, 16), '0000000000000002', `-pos still ${after} after a commit`);
  });

  test('the mount root lists each database with its -pos file, and .lag', () => {
    const names = readdirSync(daemon.mnt).sort();
    const want = ['.lag'];
    want.push('pos-reader.db', 'pos-reader.db-pos');
    // switch.db ended in PERSIST mode: its journal stays.
    want.push('switch.db', 'switch.db-pos', 'switch.db-journal');
    // EXCLUSIVE locking deletes its journal at close; the refused WAL database committed its switch to WAL.
    want.push('exclusive.db', 'exclusive.db-pos', 'exclusive-wal.db', 'exclusive-wal.db-pos');
    for (const c of CASES) {
      want.push(c.db, `${c.db}-pos`);
      // TRUNCATE and PERSIST keep their journal between transactions.
      if (c.journalMode === 'truncate' || c.journalMode === 'persist') want.push(`${c.db}-journal`);
    }
    assert.deepEqual(names, want.sort());
    assert.equal(statSync(join(daemon.mnt, 'delete.db')).mode & 0o777, 0o666);
    assert.equal(statSync(join(daemon.mnt, 'delete.db-pos')).size, 34);
    assert.equal(statSync(join(daemon.mnt, '.lag')).mode & 0o777, 0o444);
    assert.equal(readFileSync(join(daemon.mnt, '.lag'), 'utf8'), '+000000000\n');
    assert.match(readFileSync(join(daemon.mnt, 'delete.db-pos'), 'utf8'), /^[0-9a-f]{16}\/[0-9a-f]{16}\n$/);
  });

  test('after a restart on the same data directory the positions are the same and new commits continue the chain', async () => {
    const before = new Map(CASES.map((c) => [c.db, readFileSync(join(daemon.mnt, `${c.db}-pos`), 'utf8')]));
    await daemon.stop();
    await daemon.start();
    for (const c of CASES) {
      assert.equal(readFileSync(join(daemon.mnt, `${c.db}-pos`), 'utf8'), before.get(c.db), `${c.db}: -pos after restart`);
    }
    for (const c of CASES) {
      await runRound(c, 2);
      await check(c);
    }
  });
});
