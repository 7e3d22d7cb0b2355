import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { skipUnless } from '../helpers/prereq.js';
import { isMounted, mountDaemon, MountError } from '../helpers/mount.js';
import { program } from '../helpers/sqlite-client.js';

/**
 * The mount helper must never leave a mount behind, whatever the daemon does.
 * A bind-mounting stand-in daemon (test/programs/bind-daemon.py) plays the
 * well-behaved and the broken passthrough.
 */
const skip = skipUnless(['root']);

const daemon = (behaviour: string) => (src: string, mnt: string): [string, string[]] => [
  'python3',
  [program('bind-daemon.py'), behaviour, src, mnt],
];

describe('mount helper', { skip }, () => {
  test('mounts, shows the source folder, and unmounts on close', async () => {
    const t = await mountDaemon(daemon('good'));
    assert.equal(isMounted(t.dir), true);
    writeFileSync(join(t.dir, 'x'), 'hello');
    assert.equal(readFileSync(join(t.source as string, 'x'), 'utf8'), 'hello');
    await t.close();
    assert.equal(isMounted(t.dir), false);
    assert.equal(existsSync(dirname(t.dir)), false, 'temporary folders removed');
    await t.close();
  });

  test('a daemon that exits before mounting is reported with its output', async () => {
    await assert.rejects(mountDaemon(daemon('crash')), (err: unknown) => {
      assert.ok(err instanceof MountError);
      assert.match(err.message, /exited \(3\) before mounting/);
      assert.match(err.message, /cannot mount .* \(on purpose\)/);
      return true;
    });
  });

  test('a daemon that ignores SIGTERM is killed and its mount detached, and close() fails', async () => {
    const t = await mountDaemon(daemon('stubborn'), { stopMs: 500 });
    await assert.rejects(t.close(), /did not exit within 500 ms of SIGTERM.*still mounted/s);
    assert.equal(isMounted(t.dir), false);
  });

  test('a daemon that exits without unmounting makes close() fail after detaching the mount', async () => {
    const t = await mountDaemon(daemon('leaky'));
    await assert.rejects(t.close(), /still mounted \(lazily unmounted now\)/);
    assert.equal(isMounted(t.dir), false);
  });
});
