import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakedMounts } from '../helpers/mount.js';

// Runs last in the cluster suite: every daemon's mount is gone, failures included.
test('no mount of ours under the temporary folder outlives the cluster suite', () => {
  assert.deepEqual(leakedMounts(), [], 'mounts left behind (unmount with umount -l)');
});
