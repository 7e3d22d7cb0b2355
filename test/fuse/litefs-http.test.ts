import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LiteFSDaemon, assertChain, readLTXFiles, replay, startLiteFS } from '../helpers/litefs-daemon.js';
import { repoRoot } from '../helpers/paths.js';
import { skipUnless } from '../helpers/prereq.js';
import { type ChildResult, expectSuccess, runChild, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * The node HTTP API that `litefs mount` serves on http.addr (ref §9.2):
 * /info, /metrics, /events, and the export/import commands over it.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3']);
const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function litefs(args: string[]): Promise<ChildResult> {
  return runChild(process.execPath, [cli, ...args], { timeoutMs: 30_000 });
}

async function get(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const res = await fetch(url);
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

describe('litefs mount: node HTTP API', { skip }, () => {
  let daemon: LiteFSDaemon;
  let work: string;
  before(async () => {
    daemon = await startLiteFS();
    work = mkdtempSync(join(tmpdir(), 'litefs-http-'));
  });
  after(async () => {
    await daemon?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  test('GET /info describes a static primary with a persisted cluster id', async () => {
    const res = await get(`${daemon.httpURL}/info`);
    assert.equal(res.status, 200);
    const info = JSON.parse(res.body) as Record<string, unknown>;
    const clusterID = readFileSync(join(daemon.data, 'clusterid'), 'utf8').trim();
    assert.match(clusterID, /^LFSC[0-9A-F]{16}$/);
    assert.deepEqual(Object.keys(info), ['clusterID', 'isPrimary', 'candidate', 'path', 'primary']);
    assert.equal(info.clusterID, clusterID);
    assert.equal(info.isPrimary, true);
    assert.equal(info.candidate, true);
    assert.equal(info.path, daemon.data);
    assert.equal(res.headers['litefs-cluster-id'], clusterID);
    assert.match(String(res.headers['litefs-id']), /^[0-9A-F]{16}$/);
  });

  test('GET /events starts with init and shows a tx after a sqlite3 commit; /metrics has its txid', async () => {
    const lines: string[] = [];
    const ac = new AbortController();
    const gotTx = new Promise<void>((resolve, reject) => {
      const req = request(`${daemon.httpURL}/events`, { signal: ac.signal }, (res) => {
        let pending = '';
        res.on('data', (c: Buffer) => {
          pending += c.toString('utf8');
          const parts = pending.split('\n');
          pending = parts.pop() ?? '';
          lines.push(...parts);
          if (lines.some((l) => l.includes('"type":"tx"') && l.includes('"db":"ev.db"'))) resolve();
        });
        res.on('error', () => {});
      });
      req.on('error', (err) => (ac.signal.aborted ? undefined : reject(err)));
      req.end();
    });
    // Let the subscription register before committing.
    await new Promise((r) => setTimeout(r, 300));
    expectSuccess('sqlite3', await runSqlite3(join(daemon.mnt, 'ev.db'), 'CREATE TABLE t(x);\n'));
    await Promise.race([gotTx, new Promise((_, rej) => setTimeout(() => rej(new Error(`no tx event; got ${lines.join('\n')}`)), 10_000))]);
    ac.abort();
    assert.deepEqual(JSON.parse(lines[0]!), { type: 'init', data: { isPrimary: true, hostname: JSON.parse(lines[0]!).data.hostname } });
    const tx = JSON.parse(lines.find((l) => l.includes('"type":"tx"'))!) as { db: string; data: Record<string, unknown> };
    assert.equal(tx.db, 'ev.db');
    assert.equal(tx.data.txID, '0000000000000001');
    assert.equal(tx.data.pageSize, 4096);
    assert.equal(tx.data.commit, 2);
    const pos = readFileSync(join(daemon.mnt, 'ev.db-pos'), 'utf8');
    assert.equal(`${tx.data.txID}/${tx.data.postApplyChecksum}\n`, pos);

    const metrics = await get(`${daemon.httpURL}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^litefs_db_txid\{db="ev\.db"\} 1$/m);
    assert.match(metrics.body, /^litefs_is_primary 1$/m);
    assert.match(metrics.body, /^litefs_db_commit_count\{db="ev\.db"\} 1$/m);
    assert.match(metrics.body, /^process_cpu_seconds_total /m);
  });

  test('with nothing listening, /metrics still reaches the last commit of a burst (commits held back for a window are sent)', async () => {
    const inserts = Array.from({ length: 60 }, (_, i) => `INSERT INTO t VALUES (${i});`).join('\n');
    expectSuccess('sqlite3', await runSqlite3(join(daemon.mnt, 'win.db'), `PRAGMA journal_mode=WAL;\nCREATE TABLE t(x);\n${inserts}\n`));
    const txid = Number.parseInt(readFileSync(join(daemon.mnt, 'win.db-pos'), 'utf8').split('/')[0]!, 16);
    assert.ok(txid >= 61, `position ${txid}`);
    const want = [`litefs_db_txid{db="win.db"} ${txid}`, `litefs_db_commit_count{db="win.db"} ${txid}`];
    let lines: string[] = [];
    for (let attempt = 0; attempt < 100; attempt++) {
      lines = (await get(`${daemon.httpURL}/metrics`)).body.split('\n').filter((l) => l.includes('db="win.db"'));
      if (want.every((w) => lines.includes(w))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`after 10 s /metrics still shows ${JSON.stringify(lines)}; want ${JSON.stringify(want)}`);
  });

  test('litefs export writes a byte-identical copy of the database (rollback and WAL)', async () => {
    for (const mode of ['DELETE', 'WAL']) {
      const name = `exp-${mode.toLowerCase()}.db`;
      const path = join(daemon.mnt, name);
      const rows = Array.from({ length: 200 }, (_, i) => `INSERT INTO t VALUES (${i}, randomblob(300));`).join('\n');
      expectSuccess('fill', await runSqlite3(path, `PRAGMA journal_mode=${mode};\nCREATE TABLE t(x, y);\n${rows}\n`));
      const out = join(work, name);
      writeFileSync(`${out}-journal`, 'stale');
      expectSuccess('litefs export', await litefs(['export', '-url', daemon.httpURL, '-name', name, out]));
      assert.equal(existsSync(`${out}-journal`), false, 'stale journal removed');
      assert.equal(existsSync(`${out}.tmp`), false);
      // The same database, checkpointed, read through the mount.
      expectSuccess('checkpoint', await runSqlite3(path, 'PRAGMA wal_checkpoint(TRUNCATE);\n'));
      const viaMount = readFileSync(path);
      const exported = readFileSync(out);
      assert.equal(exported.length, viaMount.length, `${mode}: size`);
      assert.ok(exported.equals(viaMount), `${mode}: exported image differs from the database`);
      assert.equal(expectSuccess('read copy', await runSqlite3(out, 'SELECT count(*) FROM t;\n')).trim(), '200');
    }
  });

  test('litefs export of an unknown database fails with database not found', async () => {
    const r = await litefs(['export', '-url', daemon.httpURL, '-name', 'nope.db', join(work, 'nope.db')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /database not found/);
  });

  test('import of a non-SQLite body is refused with 400 and nothing changes', async () => {
    const bogus = join(work, 'bogus.db');
    writeFileSync(bogus, Buffer.alloc(8192, 7));
    const before = readdirSync(daemon.mnt).sort();
    const r = await litefs(['import', '-url', daemon.httpURL, '-name', 'bogus.db', bogus]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /invalid sqlite database/);
    assert.deepEqual(readdirSync(daemon.mnt).sort(), before);
    assert.equal(existsSync(join(daemon.data, 'dbs', 'bogus.db')), false);
  });

  test('litefs import of a valid database creates one LTX, and sqlite3 reads it through the mount', async () => {
    const src = join(work, 'src.db');
    const rows = Array.from({ length: 100 }, (_, i) => `INSERT INTO a VALUES (${i}, randomblob(500));`).join('\n');
    expectSuccess('make source', await runSqlite3(src, `CREATE TABLE a(b, c);\n${rows}\n`));
    expectSuccess('litefs import', await litefs(['import', '-url', daemon.httpURL, '-name', 'imp.db', src]));
    let files = readLTXFiles(daemon, 'imp.db');
    assert.equal(files.length, 1);
    const source = readFileSync(src);
    assert.equal(files[0]!.header.commit * 4096, source.length);
    const viaMount = join(daemon.mnt, 'imp.db');
    assert.equal(expectSuccess('read', await runSqlite3(viaMount, 'SELECT count(*), sum(b) FROM a;\n')).trim(), '100|4950');
    // Page 1 differs only in the change counter and schema cookie LiteFS zeroes.
    const image = readFileSync(viaMount);
    const expected = Buffer.from(source);
    expected.fill(0, 24, 28);
    expected.fill(0, 40, 44);
    assert.ok(image.equals(expected), 'database differs from the imported file');
    assert.ok(replay(files).equals(image), 'LTX replay differs from the database');

    // A second import over it is the next transaction; the database keeps working.
    const src2 = join(work, 'src2.db');
    expectSuccess('make source 2', await runSqlite3(src2, 'CREATE TABLE z(y);\nINSERT INTO z VALUES (7);\n'));
    expectSuccess('litefs import 2', await litefs(['import', '-url', daemon.httpURL, '-name', 'imp.db', src2]));
    files = readLTXFiles(daemon, 'imp.db');
    assert.equal(files.length, 2);
    assertChain('imp.db', files);
    assert.equal(expectSuccess('read 2', await runSqlite3(viaMount, 'SELECT y FROM z;\nINSERT INTO z VALUES (8);\nSELECT count(*) FROM z;\n')).trim(), '7\n2');
    assert.equal(readLTXFiles(daemon, 'imp.db').length, 3);
  });

  test('replication endpoints answer as a node that serves no replicas', async () => {
    const stream = await fetch(`${daemon.httpURL}/stream`, { method: 'POST' });
    assert.equal(stream.status, 426); // HTTP/1.1: LiteFS requires HTTP/2 first
    const promote = await fetch(`${daemon.httpURL}/promote`, { method: 'POST' });
    assert.equal(promote.status, 200);
    const handoff = await fetch(`${daemon.httpURL}/handoff?nodeID=0000000000000001`, { method: 'POST' });
    assert.equal(handoff.status, 500);
  });
});

