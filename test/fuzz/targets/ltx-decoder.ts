/**
 * Fuzz target: the LTX decoder, in Go-compatible and strict modes, fed whole
 * and in small pieces. Only the codec's typed LTXError is an expected failure.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fixture } from '../../helpers/paths.js';
import { LTXDecoder, decodeBytes } from '../../../src/ltx/decoder.js';
import { LTXError } from '../../../src/ltx/errors.js';
import type { FuzzTarget } from '../target.js';

export function ltxFixtureFiles(): Buffer[] {
  const out: Buffer[] = [];
  for (const dir of ['ltx-v0.3.13-generated', 'ltx-python-crafted-lz4-variants']) {
    for (const name of readdirSync(fixture('ltx', dir)).sort()) out.push(readFileSync(fixture('ltx', dir, name)));
  }
  out.push(
    readFileSync(
      fixture('ltx', 'litefs-v0.5.11', 'testdata', 'store', 'open-and-write-snapshot', 'dbs', 'sqlite.db', 'ltx', '000000000000000d-000000000000000d.ltx'),
    ),
  );
  return out;
}

export const target: FuzzTarget = {
  name: 'ltx-decoder',
  seeds: ltxFixtureFiles,
  run(input: Buffer): void {
    let failure: unknown = null;
    try {
      decodeBytes(input);
    } catch (e) {
      failure = e;
    }
    try {
      decodeBytes(input, {}, { strict: true });
    } catch (e) {
      failure ??= e;
    }
    // Pieces of 1..97 bytes must behave like one push.
    const dec = new LTXDecoder();
    try {
      for (let off = 0, step = 1; off < input.length; off += step, step = (step * 7) % 97 + 1) {
        dec.push(input.subarray(off, off + step));
      }
      dec.end();
    } catch (e) {
      failure ??= e;
    }
    if (failure !== null) throw failure;
  },
  isExpected(err: unknown): boolean {
    return err instanceof LTXError;
  },
};
