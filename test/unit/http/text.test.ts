import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { goJSON, goQuote, goTimestamp } from '../../../src/http/gotext.js';
import { encodeEvent } from '../../../src/http/events.js';
import { formatNodeID, parseNodeID } from '../../../src/http/node-id.js';

describe('Go-compatible text', () => {
  test('time.Time JSON: RFC 3339 UTC with trailing zeros of the fraction trimmed', () => {
    assert.equal(goTimestamp(Date.UTC(2026, 10, 23, 21, 16, 20, 387)), '2026-11-23T21:16:20.387Z');
    assert.equal(goTimestamp(Date.UTC(2026, 10, 23, 21, 16, 20, 380)), '2026-11-23T21:16:20.38Z');
    assert.equal(goTimestamp(Date.UTC(2026, 10, 23, 21, 16, 20, 0)), '2026-11-23T21:16:20Z');
  });

  test('%q quoting and encoding/json HTML escapes', () => {
    assert.equal(goQuote('nope.db'), '"nope.db"');
    assert.equal(goQuote('a"b\\c\n\t\x01\x7f'), '"a\\"b\\\\c\\n\\t\\x01\\x7f"');
    assert.equal(goJSON({ path: '/a<b>&c' }), '{"path":"/a\\u003cb\\u003e\\u0026c"}');
  });

  test('events encode in Go field order, leaving out empty db and hostname', () => {
    assert.equal(encodeEvent({ type: 'init', data: { isPrimary: true } }), '{"type":"init","data":{"isPrimary":true}}\n');
    assert.equal(
      encodeEvent({ type: 'primaryChange', data: { isPrimary: false, hostname: 'cap-primary' } }),
      '{"type":"primaryChange","data":{"isPrimary":false,"hostname":"cap-primary"}}\n',
    );
  });

  test('node ids are %016X and parse like strconv.ParseUint(s, 16, 64)', () => {
    assert.equal(formatNodeID(0x980e03aba50bd91an), '980E03ABA50BD91A');
    assert.equal(formatNodeID(1n), '0000000000000001');
    assert.equal(parseNodeID('980e03aba50bd91a'), 0x980e03aba50bd91an);
    assert.equal(parseNodeID('1'), 1n);
    for (const bad of ['', 'xyz', '0x12', '-1', '1FFFFFFFFFFFFFFFF', ' 12']) assert.equal(parseNodeID(bad), undefined, bad);
  });
});
