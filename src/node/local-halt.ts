/**
 * HALT locks for programs on this node that ask through the node API
 * (`litefs run -with-halt-lock-on`, POST /litefs-ts/halt): the same lock a
 * `<db>-lock` file lock takes (src/fs/halt-forwarding.ts), held for as long as
 * the request stays open. Node has no fcntl(2), so our CLI cannot take the
 * file lock as LiteFS's does; litefs-go clients still use the file.
 */
import { randomBytes } from 'node:crypto';
import { ApiError } from '../http/api.js';
import { isValidDatabaseName } from '../store/db.js';
import type { StoreChannel } from './store-channel.js';

export class LocalHalts {
  constructor(private readonly channel: StoreChannel) {}

  /**
   * Resolves once this node may write `name` (at once on the primary), with
   * the function that ends the lock. A `signal` aborted while waiting ends
   * the wait.
   */
  async hold(name: string, signal: AbortSignal): Promise<() => Promise<void>> {
    if (!isValidDatabaseName(name)) throw new ApiError(400, `invalid database name: ${name}`);
    // 63 bits, never 0, as LiteFS's lock ids.
    const lockID = (randomBytes(8).readBigUInt64BE(0) >> 1n || 1n).toString();
    const drop = async (): Promise<void> => {
      await this.channel.request({ type: 'haltDrop', db: name, lockID });
    };
    const onAbort = (): void => void drop();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await this.channel.request({ type: 'haltHold', db: name, lockID });
      if (result.status !== 'ok') throw new Error(result.status === 'error' ? result.message : 'busy');
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    return drop;
  }
}
