import type { TimerFunctions } from '../../../src/node/group-sync-timer.js';

/** A hand-driven clock: `fire()` runs the pending timeout. */
export class ManualTimers implements TimerFunctions {
  pending: { fn: () => void; ms: number } | null = null;
  armed = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    this.armed++;
    this.pending = { fn, ms };
    return this.pending;
  }
  clearTimeout(handle: unknown): void {
    if (handle === this.pending) this.pending = null;
  }
  fire(): void {
    const p = this.pending;
    this.pending = null;
    p?.fn();
  }
}
