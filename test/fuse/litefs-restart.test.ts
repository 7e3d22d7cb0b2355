import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatHex16 } from '../../src/ltx/index.js';
import { type LiteFSDaemon, assertChain, fileChecksum, readLTXFiles, replay, startLiteFS } from '../helpers/litefs-daemon.js';
import { skipUnless } from '../helpers/prereq.js';
import { expectSuccess, runPython } from '../helpers/sqlite-client.js';

/**
 * The daemon is SIGKILLed while a writer commits as fast as it can; after a
 * restart on the same data directory, recovery (hot journal rollback, last
 * LTX re-applied, committed WAL frames turned into LTX files) must leave a database
 * that passes integrity_check, agrees with its LTX chain, and holds the
 * commits SQLite acknowledged.
 */
const skip = skipUnless(['root', 'fuse', 'python3-sqlite']);

interface WriterReport {
  committed: number;
  errors: string[];
}
interface CheckReport {
  integrity: string[];
  count: number;
  max_id: number;
  counter: number;
}

describe('litefs mount: SIGKILL of the daemon during writes, then restart', { skip }, () => {
  let daemon: LiteFSDaemon;
  before(async () => {
    daemon = await startLiteFS();
  });
  after(async () => {
    await daemon?.close();
  });

  for (const mode of ['DELETE', 'WAL'] as const) {
    test(`journal_mode=${mode}: recovery keeps acknowledged commits, LTX chain and database agree`, async (t) => {
      const name = `kill-${mode.toLowerCase()}.db`;
      const db = join(daemon.mnt, name);
      expectSuccess('init', await runPython('sqlite-rw.py', ['init', db, mode]));
      const initCommits = mode === 'WAL' ? 4 : 3;
      const writer = runPython('sqlite-rw.py', ['writer', db, '3'], { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 1200));
      await daemon.kill();
      // The writer sees I/O errors from the dead mount and gives up; what it
      // counted as committed is what SQLite acknowledged.
      const written = await writer;
      // Restart first: a failure below must not leave the next test a dead mount.
      await daemon.start();
      const report = JSON.parse(expectSuccess('writer', written)) as WriterReport;

      const check = JSON.parse(expectSuccess('check', await runPython('sqlite-rw.py', ['check', db]))) as CheckReport;
      t.diagnostic(`acknowledged ${report.committed}, rows after restart ${check.count}`);
      for (const line of daemon.output().split('\n')) if (line.includes(name)) t.diagnostic(`daemon: ${line}`);
      assert.doesNotMatch(daemon.output(), /ERROR|FATAL/, 'daemon reported an error');
      assert.deepEqual(check.integrity, ['ok']);
      assert.equal(check.count, check.counter, 'rows and counter disagree');
      // In WAL mode SQLite acknowledges even when the daemon died before
      // answering its WRITE unlock (it ignores unlock errors); recovery turns
      // such committed frames into LTX files, so nothing acknowledged is lost.
      assert.ok(check.count >= report.committed, `acknowledged ${report.committed} commits, ${check.count} survived`);
      assert.ok(check.count <= report.committed + 1, `more rows (${check.count}) than commits attempted`);

      const files = readLTXFiles(daemon, name);
      assert.equal(files.length, initCommits + check.count, `${name}: LTX files vs rows`);
      assertChain(name, files);
      const last = files.at(-1)!;
      assert.equal(readFileSync(join(daemon.mnt, `${name}-pos`), 'utf8'), `${formatHex16(last.header.maxTXID)}/${formatHex16(last.postApply)}\n`);
      const image = readFileSync(daemon.databasePath(name));
      assert.equal(formatHex16(fileChecksum(image, last.header.pageSize)), formatHex16(last.postApply), `${name}: database checksum`);
      assert.ok(replay(files).equals(image), `${name}: replay differs from the database file`);
    });
  }
});
