import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Cluster,
  assertSameImages,
  exportImage,
  readPos,
  startCluster,
  waitConverged,
} from '../helpers/cluster.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * Replication with a static lease (issue 5): one primary and two replicas,
 * each a `litefs mount` process on loopback; every SQLite client runs in a
 * child process (the sqlite3 CLI or python3).
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);

function sql(node: { mnt: string }, db: string, text: string): Promise<string> {
  return runSqlite3(join(node.mnt, db), text, { timeoutMs: 30_000 }).then((r) => expectSuccess(`sqlite3 ${db}`, r).trim());
}

describe('replication: 1 primary + 2 replicas', { skip }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster(2);
  });
  after(async () => {
    await cluster?.close();
  });

  for (const mode of ['delete', 'truncate', 'persist', 'wal']) {
    test(`journal_mode=${mode}: replicas reach the primary's position with byte-identical databases and the same query results`, async () => {
      const db = `${mode}.db`;
      const { primary, replicas } = cluster;
      await sql(primary, db, `PRAGMA journal_mode=${mode}; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);`);
      for (let i = 0; i < 20; i++) await sql(primary, db, `INSERT INTO t(v) VALUES ('row ${i} ' || hex(randomblob(${50 + i * 40})));`);
      await sql(primary, db, `UPDATE t SET v = 'updated' WHERE id % 3 = 0; DELETE FROM t WHERE id % 7 = 0;`);
      await waitConverged(cluster, db);
      await assertSameImages(cluster, db);
      const want = await sql(primary, db, 'SELECT count(*), sum(length(v)), max(id) FROM t;');
      for (const r of replicas) {
        assert.equal(await sql(r, db, 'SELECT count(*), sum(length(v)), max(id) FROM t;'), want);
        assert.equal(await sql(r, db, 'PRAGMA integrity_check;'), 'ok');
      }
    });
  }

  test('a replica refuses writes (read-only) and names the primary in .primary; the primary has no .primary', async () => {
    const { primary, replicas } = cluster;
    const db = 'ro.db';
    await sql(primary, db, 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    await waitConverged(cluster, db);
    const r = await runSqlite3(join(replicas[0]!.mnt, db), 'INSERT INTO t VALUES (2);');
    assert.notEqual(r.status, 0, 'a write on a replica must fail');
    assert.match(r.stderr, /readonly|read-only|disk I\/O error/i);
    assert.equal(await readFile(join(replicas[0]!.mnt, '.primary'), 'utf8'), 'primary\n');
    await assert.rejects(access(join(primary.mnt, '.primary')));
    assert.equal(await sql(replicas[0]!, db, 'SELECT count(*) FROM t;'), '1');
  });

  for (const mode of ['delete', 'wal']) {
    test(`bank invariant (${mode}): replica readers never see a wrong total, a failed check, SQLITE_CORRUPT or a locking error`, async () => {
      const { primary, replicas } = cluster;
      const db = `bank-${mode}.db`;
      const accounts = 50;
      expectSuccess('bank init', await runPython('bank.py', ['init', join(primary.mnt, db), mode, String(accounts)]));
      await waitConverged(cluster, db);
      const readers = replicas.flatMap((r) => [0, 1].map(() => runPython('bank.py', ['check', join(r.mnt, db), '6', String(accounts * 1000)], { timeoutMs: 120_000 })));
      const writer = runPython('bank.py', ['transfer', join(primary.mnt, db), '400', '7'], { timeoutMs: 120_000 });
      const written = JSON.parse(expectSuccess('bank transfer', await writer)) as { committed: number };
      assert.equal(written.committed, 400);
      for (const [i, p] of readers.entries()) {
        const result = JSON.parse(expectSuccess(`bank check ${i}`, await p)) as { reads: number; violations: string[]; errors: string[] };
        assert.deepEqual(result.violations, [], `reader ${i}: invariant violated`);
        assert.deepEqual(result.errors, [], `reader ${i}: errors`);
        assert.ok(result.reads > 0, `reader ${i} read nothing`);
      }
      await waitConverged(cluster, db);
      await assertSameImages(cluster, db);
    });
  }

  test('an application that keeps trying to write on a replica gets errors and does not stall replication (WAL)', async () => {
    const { primary, replicas } = cluster;
    const db = 'rw.db';
    await sql(primary, db, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);');
    await waitConverged(cluster, db);
    const writer = runPython('replica-writer.py', [join(replicas[0]!.mnt, db), '6'], { timeoutMs: 60_000 });
    const primaryWrites = runPython('bank.py', ['init', join(primary.mnt, 'rw-bank.db'), 'wal', '10']).then(() =>
      runPython('bank.py', ['transfer', join(primary.mnt, 'rw-bank.db'), '300', '5'], { timeoutMs: 60_000 }),
    );
    for (let i = 0; i < 30; i++) await sql(primary, db, 'INSERT INTO t(v) VALUES (randomblob(200));');
    expectSuccess('primary writes', await primaryWrites);
    const counts = JSON.parse(expectSuccess('replica writer', await writer)) as Record<string, number>;
    assert.equal(counts.ok ?? 0, 0, 'no write succeeds on a replica');
    assert.equal(counts['locking protocol'] ?? 0, 0, `a replica's pending apply must not starve a writer holding its locks into SQLITE_PROTOCOL: ${JSON.stringify(counts)}`);
    await waitConverged(cluster, db);
    await waitConverged(cluster, 'rw-bank.db');
    await assertSameImages(cluster, db);
  });

  test('a replica killed (SIGKILL) mid-stream and restarted catches up from its own position', async () => {
    const { primary, replicas } = cluster;
    const db = 'kill.db';
    await sql(primary, db, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);');
    const writer = runPython('bank.py', ['init', join(primary.mnt, 'kill-bank.db'), 'wal', '20']).then(() =>
      runPython('bank.py', ['transfer', join(primary.mnt, 'kill-bank.db'), '300', '3'], { timeoutMs: 120_000 }),
    );
    for (let i = 0; i < 10; i++) await sql(primary, db, `INSERT INTO t(v) VALUES (randomblob(3000));`);
    await replicas[1]!.kill();
    for (let i = 0; i < 10; i++) await sql(primary, db, `INSERT INTO t(v) VALUES (randomblob(3000));`);
    await replicas[1]!.start();
    expectSuccess('transfer', await writer);
    await waitConverged(cluster, db);
    await waitConverged(cluster, 'kill-bank.db');
    await assertSameImages(cluster, db);
    await assertSameImages(cluster, 'kill-bank.db');
    assert.equal(await sql(replicas[1]!, db, 'SELECT count(*) FROM t;'), '20');
  });

  test('the primary restarted while replicas are connected: they reconnect and follow new commits', async () => {
    const { primary } = cluster;
    const db = 'restart.db';
    await sql(primary, db, 'CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    await waitConverged(cluster, db);
    await primary.stop();
    await primary.start();
    await sql(primary, db, 'INSERT INTO t VALUES (2);');
    await waitConverged(cluster, db);
    await assertSameImages(cluster, db);
  });

  test('replicas serve /info, /events and /metrics with their position and lag; /stream and /import are refused with 503', async () => {
    const r = cluster.replicas[0]!;
    const info = (await (await fetch(`${r.httpURL}/info`)).json()) as { clusterID?: string; isPrimary: boolean; primary: { hostname: string } };
    const primaryInfo = (await (await fetch(`${cluster.primary.httpURL}/info`)).json()) as { clusterID?: string };
    assert.equal(info.isPrimary, false);
    assert.equal(info.primary.hostname, 'primary');
    assert.equal(info.clusterID, primaryInfo.clusterID, 'the replica adopts the primary cluster id');
    const metrics = await (await fetch(`${r.httpURL}/metrics`)).text();
    assert.match(metrics, /litefs_lag_seconds \S+/);
    assert.match(metrics, /litefs_db_txid\{db="restart.db"\} \d+/);
    assert.match(metrics, /litefs_is_primary 0/);
    const imp = await fetch(`${r.httpURL}/import?name=x.db`, { method: 'POST', body: 'x' });
    assert.equal(imp.status, 503);
    const lag = await readFile(join(r.mnt, '.lag'), 'utf8');
    assert.match(lag, /^[+-]\d{9}\n$/);
  });
});

