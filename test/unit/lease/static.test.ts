import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseNotSupportedError, PrimaryExistsError } from '../../../src/lease/lease.js';
import { StaticLeaser } from '../../../src/lease/static.js';
import { advertiseURL, leaseConformance } from './conformance.js';

/** lease.type: static (reference §10.2): node 'a' is the candidate; every other node is its replica. */
describe('static lease', () => {
  leaseConformance({ elects: false }, () => ({
    faults: null,
    leaser: (o) =>
      new StaticLeaser({
        hostname: 'a',
        advertiseURL: advertiseURL('a'),
        candidate: o.name === 'a',
      }),
  }));

  test('a replica cannot acquire or take over a lease; the candidate never expires', async () => {
    const replica = new StaticLeaser({ hostname: 'p', advertiseURL: 'http://p:20202', candidate: false });
    await assert.rejects(replica.acquire(), PrimaryExistsError);
    await assert.rejects(replica.acquireExisting(), LeaseNotSupportedError);
    assert.equal(replica.advertiseURL, '', 'LiteFS reports the URL only on the primary');
    const primary = new StaticLeaser({ hostname: 'p', advertiseURL: 'http://p:20202', candidate: true });
    assert.equal(primary.advertiseURL, 'http://p:20202');
    const lease = await primary.acquire();
    assert.ok(lease.deadline >= Date.UTC(2999, 0, 1), 'the static lease lasts until the year 3000');
    assert.equal(lease.id, '');
    const ac = new AbortController();
    const waiting = lease.nextHandoff(ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(waiting, /stop/);
  });
});
