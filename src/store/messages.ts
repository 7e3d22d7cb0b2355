/**
 * Messages between the FUSE thread (which owns the store) and the main
 * thread (ARCHITECTURE §4). The one module both threads import: plain,
 * structured-cloneable objects only.
 */

/** FUSE thread → main thread. */
export type StoreEvent =
  /** A transaction was committed and its LTX file is durable. */
  | {
      readonly type: 'tx';
      readonly db: string;
      /** 16 hex digits, as in LTX file names. */
      readonly txid: string;
      /** Post-apply checksum, 16 hex digits. */
      readonly checksum: string;
      /** Pages in the LTX file. */
      readonly pages: number;
    }
  /**
   * The store hit an error it cannot report to SQLite (a WAL commit failed
   * after SQLite considered the transaction committed). The daemon must
   * stop; start-up recovery makes the database and its LTX files agree.
   */
  | { readonly type: 'fatal'; readonly db: string; readonly message: string };

/** Options the main thread gives the store (structured-cloned into the worker). */
export interface StoreOptions {
  /** `data.dir`. */
  readonly dataDir: string;
  /** `data.compress`: LZ4-compress LTX page blocks. */
  readonly compress: boolean;
  /** `strict-verify`: recompute the database checksum from disk after every commit. */
  readonly strictVerify: boolean;
  /** Node id written into LTX headers (0 = unknown). */
  readonly nodeId: string;
}
