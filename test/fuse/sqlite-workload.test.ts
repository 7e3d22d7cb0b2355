import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import { assertSameTranscript, targetPrereqs, useTargets } from '../helpers/fs-ops.js';
import { expectSuccess, program, runPython, runSqlite3 } from '../helpers/sqlite-client.js';
import type { PassthroughOptions, Target } from '../helpers/mount.js';

const MODES = ['DELETE', 'TRUNCATE', 'PERSIST', 'WAL'] as const;
type Mode = (typeof MODES)[number];

const skip = skipUnless(['sqlite3', 'python3-sqlite', ...targetPrereqs()]);

async function cliWorkload(target: Target, mode: Mode): Promise<string> {
  const dir = join(target.dir, `cli-${mode}`);
  mkdirSync(dir);
  const sql = `PRAGMA journal_mode=${mode};\n` + readFileSync(program('workload.sql'), 'utf8');
  const out = expectSuccess(`sqlite3 ${mode} on ${target.kind}`, await runSqlite3(join(dir, 'test.db'), sql));
  return out + (await check(target, join(dir, 'test.db')));
}

async function pythonWorkload(target: Target, mode: Mode): Promise<string> {
  const dir = join(target.dir, `py-${mode}`);
  mkdirSync(dir);
  const db = join(dir, 'test.db');
  const out = expectSuccess(`sqlite-workload.py ${mode} on ${target.kind}`, await runPython('sqlite-workload.py', [db, mode]));
  return out + (await check(target, db));
}

/** A second process re-opens the database: integrity and a digest of every table. */
async function check(target: Target, db: string): Promise<string> {
  const out = expectSuccess(`sqlite-check.py on ${target.kind}`, await runPython('sqlite-check.py', [db]));
  assert.match(out, /^integrity\|ok$/m, `${db} on ${target.kind}: integrity_check`);
  return out;
}

function workloadSuite(title: string, options: PassthroughOptions): void {
  describe(title, { skip }, () => {
    const targets = useTargets(options);

    for (const mode of MODES) {
      test(`sqlite3 CLI, journal_mode=${mode}: same query results, integrity ok`, async () => {
        const [reference, ...others] = targets();
        const refOut = await cliWorkload(reference, mode);
        assert.match(refOut, new RegExp(`^${mode.toLowerCase()}$`, 'm'), 'journal mode took effect');
        assert.match(refOut, /^ok$/m, 'integrity_check in the workload itself');
        for (const t of others) {
          const text = await cliWorkload(t, mode);
          assertSameTranscript(`sqlite3 CLI ${mode}`, { kind: reference.kind, text: refOut }, { kind: t.kind, text });
        }
      });

      test(`python3 sqlite3, journal_mode=${mode}: same query results, integrity ok`, async () => {
        const [reference, ...others] = targets();
        const refOut = await pythonWorkload(reference, mode);
        assert.match(refOut, new RegExp(`^mode\\|${mode.toLowerCase()}$`, 'm'), 'journal mode took effect');
        assert.match(refOut, /^integrity\|ok$/m);
        for (const t of others) {
          const text = await pythonWorkload(t, mode);
          assertSameTranscript(`python3 sqlite3 ${mode}`, { kind: reference.kind, text: refOut }, { kind: t.kind, text });
        }
      });
    }
  });
}

workloadSuite('SQLite clients on the passthrough mount give the same results as on a plain folder', {});
// Kernel attribute/entry caching and keep_cache: page-cache reuse across
// opens must never show SQLite stale pages (it re-reads after every lock).
workloadSuite('SQLite clients on a passthrough mount with kernel caching give the same results', {
  attrTimeout: 5,
  entryTimeout: 5,
  negativeTimeout: 5,
  keepCache: true,
});
