import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PositionRecord } from '../../../src/lease/lease.js';
import { behindBy } from '../../../src/node/stale-rule.js';

function record(databases: Record<string, number>): PositionRecord {
  const dbs: Record<string, { txid: string; postApplyChecksum: string }> = {};
  for (const [name, txid] of Object.entries(databases)) dbs[name] = { txid: txid.toString(16).padStart(16, '0'), postApplyChecksum: '8000000000000001' };
  return { nodeID: 'AAAAAAAAAAAAAAAA', hostname: 'h', epoch: 0n, databases: dbs };
}

describe('stale-node rule (ARCHITECTURE §3.1)', () => {
  test('equal or ahead everywhere is not behind', () => {
    assert.equal(behindBy(record({ a: 3, b: 1 }), record({ a: 3, b: 1 })), null);
    assert.equal(behindBy(record({ a: 4, b: 1, c: 9 }), record({ a: 3 })), null);
    assert.equal(behindBy(record({}), record({})), null);
  });

  test('an empty node is behind any node with data', () => {
    assert.deepEqual(behindBy(record({}), record({ a: 1 })), { db: 'a', local: 0n, theirs: 1n });
  });

  test('the first lagging database by name is reported', () => {
    assert.deepEqual(behindBy(record({ a: 1, b: 5, c: 1 }), record({ a: 1, b: 2, c: 7, d: 0 })), { db: 'c', local: 1n, theirs: 7n });
  });

  test('TXIDs compare as 64-bit numbers, not as text', () => {
    assert.equal(behindBy(record({ a: 0x10 }), record({ a: 0x9 })), null);
  });
});
