/** Page-order rules of an LTX page block (formats.md A.3), shared by the encoder and the strict decoder. */
import { LTXError } from './errors.js';

/**
 * The page-order rules shared by the encoder and the strict decoder: a
 * snapshot is 1, 2, ... skipping only the lock page; an incremental file has
 * strictly increasing page numbers. `prev` is 0 before the first page.
 */
export function pageOrderError(snapshot: boolean, prev: number, pgno: number, lock: number): LTXError | null {
  if (snapshot) {
    if (prev === 0) {
      if (pgno !== 1) return new LTXError('snapshot-must-start-at-page-1', 'snapshot transaction file must start with page number 1');
      return null;
    }
    if (prev === lock - 1) {
      if (pgno !== prev + 2) {
        return new LTXError(
          'nonsequential-page-numbers',
          `nonsequential page numbers in snapshot transaction (skip lock page): ${prev},${pgno}`,
        );
      }
      return null;
    }
    if (pgno !== prev + 1) {
      return new LTXError('nonsequential-page-numbers', `nonsequential page numbers in snapshot transaction: ${prev},${pgno}`);
    }
    return null;
  }
  if (prev !== 0 && pgno <= prev) return new LTXError('out-of-order-page-numbers', `out-of-order page numbers: ${prev},${pgno}`);
  return null;
}
