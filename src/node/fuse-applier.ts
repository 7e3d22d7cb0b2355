/**
 * The replica client's way to the store: each verified LTX file becomes an
 * `apply` command for the FUSE thread, which owns the databases and their
 * locks (ARCHITECTURE §4). Resolves once the transaction is applied and the
 * kernel's caches are invalidated.
 */
import type { QuarantineRequest } from '../store/messages.js';
import type { StoreChannel } from './store-channel.js';

/** The store refused or failed an apply (position mismatch, I/O error); the stream reconnects. */
export class ApplyError extends Error {
  override readonly name = 'ApplyError';
}

export class FuseApplier {
  constructor(private readonly channel: StoreChannel) {}

  async apply(db: string, path: string, quarantine: QuarantineRequest | null): Promise<void> {
    const result = await this.channel.request({ type: 'apply', db, path, quarantine });
    if (result.status === 'error') throw new ApplyError(`${db}: ${result.message}`);
    if (result.status === 'busy') throw new ApplyError(`${db}: store busy`);
  }
}
