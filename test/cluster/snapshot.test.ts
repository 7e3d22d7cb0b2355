import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSameImages, exportImage, readPos, replicaOptions, waitConverged, waitFor } from '../helpers/cluster.js';
import { type LiteFSDaemon, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython, runSqlite3 } from '../helpers/sqlite-client.js';

/**
 * Snapshots and exports of a database that a writer keeps changing. A new
 * replica always starts from a snapshot (ref §9.5), and a busy primary must
 * still be able to give one: the image is read under the database's read
 * lock set (ref §5.6), not by hoping that no commit lands during the copy.
 * The database is large enough (about 24 MiB) that a copy takes many commits'
 * time. Every SQLite client runs in a child process.
 */
const skip = skipUnless(['root', 'fuse', 'sqlite3', 'python3-sqlite']);

const ROWS = 8000;
const ROW_BYTES = 4000;

function sql(node: { mnt: string }, db: string, text: string): Promise<string> {
  return runSqlite3(join(node.mnt, db), text, { timeoutMs: 60_000 }).then((r) => expectSuccess(`sqlite3 ${db}`, r).trim());
}

function txidOf(pos: string): bigint {
  return pos === '' ? 0n : BigInt('0x' + pos.split('/')[0]!);
}

/** Starts ack-writer.py on `db`; it runs until `stop()` (or 5 minutes), and resolves with the acknowledged ids. */
function startWriter(node: LiteFSDaemon, db: string, work: string): { stop: () => Promise<number[]> } {
  const stopFile = join(work, `stop-${db}`);
  const running = runPython('ack-writer.py', [join(node.mnt, db), '300', stopFile], { timeoutMs: 400_000 });
  return {
    async stop() {
      writeFileSync(stopFile, '');
      const out = expectSuccess('ack-writer.py', await running);
      return out.split('\n').filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
    },
  };
}

describe('snapshots and exports under a steady writer', { skip }, () => {
  let primary: LiteFSDaemon;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'litefs-snapshot-'));
    primary = await startLiteFS({ strictVerify: false });
  });
  after(async () => {
    await primary?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  for (const mode of ['wal', 'delete']) {
    test(`journal_mode=${mode}: a new replica gets its snapshot while the primary commits, then follows; exports stay consistent`, async () => {
      const db = `busy-${mode}.db`;
      await sql(
        primary,
        db,
        `PRAGMA journal_mode=${mode}; CREATE TABLE big(id INTEGER PRIMARY KEY, v BLOB); CREATE TABLE t(id INTEGER PRIMARY KEY);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${ROWS}) INSERT INTO big(v) SELECT randomblob(${ROW_BYTES}) FROM c;`,
      );
      const writer = startWriter(primary, db, work);
      let replica: LiteFSDaemon | undefined;
      let acked: number[] = [];
      try {
        const base = txidOf(await readPos(primary, db));
        await waitFor(() => `${db}: the writer to commit`, async () => txidOf(await readPos(primary, db)) >= base + 20n, 30_000, [primary]);

        // An export taken while the writer runs is a whole, consistent database.
        const image = await exportImage(primary, db);
        const copy = join(work, `export-${db}`);
        writeFileSync(copy, image);
        const check = await runSqlite3(copy, 'PRAGMA integrity_check; SELECT count(*) FROM big;', { timeoutMs: 60_000 });
        assert.equal(expectSuccess('sqlite3 on the export', check).trim(), `ok\n${ROWS}`);

        replica = await startLiteFS(replicaOptions(primary));
        const joinedAt = txidOf(await readPos(primary, db));
        await waitFor(
          () => `${db}: the new replica to reach TXID ${joinedAt} while the writer runs`,
          async () => txidOf(await readPos(replica!, db)) >= joinedAt,
          90_000,
          [primary, replica],
        );
        acked = await writer.stop();
        assert.ok(acked.length > 0, 'the writer committed');
        const cluster = { primary, replicas: [replica], nodes: [primary, replica], close: async () => undefined };
        await waitConverged(cluster, db);
        await assertSameImages(cluster, db);
        const present = await sql(replica, db, `CREATE TEMP TABLE acked(id); INSERT INTO acked VALUES ${acked.map((i) => `(${i})`).join(',')}; SELECT count(*) FROM t JOIN acked USING (id);`);
        assert.equal(present, String(acked.length), 'every acknowledged commit is on the replica');
        assert.equal(await sql(replica, db, 'PRAGMA integrity_check;'), 'ok');
      } finally {
        await writer.stop().catch(() => undefined);
        await replica?.close();
      }
    });
  }
});
