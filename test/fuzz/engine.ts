import type { FuzzTarget } from './target.js';

/** Small, fast, seedable PRNG (mulberry32) so every fuzz run can be replayed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

const INTERESTING_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x200, 0x1000, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** One mutated input derived from the seeds (or pure random bytes). */
export function makeInput(rng: Rng, seeds: readonly Buffer[]): Buffer {
  if (seeds.length === 0 || rng.int(10) === 0) return rng.bytes(rng.int(4096));
  const base = Buffer.from(seeds[rng.int(seeds.length)]!);
  let out: Buffer = base;
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) out = mutateOnce(rng, out, seeds);
  return out;
}

function mutateOnce(rng: Rng, input: Buffer, seeds: readonly Buffer[]): Buffer {
  const len = input.length;
  switch (rng.int(8)) {
    case 0: {
      // flip a few bits
      if (len === 0) return input;
      for (let i = 1 + rng.int(8); i > 0; i--) {
        const at = rng.int(len);
        input[at] = input[at]! ^ (1 << rng.int(8));
      }
      return input;
    }
    case 1: {
      // overwrite a byte
      if (len > 0) input[rng.int(len)] = rng.int(256);
      return input;
    }
    case 2: {
      // an interesting 32-bit value, big-endian (most of our formats)
      if (len < 4) return input;
      input.writeUInt32BE(INTERESTING_U32[rng.int(INTERESTING_U32.length)]!, rng.int(len - 3));
      return input;
    }
    case 3: {
      // same, little-endian (shm, lz4 frame words)
      if (len < 4) return input;
      input.writeUInt32LE(INTERESTING_U32[rng.int(INTERESTING_U32.length)]!, rng.int(len - 3));
      return input;
    }
    case 4:
      // truncate
      return input.subarray(0, rng.int(len + 1));
    case 5:
      // extend with random bytes
      return Buffer.concat([input, rng.bytes(1 + rng.int(64))]);
    case 6: {
      // duplicate or delete a chunk
      if (len === 0) return input;
      const at = rng.int(len);
      const n = 1 + rng.int(Math.min(256, len - at));
      return rng.int(2) === 0
        ? Buffer.concat([input.subarray(0, at), input.subarray(at, at + n), input.subarray(at)])
        : Buffer.concat([input.subarray(0, at), input.subarray(at + n)]);
    }
    default: {
      // splice with another seed
      const other = seeds[rng.int(seeds.length)]!;
      const cut = rng.int(len + 1);
      const from = rng.int(other.length + 1);
      return Buffer.concat([input.subarray(0, cut), other.subarray(from)]);
    }
  }
}

export interface FuzzFinding {
  readonly target: string;
  readonly seed: number;
  readonly caseIndex: number;
  readonly error: string;
  readonly inputHex: string;
}

/** Bound on memory a decoder may hold while decoding any input (checked between cases). */
export const MAX_ARRAY_BUFFER_BYTES = 512 * 1024 * 1024;

/**
 * Runs `cases` inputs through one target. Returns the first finding (an
 * unexpected exception or memory growth beyond the bound), or null.
 */
export function fuzzTarget(
  target: FuzzTarget,
  seed: number,
  cases: number,
  onProgress?: (done: number) => void,
): FuzzFinding | null {
  const rng = new Rng(seed);
  const seeds = target.seeds();
  for (let i = 0; i < cases; i++) {
    const input = makeInput(rng, seeds);
    try {
      target.run(input);
    } catch (err) {
      if (!target.isExpected(err)) {
        const error = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err);
        return { target: target.name, seed, caseIndex: i, error, inputHex: input.subarray(0, 4096).toString('hex') };
      }
    }
    if ((i & 1023) === 1023) {
      const used = process.memoryUsage().arrayBuffers;
      if (used > MAX_ARRAY_BUFFER_BYTES) {
        return { target: target.name, seed, caseIndex: i, error: `array buffers grew to ${used} bytes`, inputHex: '' };
      }
      onProgress?.(i + 1);
    }
  }
  return null;
}
