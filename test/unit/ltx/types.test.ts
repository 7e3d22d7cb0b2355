import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checksumFromJSON,
  formatChecksum,
  formatFilename,
  formatTXID,
  formatTimestamp,
  parseChecksum,
  parseFilename,
  parseTXID,
  parseTimestamp,
  txidFromJSON,
  txidToJSON,
} from '../../../src/ltx/types.js';
import { PosMismatchError, formatPos, parsePos, posFromJSON, posToJSON } from '../../../src/ltx/pos.js';
import { LTXParseError } from '../../../src/ltx/errors.js';

describe('TXID and checksum text forms', () => {
  test('format is 16 lower-case hex digits', () => {
    assert.equal(formatTXID(0xdn), '000000000000000d');
    assert.equal(formatChecksum(0xfe3831a381c602b9n), 'fe3831a381c602b9');
  });

  test('parse accepts upper case and requires exactly 16 characters', () => {
    assert.equal(parseTXID('00000000000000AB'), 0xabn);
    assert.equal(parseChecksum('FE3831A381C602B9'), 0xfe3831a381c602b9n);
    assert.throws(() => parseTXID('abc'), { message: 'invalid formatted transaction id length: "abc"' });
    assert.throws(() => parseTXID('000000000000000g'), { message: 'invalid transaction id format: "000000000000000g"' });
    assert.throws(() => parseChecksum('12'), { message: 'invalid formatted checksum length: "12"' });
    assert.throws(() => parseChecksum('+00000000000000f'), { message: 'invalid checksum format: "+00000000000000f"' });
    assert.throws(() => parseTXID('0x0000000000000f'), LTXParseError);
  });

  test('JSON is the quoted hex form and null reads as 0', () => {
    assert.equal(JSON.stringify(txidToJSON(0x3e8n)), '"00000000000003e8"');
    assert.equal(txidFromJSON(null), 0n);
    assert.equal(checksumFromJSON(null), 0n);
    assert.equal(txidFromJSON('00000000000003e8'), 0x3e8n);
    assert.throws(() => txidFromJSON(12), LTXParseError);
  });
});

describe('Pos', () => {
  const pos = { txid: 0xdn, postApplyChecksum: 0xfe3831a381c602b9n };

  test('string form is txid/checksum, 33 characters', () => {
    assert.equal(formatPos(pos), '000000000000000d/fe3831a381c602b9');
    assert.deepEqual(parsePos('000000000000000d/fe3831a381c602b9'), pos);
  });

  test('parse does not check the separator and accepts upper case', () => {
    assert.deepEqual(parsePos('000000000000000DxFE3831A381C602B9'), pos);
    assert.throws(() => parsePos('000000000000000d/fe3831a381c602b'), {
      message: 'invalid formatted position length: "000000000000000d/fe3831a381c602b"',
    });
  });

  test('JSON form matches Go', () => {
    assert.equal(JSON.stringify(posToJSON(pos)), '{"TXID":"000000000000000d","PostApplyChecksum":"fe3831a381c602b9"}');
    assert.deepEqual(posFromJSON(JSON.parse('{"TXID":"000000000000000d","PostApplyChecksum":"fe3831a381c602b9"}')), pos);
    assert.deepEqual(posFromJSON({ TXID: null }), { txid: 0n, postApplyChecksum: 0n });
  });

  test('PosMismatchError message and JSON', () => {
    const err = new PosMismatchError(pos);
    assert.equal(err.message, 'ltx position mismatch (000000000000000d/fe3831a381c602b9)');
    assert.equal(JSON.stringify(err), '{"pos":{"TXID":"000000000000000d","PostApplyChecksum":"fe3831a381c602b9"}}');
    assert.deepEqual(PosMismatchError.fromJSON(JSON.parse(JSON.stringify(err))).pos, pos);
  });
});

describe('file names and timestamps', () => {
  test('filename is min-max.ltx', () => {
    assert.equal(formatFilename(1n, 1000n), '0000000000000001-00000000000003e8.ltx');
    assert.deepEqual(parseFilename('0000000000000001-00000000000003e8.ltx'), { minTXID: 1n, maxTXID: 1000n });
  });

  test('parseFilename accepts lower case only', () => {
    assert.throws(() => parseFilename('0000000000000001-00000000000003E8.ltx'), {
      message: 'invalid ltx filename: 0000000000000001-00000000000003E8.ltx',
    });
    assert.throws(() => parseFilename('0000000000000001-00000000000003e8.ltx.tmp'), LTXParseError);
  });

  test('timestamp format is millisecond RFC 3339 in UTC', () => {
    assert.equal(formatTimestamp(972110450123n), '2000-10-21T06:40:50.123Z');
    assert.equal(parseTimestamp('2000-10-21T06:40:50.123Z'), 972110450123n);
    assert.equal(parseTimestamp('2000-10-21T08:40:50.123456789+02:00'), 972110450123n);
    assert.equal(parseTimestamp('2000-10-21T06:40:50Z'), 972110450000n);
    assert.throws(() => parseTimestamp('yesterday'), LTXParseError);
  });
});
