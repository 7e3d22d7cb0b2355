import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { mountDirOwner, mountEntries } from '../helpers/mount.js';

// Runs last (files run in name order, one at a time): every suite before it
// must have unmounted what it mounted, even when its tests failed. Checked:
// any fuse.litefs mount under the temporary folder, and any mount in a folder
// test/helpers/mount.ts created (the passthrough mounts as fuse.passthrough)
// whose test process has exited. Mounts of a suite still running in another
// process (someone else's run on the same machine) are not leaks.
test('no mount of ours under the temporary folder outlives the FUSE suite', () => {
  const root = tmpdir();
  const leftovers = mountEntries().filter((m) => {
    if (m.fsType === 'fuse.litefs' && (m.mountPoint === root || m.mountPoint.startsWith(root + '/'))) return true;
    const owner = mountDirOwner(m.mountPoint);
    return owner !== null && !processAlive(owner);
  });
  assert.deepEqual(leftovers, [], 'mounts left behind (unmount with umount -l)');
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
