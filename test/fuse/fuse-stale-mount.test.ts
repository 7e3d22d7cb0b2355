/**
 * A passthrough daemon killed with SIGKILL leaves a dead mount (ENOTCONN);
 * starting it again on the same path clears that mount by itself and works,
 * and a SIGTERM then unmounts cleanly (exit 0, nothing left in /proc/mounts).
 * A stopped (hung) daemon's mount is aborted through fusectl and replaced.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { skipUnless } from '../helpers/prereq.js';
import { repoRoot } from '../helpers/paths.js';
import { cleanupMount, isMounted, tempMountDirs, type TempMount } from './fuse-layer-helpers.js';

const skip = skipUnless(['root', 'fuse']);
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const fusectlWasMounted = / fusectl /.test(readFileSync('/proc/mounts', 'utf8'));

/** Starts `litefs passthrough SRC MNT` and resolves once it printed `mounted MNT`. */
async function startPassthrough(src: string, mnt: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'passthrough', src, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "mounted" line within 20 s; stderr: ${err}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`mounted ${mnt}\n`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`passthrough exited ${code} before mounting; stderr: ${err}`));
    });
  });
  return child;
}

/** Reads a file through the mount in a child process (never from this process synchronously). */
function catInChild(path: string): string {
  const r = spawnSync('cat', [path], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`cat ${path} failed: ${r.stderr}`);
  return r.stdout;
}

describe('stale mount after SIGKILL', { skip }, () => {
  let t: TempMount;
  before(() => {
    t = tempMountDirs('fuse-stale-');
  });
  const children: ChildProcess[] = [];

  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    cleanupMount(t);
  });

  test('a restarted daemon clears the dead mount itself and serves again', async () => {
    writeFileSync(join(t.src, 'hello.txt'), 'hello\n');
    const first = await startPassthrough(t.src, t.mnt);
    children.push(first);
    assert.equal(catInChild(join(t.mnt, 'hello.txt')), 'hello\n');

    first.kill('SIGKILL');
    await once(first, 'exit');
    assert.ok(isMounted(t.mnt), 'the killed daemon leaves its mount behind');
    await assert.rejects(fsp.stat(t.mnt), { code: 'ENOTCONN' });

    const second = await startPassthrough(t.src, t.mnt);
    children.push(second);
    assert.equal(catInChild(join(t.mnt, 'hello.txt')), 'hello\n');
    const mounts = spawnSync('grep', ['-c', ` ${t.mnt} `, '/proc/mounts'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(mounts, '1', 'exactly one mount at the path: the stale one is gone');

    second.kill('SIGTERM');
    const [code] = (await once(second, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.equal(isMounted(t.mnt), false, 'nothing of ours left in /proc/mounts');
  });

  test('a daemon that stopped answering (SIGSTOP) is cut off and replaced', async () => {
    const first = await startPassthrough(t.src, t.mnt);
    children.push(first);
    first.kill('SIGSTOP');
    const second = await startPassthrough(t.src, t.mnt);
    children.push(second);
    assert.equal(catInChild(join(t.mnt, 'hello.txt')), 'hello\n');
    const mounts = spawnSync('grep', ['-c', ` ${t.mnt} `, '/proc/mounts'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(mounts, '1');
    // The old daemon's connection was aborted: woken up, it finds its mount gone and exits.
    const firstExit = first.exitCode !== null || first.signalCode !== null ? Promise.resolve() : once(first, 'exit');
    first.kill('SIGCONT');
    await firstExit;
    second.kill('SIGTERM');
    const [code] = (await once(second, 'exit')) as [number | null];
    assert.equal(code, 0);
    assert.equal(isMounted(t.mnt), false);
    assert.equal(/ fusectl /.test(readFileSync('/proc/mounts', 'utf8')) && !fusectlWasMounted, false, 'fusectl unmounted again');
  });
});
