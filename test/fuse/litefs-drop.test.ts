import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type LiteFSDaemon, assertChain, readLTXFiles, replay, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * Unlinking `<db>` in the mount deletes the database as a transaction of
 * its own (an LTX file with commit 0, ref §6.11); the name can be created
 * again and its TXIDs continue, also across a restart.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3']);

describe('litefs mount: deleting a database', { skip }, () => {
  let daemon: LiteFSDaemon;
  before(async () => {
    daemon = await startLiteFS();
  });
  after(async () => {
    await daemon?.close();
  });

  test('rm of a database writes a commit-0 LTX, hides it, and a new database under the name continues the chain', async () => {
    const name = 'gone.db';
    const path = join(daemon.mnt, name);
    expectSuccess('create', await runSqlite3(path, 'CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\n'));
    unlinkSync(path);
    assert.equal(existsSync(path), false);
    assert.deepEqual(readdirSync(daemon.mnt), ['.lag']);
    assert.equal(readFileSync(join(daemon.mnt, `${name}-pos`), 'utf8'), '0000000000000003/8000000000000000\n');
    let files = readLTXFiles(daemon, name);
    assert.equal(files.length, 3);
    assert.equal(files[2]!.header.commit, 0);
    assert.equal(files[2]!.pages.length, 0);

    // Created again, with another page size.
    const out = expectSuccess('re-create', await runSqlite3(path, 'PRAGMA page_size=1024;\nCREATE TABLE u(y);\nINSERT INTO u VALUES (5);\nSELECT * FROM u;\n'));
    assert.equal(out.trim(), '5');
    files = readLTXFiles(daemon, name);
    assert.equal(files.length, 5);
    assertChain(name, files);
    assert.equal(files[4]!.header.pageSize, 1024);
    assert.ok(replay(files).equals(readFileSync(daemon.databasePath(name))), 'replay differs from the database file');

    // Deleted again, then a restart: still deleted, same position.
    unlinkSync(path);
    const pos = readFileSync(join(daemon.mnt, `${name}-pos`), 'utf8');
    assert.equal(pos, '0000000000000006/8000000000000000\n');
    await daemon.stop();
    await daemon.start();
    assert.equal(readFileSync(join(daemon.mnt, `${name}-pos`), 'utf8'), pos);
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(daemon.databasePath(name)), false);
  });
});
