import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type LiteFSDaemon, assertChain, readLTXFiles, replay, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runChild, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * Bad input through the mount: each is refused with a stated errno and one
 * daemon log line saying why; the node keeps working and an earlier
 * database's contents and LTX chain are unchanged and still writable.
 *
 * Errnos (all EIO, as LiteFS):
 * - first write to a new name that is not a SQLite header, or not at offset 0;
 * - a database write with no journal or WAL (journal_mode=MEMORY or OFF);
 * - a WAL write without the WAL write lock (locking_mode=EXCLUSIVE in WAL mode).
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3']);
const EIO = /Input\/output error|I\/O error/;

describe('litefs mount: bad input is refused, the rest keeps working', { skip }, () => {
  let daemon: LiteFSDaemon;
  let goodImage: Buffer;
  let goodLTX: string[];
  before(async () => {
    daemon = await startLiteFS();
    expectSuccess('good db', await runSqlite3(join(daemon.mnt, 'good.db'), 'CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\n'));
    goodImage = readFileSync(daemon.databasePath('good.db'));
    goodLTX = readdirSync(daemon.ltxDir('good.db'));
  });
  after(async () => {
    await daemon?.close();
  });

  /** Lines of the daemon's output containing `text` (the output is a tail; these tests write little). */
  const logLines = (text: string): string[] => daemon.output().split('\n').filter((l) => l.includes(text));

  test('a text file written into the mount: "Input/output error", one log line, nothing listed', async () => {
    const r = await runChild('sh', ['-c', `echo hi > ${join(daemon.mnt, 'notes.txt')}`]);
    assert.notEqual(r.status, 0);
    // dash says "I/O error", coreutils "Input/output error": both strerror(EIO).
    assert.match(r.stderr, EIO);
    assert.deepEqual(logLines('notes.txt: first write is not a SQLite database header'), [
      'fuse: refused (EIO): notes.txt: first write is not a SQLite database header (only SQLite databases can be stored here)',
    ]);
    assert.ok(!readdirSync(daemon.mnt).includes('notes.txt'), 'a name that never committed is not listed');
    // cp of a non-SQLite file: the same.
    const cp = await runChild('cp', ['/etc/hostname', join(daemon.mnt, 'host')]);
    assert.notEqual(cp.status, 0);
    assert.match(cp.stderr, EIO);
    assert.equal(logLines('refused (EIO): host: first write').length, 1);
  });

  test('a first write not at offset 0: "Input/output error", one log line', async () => {
    const r = await runChild('dd', ['if=/dev/zero', `of=${join(daemon.mnt, 'offset.db')}`, 'bs=4096', 'seek=1', 'count=1', 'conv=notrunc']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, EIO);
    assert.equal(logLines('refused (EIO): offset.db: first write at offset 4096').length, 1);
  });

  for (const mode of ['MEMORY', 'OFF'] as const) {
    test(`journal_mode=${mode}: the change is refused ("disk I/O error"), nothing unrecorded reaches the file`, async () => {
      const name = `jm-${mode.toLowerCase()}.db`;
      const path = join(daemon.mnt, name);
      expectSuccess('create', await runSqlite3(path, 'CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\n'));
      const before = readFileSync(daemon.databasePath(name));
      const beforeLTX = readdirSync(daemon.ltxDir(name));
      const r = await runSqlite3(path, `PRAGMA journal_mode=${mode};\nINSERT INTO t VALUES (2);\n`, { timeoutMs: 30_000 });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /disk I\/O error/);
      assert.equal(logLines(`refused (EIO): ${name}: database write without a rollback journal`).length, 1, daemon.output());
      assert.ok(readFileSync(daemon.databasePath(name)).equals(before), 'database file unchanged');
      assert.deepEqual(readdirSync(daemon.ltxDir(name)), beforeLTX);
      // The database still works in a journal mode LiteFS supports.
      const out = expectSuccess('after', await runSqlite3(path, 'INSERT INTO t VALUES (3);\nSELECT group_concat(x) FROM t;\nPRAGMA integrity_check;\n'));
      assert.deepEqual(out.trim().split('\n'), ['1,3', 'ok']);
      const files = readLTXFiles(daemon, name);
      assertChain(name, files);
      assert.ok(replay(files).equals(readFileSync(daemon.databasePath(name))));
    });
  }

  test('WAL with locking_mode=EXCLUSIVE: "disk I/O error"', async () => {
    const r = await runSqlite3(join(daemon.mnt, 'exclusive-wal.db'), 'PRAGMA locking_mode=EXCLUSIVE;\nPRAGMA journal_mode=WAL;\nCREATE TABLE t(x);\n', { timeoutMs: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /disk I\/O error/);
    assert.ok(logLines('refused (EIO): exclusive-wal.db: WAL write without the WAL write lock').length >= 1);
  });

  test('the earlier database is unchanged and still writable; a restart is clean', async () => {
    assert.ok(readFileSync(daemon.databasePath('good.db')).equals(goodImage));
    assert.deepEqual(readdirSync(daemon.ltxDir('good.db')), goodLTX);
    const path = join(daemon.mnt, 'good.db');
    expectSuccess('write', await runSqlite3(path, 'INSERT INTO t VALUES (2);\n'));
    await daemon.stop();
    await daemon.start();
    assert.equal(expectSuccess('read', await runSqlite3(path, 'SELECT group_concat(x) FROM t;\n')).trim(), '1,2');
    const files = readLTXFiles(daemon, 'good.db');
    assert.equal(files.length, 3);
    assertChain('good.db', files);
    assert.doesNotMatch(daemon.output(), /forensic/, 'refused names leave nothing that start-up treats as an anomaly');
  });
});
