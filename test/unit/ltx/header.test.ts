import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Header,
  isSnapshot,
  makeHeader,
  marshalHeader,
  preApplyPos,
  unmarshalHeader,
  validateHeader,
} from '../../../src/ltx/header.js';
import { marshalTrailer, postApplyPos, unmarshalTrailer, validateTrailer } from '../../../src/ltx/trailer.js';
import { LTXDecodeError, LTXValidationError } from '../../../src/ltx/errors.js';

const valid = makeHeader({ pageSize: 4096, commit: 2, minTXID: 2n, maxTXID: 3n, preApplyChecksum: 0x8000000000000001n });

function rejects(fields: Partial<Header>, message: string, rule: string): void {
  assert.throws(() => validateHeader({ ...valid, ...fields }), (err: unknown) => {
    assert.ok(err instanceof LTXValidationError);
    assert.equal(err.message, message);
    assert.equal(err.rule, rule);
    return true;
  });
}

describe('validateHeader: the 15 rules of ltx v0.3.13 in order', () => {
  test('a valid header passes', () => validateHeader(valid));
  test('1 version', () => rejects({ version: 2, flags: 2 }, 'invalid version', 'invalid-version'));
  test('2 flags', () => rejects({ flags: 3, pageSize: 3 }, 'invalid flags: 0x00000003', 'invalid-flags'));
  test('3 page size', () => {
    rejects({ pageSize: 3000, minTXID: 0n }, 'invalid page size: 3000', 'invalid-page-size');
    rejects({ pageSize: 256 }, 'invalid page size: 256', 'invalid-page-size');
    rejects({ pageSize: 131072 }, 'invalid page size: 131072', 'invalid-page-size');
    validateHeader({ ...valid, pageSize: 65536 });
    validateHeader({ ...valid, pageSize: 512 });
  });
  test('4 min txid', () => rejects({ minTXID: 0n, maxTXID: 0n }, 'minimum transaction id required', 'min-txid-required'));
  test('5 max txid', () => rejects({ maxTXID: 0n }, 'maximum transaction id required', 'max-txid-required'));
  test('6 order', () => rejects({ minTXID: 5n, maxTXID: 4n }, 'transaction ids out of order: (5,4)', 'txids-out-of-order'));
  test('7 wal offset', () => rejects({ walOffset: -1n, walSize: -1n }, 'wal offset cannot be negative: -1', 'negative-wal-offset'));
  test('8 wal size', () => rejects({ walSize: -5n }, 'wal size cannot be negative: -5', 'negative-wal-size'));
  test('9 salt needs offset', () =>
    rejects({ walSalt1: 1 }, 'wal offset required if salt exists', 'wal-offset-required-for-salt'));
  test('10 salt needs size', () =>
    rejects({ walSalt2: 1, walOffset: 32n }, 'wal size required if salt exists', 'wal-size-required-for-salt'));
  test('11 offset needs size', () =>
    rejects({ walOffset: 32n }, 'wal size required if wal offset exists', 'wal-size-required-for-offset'));
  test('12 size needs offset', () =>
    rejects({ walSize: 4120n }, 'wal offset required if wal size exists', 'wal-offset-required-for-size'));
  test('13 snapshot pre-apply', () =>
    rejects({ minTXID: 1n, preApplyChecksum: 5n }, 'pre-apply checksum must be zero on snapshots', 'snapshot-pre-apply-checksum'));
  test('14 non-snapshot pre-apply required', () =>
    rejects({ preApplyChecksum: 0n }, 'pre-apply checksum required on non-snapshot files', 'pre-apply-checksum-required'));
  test('15 pre-apply format', () =>
    rejects({ preApplyChecksum: 5n }, 'invalid pre-apply checksum format', 'invalid-pre-apply-checksum-format'));
  test('commit 0, timestamp and node id are not validated', () =>
    validateHeader({ ...valid, commit: 0, timestamp: -1n, nodeID: (1n << 64n) - 1n }));
});

describe('header and trailer bytes', () => {
  test('marshal/unmarshal round-trips every field', () => {
    const h = makeHeader({
      flags: 1,
      pageSize: 65536,
      commit: 0xfffffffe,
      minTXID: 0x1234n,
      maxTXID: 0xffffffffffffffffn,
      timestamp: -3n,
      preApplyChecksum: 0x8123456789abcdefn,
      walOffset: 32n,
      walSize: 12360n,
      walSalt1: 0xdeadbeef,
      walSalt2: 0x01020304,
      nodeID: 0xa1b2c3d4e5f60718n,
    });
    const bytes = marshalHeader(h);
    assert.equal(bytes.length, 100);
    assert.deepEqual([...bytes.subarray(0, 4)], [0x4c, 0x54, 0x58, 0x31]);
    assert.deepEqual([...bytes.subarray(8, 12)], [0, 1, 0, 0], '65536 is stored literally');
    assert.ok(bytes.subarray(80).every((b) => b === 0), 'reserved bytes are zero');
    assert.deepEqual(unmarshalHeader(bytes), h);
  });

  test('unmarshal ignores reserved bytes, rejects short input and a wrong magic', () => {
    const bytes = marshalHeader(valid);
    bytes[90] = 7;
    assert.deepEqual(unmarshalHeader(bytes), valid);
    assert.throws(() => unmarshalHeader(bytes.subarray(0, 99)), LTXDecodeError);
    bytes[3] = 0x32;
    assert.throws(() => unmarshalHeader(bytes), { message: 'invalid LTX file' });
  });

  test('trailer round-trip and the four validation rules', () => {
    const t = { postApplyChecksum: 0x8000000000000000n, fileChecksum: 0xe875beb30cb2a5e7n };
    assert.deepEqual(unmarshalTrailer(marshalTrailer(t)), t);
    validateTrailer(t);
    assert.throws(() => validateTrailer({ ...t, postApplyChecksum: 0n }), { message: 'post-apply checksum required' });
    assert.throws(() => validateTrailer({ ...t, postApplyChecksum: 1n }), { message: 'invalid post-apply checksum format' });
    assert.throws(() => validateTrailer({ ...t, fileChecksum: 0n }), { message: 'file checksum required' });
    assert.throws(() => validateTrailer({ ...t, fileChecksum: 1n }), { message: 'invalid file checksum format' });
  });

  test('snapshot and positions', () => {
    assert.equal(isSnapshot(valid), false);
    assert.equal(isSnapshot({ ...valid, minTXID: 1n }), true);
    assert.deepEqual(preApplyPos(valid), { txid: 1n, postApplyChecksum: 0x8000000000000001n });
    assert.deepEqual(postApplyPos(valid, { postApplyChecksum: 0x8000000000000009n, fileChecksum: 0n }), {
      txid: 3n,
      postApplyChecksum: 0x8000000000000009n,
    });
  });
});
