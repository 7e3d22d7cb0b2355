import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventOutbox } from '../../../src/fs/event-outbox.js';
import type { StoreEvent } from '../../../src/store/messages.js';

function tx(txid: number, ltx?: Uint8Array): StoreEvent {
  const hex = txid.toString(16).padStart(16, '0');
  return { type: 'tx', db: 'a.db', txid: hex, checksum: 'ff'.repeat(8), pages: 1, pageSize: 4096, commit: 2, timestamp: 1, ...(ltx ? { ltx } : {}) };
}

/** What reached the main thread: txids for commits, the type for anything else; `+ltx` when the bytes came along. */
function harness(): { box: EventOutbox; sent: string[] } {
  const sent: string[] = [];
  const box = new EventOutbox((e) => sent.push(e.type === 'tx' ? `${Number.parseInt(e.txid, 16)}${e.ltx ? '+ltx' : ''}` : e.type));
  return { box, sent };
}

describe('EventOutbox', () => {
  test('prompt (the start): every event goes out at once, with its LTX bytes', () => {
    const { box, sent } = harness();
    box.post(tx(1, new Uint8Array(3)));
    box.post(tx(2));
    box.post({ type: 'groupSync', jobs: [] });
    assert.deepEqual(sent, ['1+ltx', '2', 'groupSync']);
  });

  test('in windows: the first commit at once, the rest (without bytes) at flushTx; the next commit opens a new window', () => {
    const { box, sent } = harness();
    box.setPrompt(false);
    box.post(tx(1, new Uint8Array(3)));
    box.post(tx(2, new Uint8Array(3)));
    box.post(tx(3));
    assert.deepEqual(sent, ['1+ltx']);
    box.flushWindow();
    assert.deepEqual(sent, ['1+ltx', '2', '3']);
    box.post(tx(4, new Uint8Array(3)));
    box.post(tx(5));
    assert.deepEqual(sent, ['1+ltx', '2', '3', '4+ltx']);
    // A flush with nothing held sends nothing and closes the window.
    box.flushWindow();
    box.flushWindow();
    box.post(tx(6));
    assert.deepEqual(sent, ['1+ltx', '2', '3', '4+ltx', '5', '6']);
  });

  test('any other event sends the held commits first, so the order never changes', () => {
    const { box, sent } = harness();
    box.setPrompt(false);
    box.post(tx(1));
    box.post(tx(2));
    box.post({ type: 'commandResult', id: 7, status: 'busy' });
    box.post(tx(3));
    assert.deepEqual(sent, ['1', '2', 'commandResult']);
    box.flushWindow();
    assert.deepEqual(sent, ['1', '2', 'commandResult', '3']);
  });

  test('back to prompt: the held commits go out at once, and every later one', () => {
    const { box, sent } = harness();
    box.setPrompt(false);
    box.post(tx(1));
    box.post(tx(2));
    box.setPrompt(true);
    assert.deepEqual(sent, ['1', '2']);
    box.post(tx(3, new Uint8Array(1)));
    assert.deepEqual(sent, ['1', '2', '3+ltx']);
  });
});
