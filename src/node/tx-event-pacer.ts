/**
 * The main thread's half of fs/event-outbox.ts: tells the FUSE thread
 * whether this node needs every commit's `tx` event at once, and closes each
 * window of held commits TX_WINDOW_MS after it opened. A node that needs
 * none at once (a primary nobody streams from or listens to) is woken a few
 * times per window instead of once per commit; what it learns late is its
 * metrics and the positions it publishes, by at most one window.
 */
import type { StoreCommand } from '../store/messages.js';
import { NODE_TIMERS, type TimerFunctions } from './group-sync-timer.js';

/** How long a commit's `tx` event may wait on the FUSE thread, in ms. */
export const TX_WINDOW_MS = 50;

export interface TxEventPacerOptions {
  /** True while something needs each commit at once (a stream, an /events subscriber, the replica role). */
  readonly wantsEveryTx: () => boolean;
  /** Sends a command to the FUSE thread (waking it if it sleeps). */
  readonly tell: (cmd: StoreCommand) => void;
  readonly windowMs?: number;
  readonly timers?: TimerFunctions;
}

export class TxEventPacer {
  /** What the FUSE thread was last told; it starts prompt. */
  private prompt = true;
  private flushTimer: unknown = null;
  private closed = false;

  constructor(private readonly o: TxEventPacerOptions) {}

  /** A `tx` event arrived: the first of a window, or any while commits are sent at once. */
  onTx(): void {
    this.check();
    if (this.prompt || this.flushTimer !== null || this.closed) return;
    const timers = this.o.timers ?? NODE_TIMERS;
    this.flushTimer = timers.setTimeout(() => {
      this.flushTimer = null;
      if (this.closed) return;
      this.o.tell({ type: 'flushTx' });
      this.check();
    }, this.o.windowMs ?? TX_WINDOW_MS);
  }

  /**
   * Something that decides the answer changed (a stream or a subscriber
   * came or went, the role changed): tell the FUSE thread if it differs.
   */
  check(): void {
    if (this.closed) return;
    const prompt = this.o.wantsEveryTx();
    if (prompt === this.prompt) return;
    this.prompt = prompt;
    this.o.tell({ type: 'txEvents', prompt });
  }

  close(): void {
    this.closed = true;
    if (this.flushTimer !== null) (this.o.timers ?? NODE_TIMERS).clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }
}
