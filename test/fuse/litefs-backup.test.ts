import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackupClient } from '../../src/backup/file.js';
import { S3BackupClient, parseS3URL } from '../../src/backup/s3.js';
import { formatHex16, formatPos, verifyFileSync } from '../../src/ltx/index.js';
import { waitFor } from '../helpers/cluster.js';
import { type LiteFSDaemon, startLiteFS } from '../helpers/litefs-daemon.js';
import { repoRoot } from '../helpers/paths.js';
import { S3Standin } from '../helpers/s3-standin.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runChild, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * `backup.type: file` on a primary, and `litefs restore` from that folder:
 * SQLite clients are the sqlite3 CLI in child processes; the test reads the
 * backup folder itself (FileBackupClient only reads it here).
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3']);

const DB = 'b.db';
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

describe('litefs mount: backups to a folder, restore to any upload point', { skip }, () => {
  let work: string;
  let backupDir: string;
  let daemon: LiteFSDaemon;
  let backup: FileBackupClient;

  const backupLines = (): string[] => ['backup:', '  type: file', `  path: "${backupDir}"`];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'litefs-backup-'));
    backupDir = join(work, 'backup');
    backup = new FileBackupClient(backupDir);
    daemon = await startLiteFS({ topLines: backupLines() });
  });
  after(async () => {
    await daemon?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  async function sql(text: string): Promise<string> {
    return expectSuccess(`sqlite3 ${text}`, await runSqlite3(join(daemon.mnt, DB), text)).trim();
  }

  /** Waits until the backup holds the node's position of DB; returns it. */
  async function caughtUp(node: LiteFSDaemon): Promise<string> {
    let local = '';
    let remote = '';
    await waitFor(
      () => `the backup to reach ${local} (at ${remote})`,
      () => {
        local = readFileSync(join(node.mnt, `${DB}-pos`), 'utf8').trim();
        remote = formatPos(backup.position(DB));
        return local === remote;
      },
      30_000,
      [node],
    );
    return local;
  }

  async function restore(args: string[], out: string): Promise<string> {
    return expectSuccess('litefs restore', await runChild(process.execPath, [cli, 'restore', '-path', backupDir, '-db', DB, ...args, '-o', out])).trim();
  }

  test('every commit reaches the backup, and a restore at each upload point has exactly the rows committed by then', async () => {
    await sql('PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);');
    const points: { txid: string; rows: number }[] = [];
    for (let batch = 0; batch < 4; batch++) {
      for (let i = 0; i < 5; i++) await sql(`INSERT INTO t(v) VALUES ('batch ${batch} row ${i}');`);
      const pos = await caughtUp(daemon);
      points.push({ txid: pos.slice(0, 16), rows: Number(await sql('SELECT count(*) FROM t;')) });
    }
    for (const [i, p] of points.entries()) {
      const out = join(work, `at-${i}.db`);
      assert.match(await restore(['-txid', p.txid], out), new RegExp(`^restored ${DB} at TXID ${p.txid} `));
      const check = expectSuccess('restored', await runSqlite3(out, 'SELECT count(*) FROM t; PRAGMA integrity_check;')).trim();
      assert.equal(check, `${p.rows}\nok`, `restore at TXID ${p.txid}`);
    }
    const metrics = await (await fetch(`${daemon.httpURL}/metrics`)).text();
    assert.match(metrics, new RegExp(`litefs_backup_txid\\{db="${DB}"\\} ${Number(BigInt('0x' + points.at(-1)!.txid))}\\n`));
    assert.match(metrics, new RegExp(`litefs_backup_upload_count\\{db="${DB}",kind="snapshot"\\} 1\\n`));
    assert.match(metrics, new RegExp(`litefs_backup_upload_count\\{db="${DB}",kind="incremental"\\} [1-9]`));
    const latest = join(work, 'latest.db');
    await restore([], latest);
    const exported = Buffer.from(await (await fetch(`${daemon.httpURL}/export?name=${DB}`)).arrayBuffer());
    assert.ok(readFileSync(latest).equals(exported), 'the newest restore is the database /export serves, byte for byte');
  });

  test('a restart goes on with the chain: incremental uploads, no second snapshot', async () => {
    await daemon.stop();
    await daemon.start();
    for (let i = 0; i < 3; i++) await sql(`INSERT INTO t(v) VALUES ('after restart ${i}');`);
    await caughtUp(daemon);
    const snapshots = readdirSync(join(backupDir, DB)).filter((n) => n.startsWith('0000000000000001-'));
    assert.equal(snapshots.length, 1, `one snapshot in ${readdirSync(join(backupDir, DB)).join(', ')}`);
  });

  test('a node behind the backup never has its data replaced: it says so once and leaves the backup alone', async () => {
    const before = readdirSync(join(backupDir, DB)).sort();
    const behind = await startLiteFS({ topLines: backupLines() });
    try {
      expectSuccess('create', await runSqlite3(join(behind.mnt, DB), 'CREATE TABLE mine(x); INSERT INTO mine VALUES (42);'));
      await waitFor(() => 'the backup-is-ahead log line', () => /backup: b\.db: the backup is ahead of this node/.test(behind.output()), 30_000, [behind]);
      assert.equal(expectSuccess('local', await runSqlite3(join(behind.mnt, DB), 'SELECT x FROM mine;')).trim(), '42');
      assert.deepEqual(readdirSync(join(backupDir, DB)).sort(), before);
    } finally {
      await behind.close();
    }
  });

  test('restore refuses what it cannot do, and never overwrites a file', async () => {
    const beyond = formatHex16(backup.position(DB).txid + 5n);
    const r = await runChild(process.execPath, [cli, 'restore', '-path', backupDir, '-db', DB, '-txid', beyond, '-o', join(work, 'never.db')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`no backup file ends at TXID ${beyond}`));
    assert.equal(existsSync(join(work, 'never.db')), false);
    const again = await runChild(process.execPath, [cli, 'restore', '-path', backupDir, '-db', DB, '-o', join(work, 'latest.db')]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists: restore never overwrites a file/);
  });
});

