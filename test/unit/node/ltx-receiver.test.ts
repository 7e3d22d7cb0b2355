/** LTXReceiver: each file goes into one created ahead; close() leaves nothing behind. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LTXReceiver } from '../../../src/node/ltx-receiver.js';
import { History } from './replica-harness.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function* chunks(...parts: Buffer[]): AsyncIterable<Buffer> {
  for (const p of parts) yield p;
}

test('received files are whole and verified; a failed one leaves no file; close() removes the spare', async () => {
  const base = mkdtempSync(join(tmpdir(), 'ltx-receiver-'));
  dirs.push(base);
  const dir = join(base, 'tmp'); // made on first use
  const h = new History().commit({ 1: 'a' }).commit({ 1: 'b' }).commit({ 2: 'c' });
  const rx = new LTXReceiver(dir);
  const one = await rx.receive(chunks(h.files[2]!.subarray(0, 50), h.files[2]!.subarray(50)));
  assert.deepEqual(readFileSync(one.path), h.files[2]);
  assert.equal(one.header.maxTXID, 2n);
  await assert.rejects(rx.receive(chunks(h.files[3]!.subarray(0, 120))));
  const two = await rx.receive(chunks(h.files[3]!));
  assert.deepEqual(readFileSync(two.path), h.files[3]);
  // The two received files and, once its asynchronous open has run, one empty spare.
  const names = readdirSync(dir);
  for (const p of [one.path, two.path]) assert.ok(names.includes(p.slice(dir.length + 1)), `${p} kept`);
  assert.ok(names.length <= 3, `at most one spare: ${names.join(' ')}`);
  await rx.close();
  assert.deepEqual(readdirSync(dir).sort(), [one.path, two.path].map((p) => p.slice(dir.length + 1)).sort());
  await assert.rejects(rx.receive(chunks(h.files[3]!)), /closed/);
  // Each file's descriptor: synced once (and closed after it), or closed unsynced.
  // Moved into another folder first: the sync also makes the new name durable.
  const moved = join(base, 'ltx', 'one.ltx');
  mkdirSync(join(base, 'ltx'));
  renameSync(one.path, moved);
  one.durability.movedInto(join(base, 'ltx'));
  const synced = one.durability.sync();
  assert.equal(one.durability.sync(), synced, 'one fdatasync however often asked');
  await synced;
  one.durability.release();
  two.durability.release();
  two.durability.release();
  assert.throws(() => two.durability.sync(), /closed unsynced/);
  assert.throws(() => one.durability.movedInto(base), /after its sync started/);
  assert.deepEqual(readFileSync(moved), h.files[2]);
});
