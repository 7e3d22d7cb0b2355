import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type LiteFSDaemon, assertChain, readLTXFiles, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython } from '../helpers/sqlite-client.js';

/**
 * A database's missing `-journal` and `-wal` are answered with a negative
 * entry the kernel may keep for a second (in rollback journal mode SQLite
 * looks for both on every read transaction; test/unit/fs/lookup.test.ts
 * checks the entries). That is safe only because nothing but SQLite creates
 * them, through this mount, which replaces the kernel's negative entry. The
 * test that matters: a reader that has just been told "no journal" a few
 * hundred times still finds the hot journal a killed writer left a moment
 * later, and rolls it back.
 */
const skip = skipUnless(['root', 'fuse', 'python3-sqlite']);

const READS = 400;

interface Report {
  before: string;
  after: string;
  integrity: string[];
  journal_seen: boolean;
  writer_status: number;
}

describe('litefs mount: cached absence of -journal and -wal', { skip }, () => {
  let daemon: LiteFSDaemon;
  before(async () => {
    daemon = await startLiteFS();
  });
  after(async () => {
    await daemon?.close();
  });

  test('a reader that cached the journal as missing finds the hot journal of a killed writer and rolls it back', async () => {
    const name = 'hot.db';
    const r = await runPython('hot-journal.py', [join(daemon.mnt, name), String(READS)], { timeoutMs: 120_000 });
    let report: Report;
    try {
      report = JSON.parse(expectSuccess('hot-journal.py', r)) as Report;
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- litefs output ---\n${daemon.output().slice(-6000)}`);
    }
    assert.equal(report.writer_status, -9, 'the writer was to die by SIGKILL before its COMMIT');
    assert.ok(report.journal_seen, 'the killed writer left its journal');
    assert.equal(report.after, report.before, 'the reader rolled the hot journal back');
    assert.deepEqual(report.integrity, ['ok']);

    // The writer's spill and the reader's rollback left the database as it was; the chain still verifies.
    assertChain(name, readLTXFiles(daemon, name));
  });
});
