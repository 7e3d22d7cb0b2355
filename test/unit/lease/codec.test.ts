import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodePositionRecord,
  decodePrimaryInfo,
  encodePositionRecord,
  encodePrimaryInfo,
} from '../../../src/lease/lease.js';

test("PrimaryInfo is LiteFS's JSON: {hostname, advertise-url}", () => {
  const text = encodePrimaryInfo({ hostname: 'n1', advertiseURL: 'http://n1:20202' });
  assert.deepEqual(JSON.parse(text), { hostname: 'n1', 'advertise-url': 'http://n1:20202' });
  assert.deepEqual(decodePrimaryInfo(text), { hostname: 'n1', advertiseURL: 'http://n1:20202' });
});

test('PrimaryInfo and PositionRecord decoders return null for anything else, never throw', () => {
  const junk = ['', 'null', '[]', '1', '"x"', '{', '{"hostname":1}', '{"advertise-url":"u"}', '\u0000\u00ff', '{"a":'.repeat(50)];
  for (const text of junk) {
    assert.equal(decodePrimaryInfo(text), null, text);
    assert.equal(decodePositionRecord(text), null, text);
  }
  const bad = [
    { 'node-id': 'A', hostname: 'h', epoch: 1, databases: {} },
    { 'node-id': 'A', hostname: 'h', epoch: '-1', databases: {} },
    { 'node-id': 'A', hostname: 'h', epoch: '1', databases: [] },
    { 'node-id': 'A', hostname: 'h', epoch: '1', databases: { d: { txid: '1', postApplyChecksum: '0000000000000000' } } },
    { 'node-id': 'A', hostname: 'h', epoch: '1', databases: { d: null } },
  ];
  for (const v of bad) assert.equal(decodePositionRecord(JSON.stringify(v)), null, JSON.stringify(v));
});

test('PositionRecord round-trips with an epoch beyond 2^53', () => {
  const r = {
    nodeID: '00000000000000A1',
    hostname: 'n1',
    epoch: 2n ** 60n + 7n,
    databases: { 'db.sqlite': { txid: '00000000000000FF', postApplyChecksum: '8000000000000001' } },
  };
  const text = encodePositionRecord(r);
  assert.match(text, /"epoch":"1152921504606846983"/);
  assert.deepEqual(decodePositionRecord(text), r);
});
