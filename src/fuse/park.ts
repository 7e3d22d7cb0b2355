/**
 * Whether the FUSE thread is parked in its blocking read of /dev/fuse, or
 * about to be. A message for the thread (a command from the main thread,
 * notices written by the notifier) needs a wake-up request (a STATFS of the
 * mount: a round trip through the kernel and, from the main thread, a
 * thread-pool job) only then; a busy thread drains its ports after every
 * request anyway.
 *
 * No lost wake-up: the thread sets the flag *before* its last drain ahead
 * of read(), and a sender posts *before* it reads the flag. A message that
 * the drain missed was posted after it, so its sender finds the flag set.
 */
export const PARK_SHARED_BYTES = 4;

export class ParkFlag {
  private readonly cell: Int32Array;

  constructor(shared: SharedArrayBuffer) {
    this.cell = new Int32Array(shared, 0, 1);
  }

  /** FUSE thread: before the drain that precedes read(). */
  park(): void {
    Atomics.store(this.cell, 0, 1);
  }

  /** FUSE thread: once read() returned. */
  unpark(): void {
    Atomics.store(this.cell, 0, 0);
  }

  /** Senders: after posting, true when the message needs a wake-up request. */
  get parked(): boolean {
    return Atomics.load(this.cell, 0) === 1;
  }
}
