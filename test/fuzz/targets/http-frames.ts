/**
 * Fuzz target: the /stream frame decoder and the position-map decoder over
 * arbitrary bytes. Both must either decode or throw one of src/http's typed
 * wire errors; the frame input is also fed in small pieces to exercise the
 * decoder's handling of fields split across pushes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { decodeFrames, FrameDecoder } from '../../../src/http/frames.js';
import { decodePosMap } from '../../../src/http/posmap.js';
import { WireFormatError } from '../../../src/http/errors.js';
import { fixture } from '../../helpers/paths.js';
import type { FuzzTarget } from '../target.js';

function wireSeeds(): Buffer[] {
  const dir = fixture('wire');
  return readdirSync(dir)
    .filter((n) => n.startsWith('stream-') && (n.endsWith('.body.bin') || n.endsWith('.req.bin')))
    .sort()
    .map((n) => readFileSync(`${dir}/${n}`));
}

/** Runs `fn`, letting only the codecs' typed errors through silently. */
function expectWireError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof WireFormatError)) throw err;
  }
}

export const target: FuzzTarget = {
  name: 'http-frames',
  seeds: wireSeeds,
  run(input: Buffer): void {
    expectWireError(() => decodeFrames(input));
    // The first byte picks how the push decoder is fed, so mutations explore split fields too.
    const step = input.length > 0 ? (input[0]! % 7) + 1 : 1;
    let payload = 0;
    expectWireError(() => {
      const dec = new FrameDecoder();
      for (let off = 0; off < input.length; off += step) {
        dec.push(input.subarray(off, off + step), (ev) => {
          if (ev.kind === 'ltx-data') payload += ev.data.length;
        });
      }
      dec.end();
    });
    if (payload > input.length) throw new Error('frame decoder produced more payload than its input');
    expectWireError(() => decodePosMap(input));
  },
  isExpected(err: unknown): boolean {
    return err instanceof WireFormatError;
  },
};
