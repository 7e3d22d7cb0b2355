/**
 * The highest primary epoch this node has seen (ARCHITECTURE §3.2),
 * persisted in `<data>/epoch` as a decimal number and a newline, so that a
 * restarted replica still refuses a stream from a deposed primary.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurably } from './durable-file.js';

export const EPOCH_FILE = 'epoch';

export class EpochFileError extends Error {
  override readonly name = 'EpochFileError';
}

/** 0n when the file does not exist yet. */
export function loadEpoch(dataDir: string): bigint {
  const path = join(dataDir, EPOCH_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0n;
    throw err;
  }
  const t = text.trim();
  if (!/^[0-9]{1,20}$/.test(t)) throw new EpochFileError(`invalid epoch in ${path}: ${JSON.stringify(t)}`);
  return BigInt(t);
}

/** Keeps the highest epoch seen; returns it. Only a higher epoch is written. */
export class EpochKeeper {
  private highest: bigint;

  constructor(private readonly dataDir: string) {
    this.highest = loadEpoch(dataDir);
  }

  get value(): bigint {
    return this.highest;
  }

  /** Records `epoch` if it is higher than any seen (durably, before returning). */
  observe(epoch: bigint): bigint {
    if (epoch > this.highest) {
      writeFileDurably(join(this.dataDir, EPOCH_FILE), `${epoch}\n`);
      this.highest = epoch;
    }
    return this.highest;
  }
}
