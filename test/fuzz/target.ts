/**
 * A fuzz target: one decoder fed random and mutated inputs. `run` must either
 * return normally or throw an error for which `isExpected` is true (the
 * module's typed errors). Anything else, a hang, or memory growth beyond the
 * runner's bound is a finding.
 */
export interface FuzzTarget {
  /** Short stable name, e.g. 'ltx-decoder'. */
  readonly name: string;
  /** Valid inputs (usually fixtures) that mutations start from. */
  seeds(): Buffer[];
  /** Decode one input completely. */
  run(input: Buffer): void;
  /** True for the typed errors the decoder is allowed to throw. */
  isExpected(err: unknown): boolean;
}
