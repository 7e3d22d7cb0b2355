/**
 * The FUSE thread's way out to the main thread for store events.
 *
 * Every message wakes the main thread, and on a machine whose idle CPUs halt
 * (this project's VMs) that wake-up costs about as much as a FUSE request:
 * one per commit took a quarter to a third off WAL commit rates. The main
 * thread needs each commit at once only when something waits for it (a
 * replica streaming, an /events subscriber, a replica's own applies); it
 * says so with the `txEvents` command (node/tx-event-pacer.ts). Otherwise
 * commits go out in windows: the first one at once, which tells the main
 * thread to send `flushTx` a moment later, and the rest with that flush.
 *
 * Held commits go out before any other event, so the main thread sees
 * events in the order they happened, only some of them later. A held
 * commit drops its LTX bytes (kept only so a streaming primary need not
 * read the file back; nothing streams while commits are held).
 */
import type { StoreEvent } from '../store/messages.js';

type TxEvent = Extract<StoreEvent, { type: 'tx' }>;

export class EventOutbox {
  /** Every commit at once (the state until the main thread says otherwise). */
  private prompt = true;
  /** A commit went out since the last flushTx: the main thread will send one. */
  private windowOpen = false;
  private held: TxEvent[] = [];

  constructor(private readonly send: (event: StoreEvent) => void) {}

  post(event: StoreEvent): void {
    if (event.type === 'tx' && !this.prompt) {
      if (this.windowOpen) {
        const { ltx: _bytes, ...rest } = event;
        this.held.push(rest);
        return;
      }
      this.windowOpen = true;
    }
    this.sendHeld();
    this.send(event);
  }

  /** The `txEvents` command. */
  setPrompt(prompt: boolean): void {
    this.prompt = prompt;
    if (prompt) this.flushWindow();
  }

  /** The `flushTx` command: the window closes; the next commit opens another. */
  flushWindow(): void {
    this.windowOpen = false;
    this.sendHeld();
  }

  private sendHeld(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const event of held) this.send(event);
  }
}
