import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import { targetPrereqs, useTargets } from '../helpers/fs-ops.js';
import { expectSuccess, runPython } from '../helpers/sqlite-client.js';
import type { Target } from '../helpers/mount.js';

/**
 * 1 writer and 4 readers, each its own process (test/programs/sqlite-rw.py),
 * on one database. The plain folder run is short: it only validates the
 * program; the mount gets the full 10 seconds.
 */
const READERS = 4;
const SECONDS: Record<Target['kind'], number> = { plain: 3, mount: 10 };

interface WriterReport {
  committed: number;
  busy: number;
  errors: string[];
}
interface ReaderReport {
  reads: number;
  busy: number;
  errors: string[];
  last: number;
}
interface CheckReport {
  integrity: string[];
  count: number;
  max_id: number;
  counter: number;
}

const skip = skipUnless(['python3-sqlite', ...targetPrereqs()]);

async function rw(target: Target, mode: 'WAL' | 'DELETE'): Promise<string> {
  const where = `${mode} on ${target.kind}`;
  const dir = join(target.dir, `rw-${mode}`);
  mkdirSync(dir);
  const db = join(dir, 'rw.db');
  const init = JSON.parse(expectSuccess(`init ${where}`, await runPython('sqlite-rw.py', ['init', db, mode]))) as { journal_mode: string };
  assert.equal(init.journal_mode, mode.toLowerCase());

  const secs = String(SECONDS[target.kind]);
  const limit = { timeoutMs: (SECONDS[target.kind] + 60) * 1000 };
  const [writerRes, ...readerRes] = await Promise.all([
    runPython('sqlite-rw.py', ['writer', db, secs], limit),
    ...Array.from({ length: READERS }, () => runPython('sqlite-rw.py', ['reader', db, secs], limit)),
  ]);
  const writer = JSON.parse(expectSuccess(`writer ${where}`, writerRes)) as WriterReport;
  const readers = readerRes.map((r, i) => JSON.parse(expectSuccess(`reader ${i} ${where}`, r)) as ReaderReport);
  const check = JSON.parse(expectSuccess(`check ${where}`, await runPython('sqlite-rw.py', ['check', db]))) as CheckReport;

  const summary =
    `${where}: writer committed ${writer.committed} (busy retries ${writer.busy}); ` +
    readers.map((r, i) => `reader ${i}: ${r.reads} reads, ${r.busy} busy`).join('; ');
  assert.deepEqual(writer.errors, [], `writer errors, ${summary}`);
  readers.forEach((r, i) => assert.deepEqual(r.errors, [], `reader ${i} errors, ${summary}`));
  assert.ok(writer.committed >= 20, `writer made too little progress: ${summary}`);
  // POSIX locks are not fair: in DELETE mode a writer that commits about
  // as fast as the disk syncs can starve readers for seconds through
  // SQLite's sleeping busy handler, on a plain folder too (seen there: 11
  // reads by 4 readers in 3 s). Slow is allowed; stuck is not: on the mount,
  // which runs 10 s, every reader completes a read. The short plain run only
  // validates the program, so its readers' progress is not judged.
  if (target.kind === 'mount') readers.forEach((r, i) => assert.ok(r.reads >= 1, `reader ${i} never completed a read: ${summary}`));
  assert.deepEqual(check.integrity, ['ok'], `integrity_check, ${summary}`);
  assert.equal(check.count, writer.committed, `rows in the table vs commits the writer saw succeed, ${summary}`);
  assert.equal(check.counter, writer.committed, `counter row, ${summary}`);
  assert.equal(check.max_id, writer.committed, `max(id), ${summary}`);
  return summary;
}

describe('concurrent SQLite readers and writer lose nothing and see consistent snapshots', { skip }, () => {
  const targets = useTargets();

  for (const mode of ['WAL', 'DELETE'] as const) {
    test(`journal_mode=${mode}: 1 writer + ${READERS} readers, 0 errors besides SQLITE_BUSY, final count = commits, integrity ok`, async (t) => {
      for (const target of targets()) t.diagnostic(await rw(target, mode));
    });
  }
});
