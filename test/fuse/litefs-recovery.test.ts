import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { formatHex16 } from '../../src/ltx/index.js';
import { type LTXFile, type LiteFSDaemon, assertChain, fileChecksum, readLTXFiles, replay, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * Start-up anomalies (ARCHITECTURE §3.3) through the real daemon: something
 * in the data dir is damaged while the daemon is stopped; it must start, put
 * the evidence in `<data>/forensic/<db>/<UTC time>/` (report.json), and the
 * database must work through the mount with sqlite3.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3']);

function overwrite(path: string, offset: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** A re-base snapshot `1-snapshotTXID` (pre-apply 0), then single transactions chained by checksum. */
function assertSnapshotChain(db: string, files: LTXFile[], snapshotTXID: bigint): void {
  const [snap, ...rest] = files;
  assert.equal(snap!.name, `${formatHex16(1n)}-${formatHex16(snapshotTXID)}.ltx`);
  assert.equal(snap!.header.preApplyChecksum, 0n);
  let prev = snap!.postApply;
  rest.forEach((f, i) => {
    const txid = snapshotTXID + BigInt(i + 1);
    assert.equal(f.name, `${formatHex16(txid)}-${formatHex16(txid)}.ltx`, `${db}: ${f.name}`);
    assert.equal(f.header.preApplyChecksum, prev, `${db}: ${f.name} pre-apply checksum`);
    prev = f.postApply;
  });
}

describe('litefs mount: start-up anomalies are set aside, the daemon starts', { skip }, () => {
  let daemon: LiteFSDaemon;
  before(async () => {
    daemon = await startLiteFS();
  });
  after(async () => {
    await daemon?.close();
  });

  const forensic = (db: string): string[] => {
    const root = join(daemon.data, 'forensic', db);
    return existsSync(root) ? readdirSync(root).sort().map((d) => join(root, d)) : [];
  };
  const report = (dir: string): Record<string, unknown> => JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Record<string, unknown>;

  test('invalid database header: files moved to forensic, the database starts empty and sqlite3 can create it again', async () => {
    const name = 'badheader.db';
    const path = join(daemon.mnt, name);
    expectSuccess('create', await runSqlite3(path, 'CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\n'));
    const original = readFileSync(daemon.databasePath(name));
    await daemon.stop();
    overwrite(daemon.databasePath(name), 0, Buffer.from('garbage garbage!'));
    await daemon.start();
    const [dir, ...more] = forensic(name);
    assert.equal(more.length, 0);
    assert.equal(report(dir!).reason, 'invalid database header');
    assert.deepEqual(readFileSync(join(dir!, 'database')).subarray(16), original.subarray(16));
    assert.deepEqual(readdirSync(join(dir!, 'ltx')), ['0000000000000001-0000000000000001.ltx', '0000000000000002-0000000000000002.ltx']);
    assert.match(daemon.output(), new RegExp(`WARN ${name}: invalid database header; evidence in ${dir!}`));
    assert.ok(!readdirSync(daemon.mnt).includes(name), 'starts empty: not listed');
    const out = expectSuccess('re-create', await runSqlite3(path, 'CREATE TABLE u(y);\nINSERT INTO u VALUES (7);\nSELECT y FROM u;\nPRAGMA integrity_check;\n'));
    assert.deepEqual(out.trim().split('\n'), ['7', 'ok']);
    const files = readLTXFiles(daemon, name);
    assertChain(name, files);
    assert.equal(files[0]!.header.minTXID, 1n);
  });

  test('a page changed while stopped: forensic copy, re-based onto a snapshot, sqlite3 reads the file as it is and writes on', async () => {
    const name = 'rebase.db';
    const path = join(daemon.mnt, name);
    // The last transaction (table u) leaves t's page alone, so re-applying
    // the last LTX file cannot repair the change below.
    expectSuccess('create', await runSqlite3(path, "CREATE TABLE t(x);\nINSERT INTO t VALUES ('marker-lowercase');\nCREATE TABLE u(y);\n"));
    await daemon.stop();
    const dbFile = daemon.databasePath(name);
    const image = readFileSync(dbFile);
    const at = image.indexOf('marker-lowercase');
    assert.ok(at > 0);
    overwrite(dbFile, at, Buffer.from('MARKER-UPPERCASE'));
    const changed = readFileSync(dbFile);
    await daemon.start();
    const [dir, ...more] = forensic(name);
    assert.equal(more.length, 0);
    const r = report(dir!);
    assert.match(String(r.reason), /^database checksum [0-9a-f]{16} on TXID 0000000000000003 does not match LTX post-apply checksum/);
    assert.equal(r.rebasedTXID, formatHex16(4n));
    assert.ok(readFileSync(join(dir!, 'database')).equals(changed));
    assert.deepEqual(readdirSync(join(dir!, 'ltx')).length, 3);
    assert.match(daemon.output(), /re-based onto snapshot TXID 0000000000000004/);
    assert.equal(readFileSync(join(daemon.mnt, `${name}-pos`), 'utf8').slice(0, 17), '0000000000000004/');
    const out = expectSuccess('read', await runSqlite3(path, "SELECT group_concat(x) FROM t;\nINSERT INTO t VALUES ('three');\nPRAGMA integrity_check;\n"));
    assert.deepEqual(out.trim().split('\n'), ['MARKER-UPPERCASE', 'ok']);
    const files = readLTXFiles(daemon, name);
    assert.deepEqual(files.map((f) => f.name), ['0000000000000001-0000000000000004.ltx', '0000000000000005-0000000000000005.ltx']);
    assertSnapshotChain(name, files, 4n);
    const now = readFileSync(dbFile);
    assert.ok(replay(files).equals(now), 'the snapshot plus the new LTX reproduce the database');
    assert.equal(files[0]!.postApply, fileChecksum(changed, files[0]!.header.pageSize));
  });

  test('the last LTX file is corrupt: set aside, the daemon starts, the database is re-based and works', async () => {
    const name = 'badltx.db';
    const path = join(daemon.mnt, name);
    expectSuccess('create', await runSqlite3(path, 'CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n'));
    await daemon.stop();
    const last = join(daemon.ltxDir(name), '0000000000000003-0000000000000003.ltx');
    overwrite(last, 120, Buffer.from([0xff, 0x00, 0xff, 0x00]));
    await daemon.start();
    const dirs = forensic(name);
    assert.equal(dirs.length, 2, dirs.join(' '));
    assert.match(String(report(dirs[0]!).reason), /last LTX file 0000000000000003-0000000000000003\.ltx fails to verify/);
    assert.equal(report(dirs[1]!).rebasedTXID, formatHex16(4n));
    const out = expectSuccess('read', await runSqlite3(path, 'INSERT INTO t VALUES (3);\nSELECT group_concat(x) FROM t;\nPRAGMA integrity_check;\n'));
    assert.deepEqual(out.trim().split('\n'), ['1,2,3', 'ok']);
    const files = readLTXFiles(daemon, name);
    assertSnapshotChain(name, files, 4n);
    assert.ok(replay(files).equals(readFileSync(daemon.databasePath(name))));
    // A clean restart adds nothing.
    await daemon.stop();
    await daemon.start();
    assert.equal(forensic(name).length, 2);
  });
});
