import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Cluster, assertSameImages, readPos, startCluster, startRelayedPair, waitConverged, waitFor } from '../helpers/cluster.js';
import { HaltSession } from '../helpers/halt-session.js';
import { type LTXFile, type LiteFSDaemon, assertChain, assertContinuous, readLTXFiles } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { type ChildResult, expectSuccess, runChild, runPython, runSqlite3 } from '../helpers/sqlite-client.js';
import { repoRoot } from '../helpers/paths.js';
import { TcpRelay } from '../helpers/tcp-relay.js';

/**
 * Write forwarding under the HALT lock (ref §8): a program on a replica takes
 * the write lock on byte 72 of `<db>-lock` (F_OFD_SETLKW, as litefs-go's
 * WithHalt and `litefs run -with-halt-lock-on`), writes through its local
 * mount, and unlocks. Every transaction must reach the primary before SQLite
 * on the replica is told it committed, keep one LTX chain on both nodes, and
 * come back to the replica without being applied twice.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

interface HaltResult {
  readonly ok: number;
  readonly errors: Record<string, number>;
  readonly halt_errors: Record<string, number>;
}

async function haltWrite(dbPath: string, mode: string, rounds: number, rows: number, tag: string): Promise<HaltResult> {
  return JSON.parse(expectSuccess('halt-writer', await runPython('halt-writer.py', [dbPath, mode, String(rounds), String(rows), tag]))) as HaltResult;
}

/** The primary has one LTX file per transaction; a replica's history may start with a snapshot. Returns the files. */
function assertHistory(cluster: Cluster, node: LiteFSDaemon, db: string): LTXFile[] {
  const files = readLTXFiles(node, db);
  (node === cluster.primary ? assertChain : assertContinuous)(db, files);
  return files;
}

/** After the primary's restart: it commits a row of its own, and the replica converges with `rows` rows, one history, the same image. */
async function assertGoesOnAfterRestart(cluster: Cluster, db: string, rows: number): Promise<void> {
  expectSuccess('primary write after the restart', await runSqlite3(join(cluster.primary.mnt, db), "INSERT INTO t(v) VALUES ('after');"));
  await waitConverged(cluster, db);
  assert.equal(await count(join(cluster.replicas[0]!.mnt, db)), rows);
  assertHistory(cluster, cluster.primary, db);
  await assertSameImages(cluster, db);
}

async function count(dbPath: string, where = '1'): Promise<number> {
  return Number(expectSuccess('count', await runSqlite3(dbPath, `SELECT count(*) FROM t WHERE ${where};`)).trim());
}

