/**
 * Cache invalidation through the notifier thread on a real mount: notices
 * written while reader processes fault pages of the same file never hang,
 * and an invalidated range shows bytes changed behind the kernel's back.
 * Also the wake-up path (main thread → FUSE thread message), with its
 * latency printed for the record (not asserted).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, writeSync, statSync, writeFileSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import type { FuseMount } from '../../src/fuse/mount.js';
import { cleanupMount, mountPassthrough, nextMessage, tempMountDirs, type TempMount } from './fuse-layer-helpers.js';

const skip = skipUnless(['root', 'fuse']);
const FILE_SIZE = 4 * 1024 * 1024;

/** Runs a node script in a child process; resolves with its stdout (rejects on non-zero exit or timeout). */
function runNode(script: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child timed out after ${timeoutMs} ms (hang?): ${err}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`child exited ${code}: ${err}`));
    });
  });
}

/** Reads random 4 KiB pages of the file `rounds` times, reopening it every 50 reads. */
const READER = `
const fs = require('fs');
const [path, rounds, seed] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let x = seed >>> 0;
const rand = () => (x = (x * 1664525 + 1013904223) >>> 0);
const buf = Buffer.alloc(4096);
let fd = fs.openSync(path, 'r');
for (let i = 0; i < rounds; i++) {
  if (i % 50 === 49) { fs.closeSync(fd); fd = fs.openSync(path, 'r'); }
  const page = rand() % ${FILE_SIZE / 4096};
  const n = fs.readSync(fd, buf, 0, 4096, page * 4096);
  if (n !== 4096) throw new Error('short read ' + n + ' at page ' + page);
}
fs.closeSync(fd);
console.log('done');
`;

/** Prints the bytes [off, off+len) of a file as hex. */
const READ_RANGE = `
const fs = require('fs');
const fd = fs.openSync(process.argv[1], 'r');
const b = Buffer.alloc(Number(process.argv[3]));
fs.readSync(fd, b, 0, b.length, Number(process.argv[2]));
console.log(b.toString('hex'));
`;

describe('FUSE notifier and wake-up', { skip }, () => {
  let t: TempMount;
  let mount: FuseMount;
  let fileIno: number;

  before(async () => {
    t = tempMountDirs('fuse-notify-');
    const data = Buffer.alloc(FILE_SIZE);
    for (let i = 0; i < FILE_SIZE; i += 4096) data.fill(i / 4096 % 251, i, i + 4096);
    writeFileSync(join(t.src, 'data.bin'), data);
    fileIno = statSync(join(t.src, 'data.bin')).ino;
    // keep_cache: pages survive reopen, so only an explicit invalidation can refresh them.
    mount = await mountPassthrough(t, { keepCache: true, attrTimeout: 60, entryTimeout: 60 });
  });

  after(async () => {
    try {
      if (mount !== undefined) await mount.close();
    } finally {
      if (t !== undefined) cleanupMount(t);
    }
  });

  test('invalidations from the notifier while readers fault pages never hang', async () => {
    const readers = [1, 2, 3].map((seed) => runNode(READER, [join(t.mnt, 'data.bin'), '3000', String(seed)]));
    let stop = false;
    let main = 0;
    let fromFuse = 0;
    const invalidate = (async () => {
      let x = 7;
      while (!stop) {
        x = (x * 1103515245 + 12345) >>> 0;
        const off = (x % (FILE_SIZE / 4096)) * 4096;
        const len = ((x >>> 8) % 64) * 4096;
        await mount.invalInode(fileIno, off, len);
        main++;
        if (main % 10 === 0) {
          // The same path from the FUSE thread: queued there, written by the notifier, acknowledged back.
          const id = main;
          mount.send({ type: 'inval-inode', path: 'data.bin', off, len, id });
          await nextMessage(mount, (m): m is { type: string; id: number } => (m as { type?: string; id?: number }).type === 'notices-written' && (m as { id: number }).id === id);
          fromFuse++;
        }
      }
    })();
    const outs = await Promise.all(readers);
    stop = true;
    await invalidate;
    assert.deepEqual(outs.map((o) => o.trim()), ['done', 'done', 'done']);
    console.log(`# ${main} invalidations from the main thread, ${fromFuse} from the FUSE thread, during 9000 page reads`);
    assert.ok(main > 0 && fromFuse > 0, `wrote ${main} notices from the main thread, ${fromFuse} from the FUSE thread`);
  });

  test('an invalidated range shows bytes written behind the kernel', async () => {
    const path = join(t.mnt, 'data.bin');
    const off = 8192;
    const before = (await runNode(READ_RANGE, [path, String(off), '16'])).trim();
    assert.equal(before, '02'.repeat(16));
    // Change the backing file directly: the kernel's cached page is now stale.
    const fd = openSync(join(t.src, 'data.bin'), 'r+');
    writeSync(fd, Buffer.alloc(16, 0xab), 0, 16, off);
    closeSync(fd);
    const stale = (await runNode(READ_RANGE, [path, String(off), '16'])).trim();
    assert.equal(stale, '02'.repeat(16), 'keep_cache + explicit invalidation: the old page must still be cached');
    await mount.invalInode(fileIno, off, 4096);
    const fresh = (await runNode(READ_RANGE, [path, String(off), '16'])).trim();
    assert.equal(fresh, 'ab'.repeat(16));
  });

  test('entry invalidation and delete notices are accepted', async () => {
    writeFileSync(join(t.src, 'gone.txt'), 'x');
    const ino = statSync(join(t.src, 'gone.txt')).ino;
    await fsp.stat(join(t.mnt, 'gone.txt')); // async: served by the FUSE thread, not this one
    await mount.invalEntry(1, 'gone.txt');
    await fsp.stat(join(t.mnt, 'gone.txt'));
    await fsp.unlink(join(t.src, 'gone.txt'));
    await mount.notifyDelete(1, ino, 'gone.txt');
    await assert.rejects(fsp.stat(join(t.mnt, 'gone.txt')), { code: 'ENOENT' });
  });

  test('a message from the main thread wakes the FUSE thread', async () => {
    const rounds = 200;
    const started = process.hrtime.bigint();
    for (let id = 1; id <= rounds; id++) {
      const pong = nextMessage(mount, (m): m is { type: 'pong'; id: number } => (m as { type?: string }).type === 'pong' && (m as { id: number }).id === id);
      mount.send({ type: 'ping', id });
      await pong;
    }
    const usPerWake = Number(process.hrtime.bigint() - started) / 1000 / rounds;
    console.log(`# wake round trip (post + STATFS of the mount + reply message): ${usPerWake.toFixed(0)} µs average over ${rounds}`);
    assert.ok(usPerWake > 0);
  });
});
