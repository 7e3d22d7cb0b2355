import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Crc64, crc64 } from '../../../src/ltx/crc64.js';

/** Bit-at-a-time reference of CRC-64/GO-ISO in BigInt (slow, obviously right). */
function referenceCrc(data: Uint8Array): bigint {
  const mask = (1n << 64n) - 1n;
  let crc = mask;
  for (const b of data) {
    crc ^= BigInt(b);
    for (let i = 0; i < 8; i++) crc = crc & 1n ? (crc >> 1n) ^ 0xd800000000000000n : crc >> 1n;
  }
  return crc ^ mask;
}

describe('CRC-64/GO-ISO', () => {
  test('check value of "123456789" is b90956c775a41001', () => {
    assert.equal(crc64(Buffer.from('123456789')), 0xb90956c775a41001n);
  });

  test('empty input is 0 and "a" is 3420000000000000', () => {
    assert.equal(crc64(new Uint8Array(0)), 0n);
    assert.equal(crc64(Buffer.from('a')), 0x3420000000000000n);
  });

  test('matches a bitwise reference at every length and buffer alignment', () => {
    const backing = new Uint8Array(300);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 131 + 7) & 0xff;
    for (let start = 0; start < 9; start++) {
      for (const len of [0, 1, 3, 7, 8, 9, 15, 16, 17, 64, 255, 290]) {
        const view = backing.subarray(start, start + len);
        assert.equal(crc64(view), referenceCrc(view), `start ${start} len ${len}`);
      }
    }
  });

  test('incremental updates in arbitrary pieces equal the one-shot CRC', () => {
    const data = new Uint8Array(10_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    const c = new Crc64();
    let pos = 0;
    for (const piece of [1, 2, 3, 5, 8, 13, 4096, 1001, 7]) {
      c.update(data, pos, piece);
      pos += piece;
    }
    c.update(data, pos);
    assert.equal(c.digest(), crc64(data));
  });

  test('updateU32BE equals feeding the four big-endian bytes', () => {
    const a = new Crc64().updateU32BE(0x01020304).digest();
    const b = new Crc64().update(Uint8Array.of(1, 2, 3, 4)).digest();
    assert.equal(a, b);
  });
});
