/**
 * Smoke test of `litefs passthrough` as other suites drive it (a child
 * process): everyday tools and sqlite3 (rollback and WAL, with concurrent
 * writers) behave through the mount, and SIGTERM unmounts with exit 0.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import { repoRoot } from '../helpers/paths.js';
import { cleanupMount, isMounted, tempMountDirs, type TempMount } from './fuse-layer-helpers.js';

const skip = skipUnless(['root', 'fuse']);
const noSqlite = skipUnless(['sqlite3']);
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function sh(script: string, cwd: string): string {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`script failed (${r.status ?? r.signal}): ${r.stderr}\n--- script:\n${script}`);
  return r.stdout;
}

describe('litefs passthrough (child process)', { skip }, () => {
  let t: TempMount;
  let child: ChildProcess;

  before(async () => {
    t = tempMountDirs('fuse-smoke-');
    child = spawn(process.execPath, [CLI, 'passthrough', t.src, t.mnt], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "mounted" line within 20 s')), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out === `mounted ${t.mnt}\n`) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`exited ${code} before mounting`)));
    });
  });

  after(() => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (t !== undefined) cleanupMount(t);
  });

  test('ls, cat, cp, mv, mkdir, rm, ln, chmod, truncate behave', () => {
    const out = sh(
      `echo hello > mnt/a.txt
       cat mnt/a.txt
       cp mnt/a.txt mnt/b.txt && mv mnt/b.txt mnt/c.txt
       mkdir -p mnt/d/e && echo deep > mnt/d/e/f && cat mnt/d/e/f
       mv mnt/d mnt/d2 && cat mnt/d2/e/f
       ln -s a.txt mnt/link && cat mnt/link && ln mnt/a.txt mnt/hard && stat -c %h mnt/a.txt
       chmod 640 mnt/c.txt && stat -c %a mnt/c.txt
       truncate -s 3 mnt/c.txt && cat mnt/c.txt && echo
       ls mnt | tr '\\n' ' ' && echo
       rm -r mnt/d2 mnt/link mnt/hard mnt/c.txt
       ls -A mnt src | tr '\\n' ' '`,
      t.dir,
    );
    assert.equal(
      out,
      ['hello', 'deep', 'deep', 'hello', '2', '640', 'hel', 'a.txt c.txt d2 hard link ', 'mnt: a.txt  src: a.txt '].join('\n'),
    );
    assert.equal(readFileSync(join(t.src, 'a.txt'), 'utf8'), 'hello\n');
  });

  test('sqlite3: rollback and WAL databases with concurrent writers stay consistent', { skip: noSqlite }, () => {
    for (const mode of ['delete', 'wal']) {
      const db = `mnt/${mode}.db`;
      sh(`sqlite3 ${db} "pragma journal_mode=${mode}; create table t(w, i);" > /dev/null`, t.dir);
      sh(
        `for w in 1 2 3; do
           (for i in $(seq 1 30); do echo "insert into t values($w, $i);"; done | sqlite3 -cmd ".timeout 20000" ${db}) &
         done
         wait`,
        t.dir,
      );
      const out = sh(`sqlite3 ${db} "select count(*), count(distinct w) from t; pragma integrity_check;"`, t.dir);
      assert.equal(out, '90|3\nok\n', `${mode} mode`);
    }
  });

  test('SIGTERM unmounts and exits 0', async () => {
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.equal(isMounted(t.mnt), false);
  });
});