describe('litefs mount: backups across a SIGKILL of the primary', { skip }, () => {
  let work: string;
  let daemon: LiteFSDaemon;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'litefs-backup-kill-'));
    daemon = await startLiteFS({ topLines: ['backup:', '  type: file', `  path: "${join(work, 'backup')}"`] });
  });
  after(async () => {
    await daemon?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test("killed mid-burst and restarted: the backup holds only whole, verified files, continues the chain, and restores to the node's data", async () => {
    const backup = new FileBackupClient(join(work, 'backup'));
    const writer = runSqlite3(
      join(daemon.mnt, DB),
      ['PRAGMA journal_mode=wal; CREATE TABLE t(v);', ...Array.from({ length: 3000 }, (_, i) => `INSERT INTO t VALUES (${i});`)].join('\n'),
    );
    // Kill once the backup has something, while the burst is still running.
    await waitFor(() => 'a first upload', () => backup.position(DB).txid > 0n, 30_000, [daemon]);
    await daemon.kill();
    await writer;
    await daemon.start();
    expectSuccess('more', await runSqlite3(join(daemon.mnt, DB), 'INSERT INTO t VALUES (-1);'));
    await waitFor(
      () => 'the backup to reach the node after the restart',
      () => readFileSync(join(daemon.mnt, `${DB}-pos`), 'utf8').trim() === formatPos(backup.position(DB)),
      30_000,
      [daemon],
    );
    for (const file of readdirSync(join(work, 'backup', DB)).filter((n) => n.endsWith('.ltx'))) verifyFileSync(join(work, 'backup', DB, file));
    const out = join(work, 'restored.db');
    expectSuccess('restore', await runChild(process.execPath, [cli, 'restore', '-path', join(work, 'backup'), '-db', DB, '-o', out]));
    const exported = Buffer.from(await (await fetch(`${daemon.httpURL}/export?name=${DB}`)).arrayBuffer());
    assert.ok(readFileSync(out).equals(exported), 'the restore is the database /export serves, byte for byte');
    assert.equal(expectSuccess('check', await runSqlite3(out, 'PRAGMA integrity_check;')).trim(), 'ok');
  });
});

