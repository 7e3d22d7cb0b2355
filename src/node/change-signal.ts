/**
 * Wakes whoever waits for "something changed" (a position, the role, the
 * known primary) without polling: the proxy's reads that wait for a TXID
 * and its writes that wait for a primary.
 */
export class ChangeSignal {
  private readonly waiters = new Set<() => void>();

  /** Resolves at the next notify(), or after `ms`. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      // A waiter alone must not keep the process alive at shutdown.
      const timer = setTimeout(done, ms).unref();
      this.waiters.add(done);
    });
  }

  notify(): void {
    for (const done of [...this.waiters]) done();
  }
}