describe('HALT lock: writes on a replica are forwarded to the primary', { skip }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster(1);
  });
  after(async () => {
    await cluster?.close();
  });

  for (const mode of ['delete', 'truncate', 'persist', 'wal'] as const) {
    test(`journal_mode=${mode}: rows written on the replica are on the primary, one LTX chain, same images`, async () => {
      const db = `halt-${mode}.db`;
      const onPrimary = join(cluster.primary.mnt, db);
      const onReplica = join(cluster.replicas[0]!.mnt, db);
      expectSuccess('create', await runSqlite3(onPrimary, `PRAGMA journal_mode=${mode}; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);`));
      await waitConverged(cluster, db);

      const result = await haltWrite(onReplica, mode, 3, 5, 'replica');
      assert.deepEqual(result, { ok: 15, errors: {}, halt_errors: {} });
      // The primary applied each one before the replica's SQLite saw it committed.
      assert.equal(await count(onPrimary, "v LIKE 'replica %'"), 15);
      expectSuccess('primary write after the HALT lock', await runSqlite3(onPrimary, "INSERT INTO t(v) VALUES ('primary after');"));
      const pos = await waitConverged(cluster, db);
      assert.equal(await count(onReplica), 16);
      for (const node of cluster.nodes) {
        const files = assertHistory(cluster, node, db);
        assert.equal(`${files.at(-1)!.header.maxTXID.toString(16).padStart(16, '0')}`, pos.split('/')[0]);
        const ok = expectSuccess('integrity', await runSqlite3(join(node.mnt, db), 'PRAGMA integrity_check;'));
        assert.equal(ok.trim(), 'ok');
      }
      await assertSameImages(cluster, db);
      assert.equal(await readPos(cluster.replicas[0]!, db), pos);
    });
  }

  test('every transaction the replica acknowledged is on the primary after the primary is killed (SIGKILL) and restarted', async () => {
    const db = 'crash.db';
    const onPrimary = join(cluster.primary.mnt, db);
    expectSuccess('create', await runSqlite3(onPrimary, 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);'));
    await waitConverged(cluster, db);
    assert.deepEqual(await haltWrite(join(cluster.replicas[0]!.mnt, db), 'wal', 2, 10, 'acknowledged'), { ok: 20, errors: {}, halt_errors: {} });
    await cluster.primary.kill();
    await cluster.primary.start();
    assert.equal(await count(onPrimary, "v LIKE 'acknowledged %'"), 20);
    await assertGoesOnAfterRestart(cluster, db, 21);
  });

  test('the primary killed while the replica forwards: nothing acknowledged is lost, at most the one in flight is there unacknowledged, both converge', async () => {
    const db = 'crash-mid.db';
    const onPrimary = join(cluster.primary.mnt, db);
    expectSuccess('create', await runSqlite3(onPrimary, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);'));
    await waitConverged(cluster, db);
    // The writer goes on round after round until told to stop, so the kill lands mid-way whatever the timing.
    const stop = join(cluster.primary.base, 'stop-writing');
    const writing = runPython('halt-writer.py', [join(cluster.replicas[0]!.mnt, db), 'delete', '1000000', '5', 'mid', stop]);
    await waitFor(() => 'forwarded rows on the primary', async () => (await count(onPrimary).catch(() => 0)) >= 10, 60_000, cluster.nodes);
    await cluster.primary.kill();
    writeFileSync(stop, '');
    const result = JSON.parse(expectSuccess('halt-writer', await writing)) as HaltResult;
    await cluster.primary.start();
    const there = await count(onPrimary, "v LIKE 'mid %'");
    assert.ok(there >= 10 && there >= result.ok && there <= result.ok + 1, `${there} rows on the primary, ${result.ok} acknowledged on the replica (${JSON.stringify(result)})`);
    await assertGoesOnAfterRestart(cluster, db, there + 1);
  });

  test("the primary's readers, reading without pause, do not starve a replica's HALT lock: they wait for it, then go on", async () => {
    const db = 'busy-primary.db';
    const onPrimary = join(cluster.primary.mnt, db);
    expectSuccess('create', await runSqlite3(onPrimary, "PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, y BLOB); INSERT INTO t(v) VALUES ('first');"));
    await waitConverged(cluster, db);
    const stop = join(cluster.primary.base, 'stop-readers');
    const ready = [0, 1, 2].map((i) => join(cluster.primary.base, `reader-${i}-ready`));
    const readers = ready.map((r) => runPython('replica-reader.py', [onPrimary, stop, r]));
    try {
      await waitFor(() => 'three readers reading on the primary', () => ready.every((r) => existsSync(r)), 30_000, cluster.nodes);
      assert.deepEqual(await haltWrite(join(cluster.replicas[0]!.mnt, db), 'wal', 3, 3, 'between reads'), { ok: 9, errors: {}, halt_errors: {} });
    } finally {
      writeFileSync(stop, '');
    }
    for (const r of await Promise.all(readers)) {
      const summary = JSON.parse(expectSuccess('reader', r)) as { reads: number; errors: string[]; decreases: unknown[] };
      assert.deepEqual([summary.errors, summary.decreases], [[], []]);
      assert.ok(summary.reads > 0);
    }
    assert.equal(await count(onPrimary), 10);
  });
});

