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
  /** `onRefused` runs before a refusal is reported (the node re-reads its positions). */
  constructor(
    private readonly channel: StoreChannel,
    private readonly onRefused: () => void = () => {},
  ) {}

  /** See ApplyCommand. */
  async apply(db: string, paths: readonly string[], quarantine: QuarantineRequest | null, syncDatabase: boolean): Promise<void> {
    const result = await this.channel.request({ type: 'apply', db, paths, quarantine, syncDatabase });
    if (result.status === 'ok') return;
    this.onRefused();
    throw new ApplyError(`${db}: ${result.status === 'error' ? result.message : 'store busy'}`);
  }
}