describe('litefs mount: a backup outage longer than retention', { skip }, () => {
  let work: string;
  let daemon: LiteFSDaemon;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'litefs-backup-outage-'));
    daemon = await startLiteFS({
      dataLines: ['  retention: 1s', '  retention-monitor-interval: 1s'],
      topLines: ['backup:', '  type: file', `  path: "${join(work, 'backup')}"`],
    });
  });
  after(async () => {
    await daemon?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test('retention keeps the files the backup lacks, so uploads resume incrementally (one snapshot in all)', async () => {
    const backup = new FileBackupClient(join(work, 'backup'));
    const dbDir = join(work, 'backup', DB);
    const sql = async (text: string): Promise<void> => void expectSuccess(text, await runSqlite3(join(daemon.mnt, DB), text));
    const caughtUp = (): Promise<void> =>
      waitFor(
        () => `the backup to reach ${readFileSync(join(daemon.mnt, `${DB}-pos`), 'utf8').trim()}`,
        () => readFileSync(join(daemon.mnt, `${DB}-pos`), 'utf8').trim() === formatPos(backup.position(DB)),
        30_000,
        [daemon],
      );
    await sql('CREATE TABLE t(v); INSERT INTO t VALUES (0);');
    await caughtUp();
    // The outage: the database's backup folder is replaced by a plain file, so every upload fails.
    renameSync(dbDir, `${dbDir}.away`);
    writeFileSync(dbDir, 'not a folder');
    // Commits over a few seconds: each one after the first second runs a retention sweep (1 s monitor interval).
    for (let i = 1; i <= 8; i++) {
      await sql(`INSERT INTO t VALUES (${i});`);
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    await waitFor(() => 'a failed upload in the log', () => /backup: file:\/\/.*retrying/.test(daemon.output()), 30_000, [daemon]);
    rmSync(dbDir);
    renameSync(`${dbDir}.away`, dbDir);
    await sql('INSERT INTO t VALUES (9);');
    await caughtUp();
    const names = readdirSync(dbDir);
    assert.equal(names.filter((n) => n.startsWith('0000000000000001-')).length, 1, `one snapshot only: ${names.join(', ')}`);
    const out = join(work, 'restored.db');
    expectSuccess('restore', await runChild(process.execPath, [cli, 'restore', '-path', join(work, 'backup'), '-db', DB, '-o', out]));
    assert.equal(expectSuccess('count', await runSqlite3(out, 'SELECT count(*), sum(v) FROM t;')).trim(), '10|45');
  });
});

describe('litefs mount: backups to S3 (a stand-in: no S3 server is packaged for Debian)', { skip }, () => {
  let s3: S3Standin;
  let daemon: LiteFSDaemon;
  let work: string;
  let url: string;
  const saved = { ...process.env };

  before(async () => {
    s3 = await S3Standin.start({ pageSize: 5 });
    work = mkdtempSync(join(tmpdir(), 'litefs-backup-s3-'));
    url = `s3://bkt/clusters/one?endpoint=${encodeURIComponent(s3.endpoint)}&force-path-style=true&region=us-east-1`;
    // The daemon and `litefs restore` take credentials from the environment, as from any AWS setup.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    daemon = await startLiteFS({ topLines: ['backup:', '  type: s3', `  url: "${url}"`] });
  });
  after(async () => {
    await daemon?.close();
    await s3?.close();
    for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test('commits reach the bucket under the prefix; litefs restore -url rebuilds the newest image byte for byte', async () => {
    const client = new S3BackupClient(parseS3URL(url));
    try {
      for (let i = 0; i < 12; i++) expectSuccess('insert', await runSqlite3(join(daemon.mnt, DB), `CREATE TABLE IF NOT EXISTS t(v); INSERT INTO t VALUES (${i});`));
      await waitFor(
        () => 'the bucket to reach the node',
        async () => readFileSync(join(daemon.mnt, `${DB}-pos`), 'utf8').trim() === formatPos(await client.position(DB)),
        30_000,
        [daemon],
      );
    } finally {
      client.close();
    }
    assert.ok(s3.keys('bkt').every((k) => k.startsWith(`clusters/one/${DB}/`)), s3.keys('bkt').join(', '));
    const out = join(work, 'latest.db');
    expectSuccess('restore', await runChild(process.execPath, [cli, 'restore', '-url', url, '-db', DB, '-o', out]));
    const exported = Buffer.from(await (await fetch(`${daemon.httpURL}/export?name=${DB}`)).arrayBuffer());
    assert.ok(readFileSync(out).equals(exported), 'the restore is the database /export serves, byte for byte');
  });
});
