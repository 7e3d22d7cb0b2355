/**
 * The node as the HTTP proxy sees it (http/proxy/server.ts): role, known
 * primary, lag and positions, the exact position asked of the FUSE thread.
 */
import type { ProxyNode } from '../http/proxy/server.js';
import type { ClusterNode } from './cluster-node.js';
import type { StoreChannel } from './store-channel.js';

export function proxyNodeOf(node: ClusterNode, channel: StoreChannel): ProxyNode {
  return {
    isPrimary: () => node.role === 'primary',
    knownPrimary: () => node.knownPrimary,
    lagMs: () => node.lagMs(),
    txid: (db) => node.position(db)?.txid,
    async currentTXID(db) {
      // A primary's commits may be held on the FUSE thread for a window
      // (fs/event-outbox.ts); the barrier's answer comes after all of them.
      // A replica hears of every apply at once.
      if (node.role === 'primary') await channel.request({ type: 'txBarrier' });
      return node.position(db)?.txid;
    },
    changed: (ms) => node.changed(ms),
  };
}
