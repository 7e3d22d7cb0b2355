/**
 * Bounds how long a transaction waits for its group sync (ARCHITECTURE §7):
 * the FUSE thread makes LTX files of WAL commits (and a replica's applied
 * pages) durable in groups, at a checkpoint, a WAL restart or when a group
 * is full, which an idle database may not reach for a long time. A second
 * after the first transaction since the last sync, this sends the FUSE
 * thread a `sync` command; under a steady load that is one group sync a
 * second.
 */

/** How long a transaction may wait for its group sync, in ms. */
export const GROUP_SYNC_DELAY_MS = 1000;

export interface TimerFunctions {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const NODE_TIMERS: TimerFunctions = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class GroupSyncTimer {
  private handle: unknown = null;
  private closed = false;

  constructor(
    /** Sends the `sync` command. */
    private readonly send: () => void,
    private readonly delayMs = GROUP_SYNC_DELAY_MS,
    private readonly timers: TimerFunctions = NODE_TIMERS,
  ) {}

  /** A transaction was committed or applied. */
  onTx(): void {
    if (this.handle !== null || this.closed) return;
    this.handle = this.timers.setTimeout(() => {
      this.handle = null;
      this.send();
    }, this.delayMs);
  }

  close(): void {
    this.closed = true;
    if (this.handle !== null) this.timers.clearTimeout(this.handle);
    this.handle = null;
  }
}
