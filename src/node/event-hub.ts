/**
 * Fan-out of /events (ref §7.6): every subscriber first gets an `init` event,
 * then each published event. A subscriber that falls 1024 events behind is
 * dropped (its stream ends), as LiteFS drops a full channel, so one slow
 * client never holds memory for the others.
 */
import type { EventSubscription } from '../http/api.js';
import type { LiteFSEvent } from '../http/events.js';

export const SUBSCRIBER_BUFFER = 1024;

class Subscriber implements EventSubscription {
  private readonly queue: LiteFSEvent[] = [];
  private wake: (() => void) | undefined;
  closed = false;

  constructor(
    first: LiteFSEvent,
    private readonly detach: (s: Subscriber) => void,
  ) {
    this.queue.push(first);
  }

  /** False when the buffer is full (the subscriber is then closed). */
  push(ev: LiteFSEvent): boolean {
    if (this.closed) return false;
    if (this.queue.length >= SUBSCRIBER_BUFFER) {
      this.close();
      return false;
    }
    this.queue.push(ev);
    this.wake?.();
    return true;
  }

  async next(signal: AbortSignal): Promise<LiteFSEvent | undefined> {
    while (this.queue.length === 0) {
      if (this.closed || signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return this.queue.shift();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach(this);
    this.wake?.();
  }
}

export class EventHub {
  private readonly subscribers = new Set<Subscriber>();

  constructor(private readonly initEvent: () => LiteFSEvent) {}

  subscribe(): EventSubscription {
    const sub = new Subscriber(this.initEvent(), (s) => this.subscribers.delete(s));
    this.subscribers.add(sub);
    return sub;
  }

  publish(ev: LiteFSEvent): void {
    for (const sub of [...this.subscribers]) sub.push(ev);
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Ends every subscription (shutdown). */
  closeAll(): void {
    for (const sub of [...this.subscribers]) sub.close();
  }
}
