/**
 * `lease.promote: true` (ref §12.3 step 9): once ready, a candidate that is
 * not the primary asks the current primary to hand the lease over, then
 * waits (up to 10 s, as LiteFS) until it is the primary.
 */
import type { ClusterNode } from '../node/cluster-node.js';

const PROMOTE_WAIT_MS = 10_000;

export async function promoteSelf(node: ClusterNode, log: (line: string) => void, stopped: Promise<unknown>): Promise<void> {
  log('lease.promote: asking the primary to hand over');
  await node.promote(AbortSignal.timeout(PROMOTE_WAIT_MS));
  const deadline = Date.now() + PROMOTE_WAIT_MS;
  let stop = false;
  void stopped.then(() => (stop = true));
  while (node.role !== 'primary') {
    if (stop) return;
    if (Date.now() > deadline) throw new Error(`not primary ${PROMOTE_WAIT_MS} ms after the handoff request`);
    await new Promise((r) => setTimeout(r, 10));
  }
  log('lease.promote: this node is the primary');
}
