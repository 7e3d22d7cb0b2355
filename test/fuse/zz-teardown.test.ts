import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakedMounts } from '../helpers/mount.js';

// Runs last (files run in name order, one at a time): every suite before it
// must have unmounted what it mounted, even when its tests failed.
test('no mount of ours under the temporary folder outlives the FUSE suite', () => {
  assert.deepEqual(leakedMounts(), [], 'mounts left behind (unmount with umount -l)');
});
