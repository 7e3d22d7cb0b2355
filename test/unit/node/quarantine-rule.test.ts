/** The quarantine decision for a snapshot arriving at a replica (ARCHITECTURE §3.1), as a table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quarantineReason } from '../../../src/node/quarantine-rule.js';
import type { Pos } from '../../../src/http/posmap.js';

const pos = (txid: number, checksum: bigint): Pos => ({ txid: BigInt(txid), postApplyChecksum: checksum });
const A = 0x8000000000000aaan;
const B = 0x8000000000000bbbn;
const SNAP = pos(5, A);

const table: [string, Pos | undefined, string | undefined, string | null][] = [
  // name, local, reason, expected
  ['nothing local (no entry), no reason', undefined, undefined, null],
  ['nothing local (TXID 0), reason empty', pos(0, 0n), 'empty', null],
  ['nothing local, reason diverged', pos(0, 0n), 'diverged', null],
  ['local equals the snapshot, no reason', pos(5, A), undefined, null],
  ['local equals the snapshot, reason diverged', pos(5, A), 'diverged', null],
  ['behind, reason behind', pos(3, B), 'behind', null],
  ['behind claimed but local is past the snapshot', pos(7, B), 'behind', 'unknown'],
  ['behind claimed at the same TXID with another checksum', pos(5, B), 'behind', 'unknown'],
  ['empty claimed but local has data', pos(3, B), 'empty', 'unknown'],
  ['ahead', pos(9, B), 'ahead', 'ahead'],
  ['diverged at the same TXID', pos(5, B), 'diverged', 'diverged'],
  ['diverged while behind', pos(2, B), 'diverged', 'diverged'],
  ['no reason (Go primary), local behind', pos(3, B), undefined, 'unknown'],
  ['no reason (Go primary), local ahead', pos(8, B), undefined, 'unknown'],
  ['a reason this build does not know', pos(3, B), 'restored-from-backup', 'restored-from-backup'],
];

for (const [name, local, reason, want] of table) {
  test(`quarantine rule: ${name} -> ${want ?? 'none'}`, () => {
    assert.equal(quarantineReason({ local, snapshot: SNAP, reason }), want);
  });
}
