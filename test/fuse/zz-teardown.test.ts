import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { mountEntries } from '../helpers/mount.js';

// Runs last (files run in name order, one at a time): every suite before it
// must have unmounted what it mounted, even when its tests failed.
test('no fuse.litefs mount under the temporary folder outlives the FUSE suite', () => {
  const root = tmpdir();
  const leftovers = mountEntries().filter(
    (m) => m.fsType === 'fuse.litefs' && (m.mountPoint === root || m.mountPoint.startsWith(root + '/')),
  );
  assert.deepEqual(leftovers, [], 'mounts left behind (unmount with umount -l)');
});
