import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountEntries } from '../helpers/mount.js';

// Runs last (files run in name order, one at a time): every suite before it
// must have unmounted what it mounted, even when its tests failed. Checked:
// any fuse.litefs mount under the temporary folder, and any mount at all in
// the folders test/helpers/mount.ts creates (the passthrough mounts as
// fuse.passthrough). Other people's mounts elsewhere in /tmp are not ours.
test('no mount of ours under the temporary folder outlives the FUSE suite', () => {
  const root = tmpdir();
  const ours = join(root, 'litefs-fuse-');
  const leftovers = mountEntries().filter(
    (m) =>
      m.mountPoint.startsWith(ours) ||
      (m.fsType === 'fuse.litefs' && (m.mountPoint === root || m.mountPoint.startsWith(root + '/'))),
  );
  assert.deepEqual(leftovers, [], 'mounts left behind (unmount with umount -l)');
});