describe('replication: retention and divergence', { skip }, () => {
  test('a replica down until retention removed the LTX files it needs gets a snapshot and is not quarantined', async () => {
    const cluster = await startCluster(1, { dataLines: ['  retention: 1s', '  retention-monitor-interval: 100ms'] });
    try {
      const { primary, replicas } = cluster;
      const db = 'ret.db';
      await sql(primary, db, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t(v) VALUES (randomblob(100));');
      await waitConverged(cluster, db);
      await replicas[0]!.stop();
      for (let i = 0; i < 5; i++) await sql(primary, db, `INSERT INTO t(v) VALUES (randomblob(100));`);
      await new Promise((r) => setTimeout(r, 1500));
      // Retention runs after commits: these remove the files the replica would need.
      for (let i = 0; i < 5; i++) await sql(primary, db, `INSERT INTO t(v) VALUES (randomblob(100));`);
      const ltx = await import('node:fs').then((fs) => fs.readdirSync(primary.ltxDir(db)));
      assert.ok(!ltx.includes('0000000000000002-0000000000000002.ltx'), `retention kept TXID 2: ${ltx.join(' ')}`);
      await replicas[0]!.start();
      await waitConverged(cluster, db);
      await assertSameImages(cluster, db);
      await assert.rejects(access(join(replicas[0]!.data, 'quarantine')), 'a replica that only fell behind is not quarantined');
    } finally {
      await cluster.close();
    }
  });

  test('a replica that diverged (written while it was a primary) keeps its data in quarantine and converges', async () => {
    const cluster = await startCluster(1);
    try {
      const { primary, replicas } = cluster;
      const replica = replicas[0]!;
      const db = 'div.db';
      await sql(primary, db, 'CREATE TABLE t(v TEXT); INSERT INTO t VALUES (\'primary-1\');');
      await waitConverged(cluster, db);
      // The replica becomes a primary of its own (same cluster id, another config) and writes.
      await replica.stop();
      const config = await readFile(replica.configPath, 'utf8');
      await writeFile(replica.configPath, config.replace('candidate: false', 'candidate: true'));
      await replica.start();
      await sql(replica, db, "INSERT INTO t VALUES ('diverged-1'); INSERT INTO t VALUES ('diverged-2');");
      await replica.stop();
      await sql(primary, db, "INSERT INTO t VALUES ('primary-2');");
      await writeFile(replica.configPath, config);
      await replica.start();
      await waitConverged(cluster, db);
      await assertSameImages(cluster, db);
      assert.equal(await sql(replica, db, 'SELECT group_concat(v) FROM t;'), 'primary-1,primary-2');
      // The diverged rows are kept aside, with a report.
      const { readdirSync } = await import('node:fs');
      const qdir = join(replica.data, 'quarantine', db);
      const cases = readdirSync(qdir);
      assert.equal(cases.length, 1, `one quarantine case in ${qdir}`);
      const report = JSON.parse(await readFile(join(qdir, cases[0]!, 'report.json'), 'utf8')) as Record<string, unknown>;
      assert.ok(typeof report.reason === 'string' && report.reason !== '', 'report.json says why');
      const saved = readdirSync(join(qdir, cases[0]!));
      assert.ok(saved.some((n) => n.startsWith('database')), `quarantine holds the database: ${saved.join(' ')}`);
      assert.ok((await readPos(replica, db)) !== '');
      await exportImage(replica, db);
    } finally {
      await cluster.close();
    }
  });
});
