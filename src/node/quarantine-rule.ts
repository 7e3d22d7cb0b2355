/**
 * When a replica must set its local copy of a database aside before a
 * snapshot from the primary replaces it (ARCHITECTURE §3.1): whenever the
 * local data is not provably an earlier state of the primary's history.
 * LiteFS just overwrites it (issue #282); we copy it to
 * `<data>/quarantine/<db>/<time>/` first. Pure: positions and the primary's
 * stated reason in, the quarantine reason (or null) out.
 */
import type { Pos } from '../http/posmap.js';

export interface SnapshotFacts {
  /** This node's position of the database; undefined or TXID 0 = nothing local. */
  readonly local: Pos | undefined;
  /** Where the snapshot leaves the database: (MaxTXID, post-apply checksum). */
  readonly snapshot: Pos;
  /**
   * The SnapshotReason frame's text that preceded the snapshot, undefined if
   * none came (a Go primary, or one not asked for reasons).
   */
  readonly reason: string | undefined;
}

/**
 * The quarantine reason for applying this snapshot, or null when nothing
 * local can be lost. In order:
 * 1. nothing local (TXID 0) → null;
 * 2. local position equals the snapshot's → null (same TXID and checksum:
 *    the snapshot holds exactly the local pages);
 * 3. `empty` → null, `behind` → null when the local TXID is below the
 *    snapshot's; either claim contradicted by the local position is treated
 *    like a missing reason (the primary's view of us was stale or wrong);
 * 4. `ahead` / `diverged` → that reason;
 * 5. a reason this build does not know → that reason (unknown is not safe);
 * 6. no reason → `unknown` (a Go primary cannot tell us why).
 */
export function quarantineReason(facts: SnapshotFacts): string | null {
  const { local, snapshot, reason } = facts;
  if (local === undefined || local.txid === 0n) return null;
  if (local.txid === snapshot.txid && local.postApplyChecksum === snapshot.postApplyChecksum) return null;
  switch (reason) {
    case 'empty':
      return 'unknown';
    case 'behind':
      return local.txid < snapshot.txid ? null : 'unknown';
    case undefined:
      return 'unknown';
    default:
      return reason;
  }
}