describe('litefs run -with-halt-lock-on', { skip }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster(1);
  });
  after(async () => {
    await cluster?.close();
  });

  test('a command run on the replica writes through its own mount; the rows are on the primary; a failing command passes its exit code on', async () => {
    const db = 'migrate.db';
    const onPrimary = join(cluster.primary.mnt, db);
    const replica = cluster.replicas[0]!;
    const onReplica = join(replica.mnt, db);
    expectSuccess('create', await runSqlite3(onPrimary, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);'));
    await waitConverged(cluster, db);
    const run = (sql: string): Promise<ChildResult> =>
      runChild(process.execPath, [CLI, 'run', '-url', replica.httpURL, '-with-halt-lock-on', onReplica, '--', 'sqlite3', onReplica, sql]);
    expectSuccess('litefs run', await run("ALTER TABLE t ADD COLUMN w TEXT; INSERT INTO t(v, w) VALUES ('migrated', 'x');"));
    assert.equal(expectSuccess('rows on the primary', await runSqlite3(onPrimary, 'SELECT v, w FROM t;')), 'migrated|x\n');
    const failed = await run('INSERT INTO nope VALUES (1);');
    assert.equal(failed.status, 1, failed.stderr);
    // The lock is gone: the primary writes again, and the replica refuses writes of its own.
    expectSuccess('primary write', await runSqlite3(onPrimary, ".timeout 5000\nINSERT INTO t(v) VALUES ('primary');"));
    await waitConverged(cluster, db);
    const refused = await runSqlite3(onReplica, "INSERT INTO t(v) VALUES ('no lock');");
    assert.notEqual(refused.status, 0);
    assertHistory(cluster, cluster.primary, db);
    await assertSameImages(cluster, db);
  });

  test('a database neither node has yet is created on the replica under the lock', async () => {
    const db = 'fresh.db';
    const replica = cluster.replicas[0]!;
    const onReplica = join(replica.mnt, db);
    const r = await runChild(process.execPath, [CLI, 'run', '-url', replica.httpURL, '-with-halt-lock-on', onReplica, '--', 'sqlite3', onReplica, "CREATE TABLE t(v); INSERT INTO t VALUES ('born on the replica');"]);
    expectSuccess('litefs run', r);
    assert.equal(expectSuccess('on the primary', await runSqlite3(join(cluster.primary.mnt, db), 'SELECT v FROM t;')), 'born on the replica\n');
    await waitConverged(cluster, db);
    await assertSameImages(cluster, db);
  });
});

