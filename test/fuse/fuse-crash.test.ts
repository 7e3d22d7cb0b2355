/**
 * A FUSE worker that dies while mounted leaves a connection nobody serves;
 * FuseMount notices, aborts it, unmounts, and reports 'closed' — nothing
 * hangs and nothing stays mounted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { skipUnless } from '../helpers/prereq.js';
import { FuseMount } from '../../src/fuse/mount.js';
import { cleanupMount, isMounted, tempMountDirs, type TempMount } from './fuse-layer-helpers.js';

const skip = skipUnless(['root', 'fuse']);

describe('FUSE worker death', { skip }, () => {
  let t: TempMount;
  before(() => {
    t = tempMountDirs('fuse-crash-');
  });
  after(() => cleanupMount(t));

  test('a worker that exits while mounted is cleaned up: connection aborted, unmounted, closed', async () => {
    writeFileSync(join(t.src, 'f'), 'x');
    const mount = await FuseMount.mount({
      mountpoint: t.mnt,
      workerScript: new URL('./fuse-crash-worker.js', import.meta.url),
      workerData: { source: t.src },
      handleSignals: false,
    });
    assert.equal(spawnSync('cat', [join(t.mnt, 'f')], { encoding: 'utf8', timeout: 10_000 }).stdout, 'x');
    const closed = once(mount, 'closed');
    mount.send({ die: 3 });
    await closed;
    assert.equal(await mount.ended, 3);
    assert.equal(isMounted(t.mnt), false);
  });
});
