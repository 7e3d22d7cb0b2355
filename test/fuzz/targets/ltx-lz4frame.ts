/**
 * Fuzz target: the LZ4 frame decoder on its own (the frames inside the LZ4
 * LTX fixtures), pushed in pieces. Only LZ4FrameError is expected.
 */
import { LZ4FrameDecoder } from '../../../src/ltx/lz4frame.js';
import { LZ4FrameError } from '../../../src/ltx/errors.js';
import type { FuzzTarget } from '../target.js';
import { ltxFixtureFiles } from './ltx-decoder.js';

export const target: FuzzTarget = {
  name: 'ltx-lz4frame',
  seeds(): Buffer[] {
    // Header (100 bytes) and trailer (16) stripped from every compressed fixture.
    return ltxFixtureFiles()
      .filter((f) => f.length > 116 && f[7] === 1)
      .map((f) => f.subarray(100, f.length - 16));
  },
  run(input: Buffer): void {
    const dec = new LZ4FrameDecoder();
    let off = 0;
    let step = 1;
    while (!dec.done) {
      if (dec.pending > 0) {
        dec.consume(Math.min(dec.pending, step));
        continue;
      }
      if (off >= input.length) return; // truncated: the caller reports EOF
      off += dec.push(input, off, Math.min(step, input.length - off));
      step = (step * 13) % 5000 + 1;
    }
  },
  isExpected(err: unknown): boolean {
    return err instanceof LZ4FrameError;
  },
};