describe('HALT lock: the lock file, blocking the primary, refused commits', { skip }, () => {
  let cluster: Cluster;
  let relay: TcpRelay;
  const sessions: HaltSession[] = [];

  /** A HALT session on `node`'s mount, closed after the test. */
  function session(node: LiteFSDaemon, db: string): HaltSession {
    const s = new HaltSession(join(node.mnt, db));
    sessions.push(s);
    return s;
  }

  before(async () => {
    relay = await TcpRelay.start();
    // The replica reaches the primary (stream, /halt, /tx) only through the relay.
    cluster = await startRelayedPair(relay);
  });
  afterEach(async () => {
    relay.heal();
    for (const s of sessions.splice(0)) await s.close();
  });
  after(async () => {
    await cluster?.close();
    await relay?.close();
  });

  async function createTable(db: string, mode: string): Promise<void> {
    expectSuccess('create', await runSqlite3(join(cluster.primary.mnt, db), `PRAGMA journal_mode=${mode}; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('first');`));
    await waitConverged(cluster, db);
  }

  test('<db>-lock exists but is not listed, is empty and read-only; only a blocking write lock on byte 72 is allowed', async () => {
    const db = 'lockfile.db';
    await createTable(db, 'delete');
    const replica = cluster.replicas[0]!;
    assert.ok(!readdirSync(replica.mnt).includes(`${db}-lock`), 'not listed');
    const st = statSync(join(replica.mnt, `${db}-lock`));
    assert.deepEqual([st.size, st.mode & 0o777, st.isFile()], [0, 0o444, true]);
    assert.equal(readFileSync(join(replica.mnt, `${db}-lock`)).length, 0);
    assert.throws(() => statSync(join(replica.mnt, 'unknown.db-lock')), { code: 'ENOENT' });

    const a = session(replica, db);
    assert.deepEqual(await a.ask('open'), { ok: true });
    assert.deepEqual(await a.ask('range 0 1'), { errno: 'EINVAL' });
    assert.deepEqual(await a.ask('range 72 2'), { errno: 'EINVAL' });
    assert.deepEqual(await a.ask('try'), { errno: 'ENOSYS' }, 'a non-blocking lock');
    assert.deepEqual(await a.ask('read'), { errno: 'ENOSYS' }, 'a read lock');
    assert.deepEqual(await a.ask('getlk'), { type: 'F_UNLCK' });
    assert.deepEqual(await a.ask('halt'), { ok: true });
    assert.deepEqual(await a.ask('getlk'), { type: 'F_WRLCK' });
    const b = session(replica, db);
    assert.deepEqual(await b.ask('open'), { ok: true });
    assert.deepEqual(await b.ask('halt'), { errno: 'EAGAIN' }, "another handle while the lock is held");
    assert.deepEqual(await a.ask('unhalt'), { ok: true });
    assert.deepEqual(await a.ask('getlk'), { type: 'F_UNLCK' });
    assert.deepEqual(await b.ask('halt'), { ok: true }, 'free again after the unlock');
    assert.deepEqual(await b.ask('close'), { ok: true });
    assert.deepEqual(await a.ask('getlk'), { type: 'F_UNLCK' }, 'closing the handle ended the lock');

    // On the primary the lock is granted at once and changes nothing.
    const p = session(cluster.primary, db);
    assert.deepEqual(await p.ask('open'), { ok: true });
    assert.deepEqual(await p.ask('halt'), { ok: true });
    expectSuccess('primary write', await runSqlite3(join(cluster.primary.mnt, db), "INSERT INTO t(v) VALUES ('primary');"));
  });

  test("while a replica holds the HALT lock the primary's own readers and writers wait; after the release they go on", async () => {
    // Rollback mode: SQLite's busy handler answers "database is locked". (A
    // WAL reader retries its read locks for ~10 s, then "locking protocol".)
    const db = 'blocks.db';
    await createTable(db, 'delete');
    const onPrimary = join(cluster.primary.mnt, db);
    const r = session(cluster.replicas[0]!, db);
    assert.deepEqual(await r.ask('open'), { ok: true });
    assert.deepEqual(await r.ask('halt'), { ok: true });
    for (const sql of ["INSERT INTO t(v) VALUES ('primary');", 'SELECT count(*) FROM t;']) {
      const blocked = await runSqlite3(onPrimary, `.timeout 200\n${sql}`);
      assert.notEqual(blocked.status, 0, `${sql} ran on the primary during the HALT lock: ${blocked.stdout}`);
      assert.match(blocked.stderr, /database is locked/);
    }
    assert.deepEqual(await r.ask("sql delete INSERT INTO t(v) VALUES ('replica')"), { ok: true, rows: [] });
    assert.deepEqual(await r.ask('unhalt'), { ok: true });
    expectSuccess('primary write after the release', await runSqlite3(onPrimary, ".timeout 5000\nINSERT INTO t(v) VALUES ('primary');"));
    await waitConverged(cluster, db);
    assert.equal(await count(join(cluster.replicas[0]!.mnt, db)), 3);
    await assertSameImages(cluster, db);
  });

  test('a program killed while it holds the lock releases it (the kernel closes its lock file); the primary writes again', async () => {
    const db = 'killed.db';
    await createTable(db, 'delete');
    const r = session(cluster.replicas[0]!, db);
    assert.deepEqual(await r.ask('open'), { ok: true });
    assert.deepEqual(await r.ask('halt'), { ok: true });
    assert.deepEqual(await r.ask("sql delete INSERT INTO t(v) VALUES ('replica')"), { ok: true, rows: [] });
    await r.kill();
    expectSuccess('primary write', await runSqlite3(join(cluster.primary.mnt, db), ".timeout 10000\nINSERT INTO t(v) VALUES ('primary');"));
    await waitConverged(cluster, db);
    assert.equal(await count(join(cluster.replicas[0]!.mnt, db)), 3);
  });

  test("the replica killed while it holds the lock: the primary releases it once the replica's stream is gone 5 s, not after the 30 s TTL", async () => {
    const db = 'holder-gone.db';
    await createTable(db, 'delete');
    const replica = cluster.replicas[0]!;
    const r = session(replica, db);
    assert.deepEqual(await r.ask('open'), { ok: true });
    assert.deepEqual(await r.ask('halt'), { ok: true });
    await replica.kill();
    await r.kill();
    await waitFor(() => 'the primary to release the dead replica\'s lock', () => /holder-gone\.db: HALT lock \d+ released: its replica has not streamed/.test(cluster.primary.output()), 25_000, cluster.nodes);
    expectSuccess('primary write', await runSqlite3(join(cluster.primary.mnt, db), ".timeout 5000\nINSERT INTO t(v) VALUES ('primary');"));
    await replica.start();
    await waitConverged(cluster, db);
    assert.equal(await count(join(replica.mnt, db)), 2);
  });

  test('the replica killed while a WAL commit waits for the primary: after its restart nothing is counted twice or quarantined, both converge', async () => {
    const db = 'replica-crash.db';
    await createTable(db, 'wal');
    const replica = cluster.replicas[0]!;
    const r = session(replica, db);
    assert.deepEqual(await r.ask('open'), { ok: true });
    assert.deepEqual(await r.ask('halt'), { ok: true });
    // A stopped primary takes the forwarded file and never answers: the commit waits.
    const primaryPid = cluster.primary.pid!;
    process.kill(primaryPid, 'SIGSTOP');
    try {
      const answer = r.ask("sql wal INSERT INTO t(v) VALUES ('in flight')");
      const staged = join(replica.data, 'tmp', 'halt', db);
      await waitFor(() => `a staged transaction in ${staged}`, () => existsSync(staged) && readdirSync(staged).some((n) => n.endsWith('.ltx')), 30_000, cluster.nodes);
      await replica.kill();
      assert.ok((await answer).error !== undefined, 'the writer was not told it committed');
    } finally {
      process.kill(primaryPid, 'SIGCONT');
    }
    await r.kill();
    await replica.start();
    const pos = await waitConverged(cluster, db);
    assert.ok(!existsSync(join(replica.data, 'quarantine')), 'nothing quarantined');
    const rows = expectSuccess('rows', await runSqlite3(join(replica.mnt, db), 'SELECT v FROM t ORDER BY id;'));
    // The primary may have applied the file it received (never acknowledged): then both have it.
    assert.ok(rows === 'first\n' || rows === 'first\nin flight\n', rows);
    assert.equal(await readPos(cluster.primary, db), pos);
    await assertSameImages(cluster, db);
  });

  for (const mode of ['delete', 'wal'] as const) {
    test(`journal_mode=${mode}: a transaction the primary never gets fails on the replica and leaves nothing there`, async () => {
      const db = `refused-${mode}.db`;
      await createTable(db, mode);
      const replica = cluster.replicas[0]!;
      const r = session(replica, db);
      assert.deepEqual(await r.ask('open'), { ok: true });
      assert.deepEqual(await r.ask('halt'), { ok: true });
      assert.deepEqual(await r.ask(`sql ${mode} INSERT INTO t(v) VALUES ('sent')`), { ok: true, rows: [] });
      relay.cut();
      const refused = await r.ask(`sql ${mode} INSERT INTO t(v) VALUES ('lost')`);
      assert.match(refused.error ?? '', /disk I\/O error/, JSON.stringify(refused));
      // SQLite rolled it back (in rollback mode the next reader does it, from the hot journal).
      assert.deepEqual(await r.ask(`sql ${mode} SELECT v FROM t ORDER BY id`), { ok: true, rows: [['first'], ['sent']] });
      relay.heal();
      assert.deepEqual(await r.ask('unhalt'), { ok: true });
      // The release reaches the primary (else its lock would expire in 30 s).
      expectSuccess('primary write', await runSqlite3(join(cluster.primary.mnt, db), ".timeout 20000\nINSERT INTO t(v) VALUES ('primary');"));
      await waitConverged(cluster, db);
      const rows = expectSuccess('rows', await runSqlite3(join(replica.mnt, db), 'SELECT v FROM t ORDER BY id;'));
      assert.equal(rows, 'first\nsent\nprimary\n');
      for (const node of cluster.nodes) assertHistory(cluster, node, db);
      await assertSameImages(cluster, db);
    });
  }

  test('a replica and the primary writing at the same time: every row on both, one chain (LiteFS TestFunctional_OK)', async () => {
    const db = 'both.db';
    await createTable(db, 'wal');
    const [onReplica, onPrimary] = await Promise.all([
      haltWrite(join(cluster.replicas[0]!.mnt, db), 'wal', 10, 5, 'replica'),
      // On the primary the lock is a no-op: this is a plain writer (busy timeout 5 s).
      haltWrite(join(cluster.primary.mnt, db), 'wal', 10, 5, 'primary'),
    ]);
    assert.deepEqual([onReplica, onPrimary], [
      { ok: 50, errors: {}, halt_errors: {} },
      { ok: 50, errors: {}, halt_errors: {} },
    ]);
    await waitConverged(cluster, db);
    for (const node of cluster.nodes) {
      assert.equal(await count(join(node.mnt, db)), 101, node.httpURL);
      assertHistory(cluster, node, db);
    }
    await assertSameImages(cluster, db);
  });
});
