import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type Cluster, assertSameImages, readPos, startCluster, waitConverged } from '../helpers/cluster.js';
import { assertChain, readLTXFiles } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * Write forwarding under the HALT lock (ref §8): a program on a replica takes
 * the write lock on byte 72 of `<db>-lock` (F_OFD_SETLKW, as litefs-go's
 * WithHalt and `litefs run -with-halt-lock-on`), writes through its local
 * mount, and unlocks. Every transaction must reach the primary before SQLite
 * on the replica is told it committed, keep one LTX chain on both nodes, and
 * come back to the replica without being applied twice.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);

interface HaltResult {
  readonly ok: number;
  readonly errors: Record<string, number>;
  readonly halt_errors: Record<string, number>;
}

async function haltWrite(dbPath: string, mode: string, rounds: number, rows: number, tag: string): Promise<HaltResult> {
  return JSON.parse(expectSuccess('halt-writer', await runPython('halt-writer.py', [dbPath, mode, String(rounds), String(rows), tag]))) as HaltResult;
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
        const files = readLTXFiles(node, db);
        assertChain(db, files);
        assert.equal(`${files.at(-1)!.header.maxTXID.toString(16).padStart(16, '0')}`, pos.split('/')[0]);
        const ok = expectSuccess('integrity', await runSqlite3(join(node.mnt, db), 'PRAGMA integrity_check;'));
        assert.equal(ok.trim(), 'ok');
      }
      await assertSameImages(cluster, db);
      assert.equal(await readPos(cluster.replicas[0]!, db), pos);
    });
  }
});
