/**
 * A static replica's main-thread wiring (ref §7.3 monitorLeaseAsReplica):
 * the replica client follows the primary at `lease.advertise-url`, each
 * verified LTX file goes to the FUSE thread as an `apply` command, and the
 * FUSE thread learns the role, the primary's name and its clock (`status`)
 * for `.primary`, `.lag` and read-only errors.
 */
import type { Config } from './config.js';
import { FuseApplier } from '../node/fuse-applier.js';
import { ReplicaClient } from '../node/replica-client.js';
import type { ReplicaNode } from '../node/replica-node.js';
import type { StoreChannel } from '../node/store-channel.js';

export interface FollowPrimaryOptions {
  readonly node: ReplicaNode;
  readonly channel: StoreChannel;
  readonly config: Config;
  readonly dataDir: string;
  readonly log: (line: string) => void;
  readonly debug: boolean;
  /** Stops following (shutdown). */
  readonly signal: AbortSignal;
}

/** Runs until `signal` aborts. */
export async function followPrimary(o: FollowPrimaryOptions): Promise<void> {
  const { node, channel, config } = o;
  const tellStatus = (): void =>
    channel.tell({
      type: 'status',
      role: 'replica',
      primaryHostname: node.isConnected ? config.lease.hostname : '',
      primaryTimestamp: node.lastPrimaryTimestamp,
      writeDeadline: null,
    });
  tellStatus();
  const client = new ReplicaClient({
    primaryURL: config.lease.advertiseURL,
    primaryName: config.lease.hostname !== '' ? config.lease.hostname : config.lease.advertiseURL,
    nodeID: node.nodeID,
    databases: config.lease.databases,
    dataDir: o.dataDir,
    reconnectDelayMs: config.lease.reconnectDelayMs,
    positions: () => node.posMap(),
    clusterID: () => node.clusterID(),
    adoptClusterID: (id) => node.adoptClusterID(id),
    applier: new FuseApplier(channel),
    onReady: () => {
      o.log('replica: caught up with the primary');
      node.markReady();
    },
    onPrimaryTimestamp: (ms) => {
      node.setPrimaryTimestamp(ms);
      tellStatus();
    },
    onConnected: () => {
      o.log(`replica: connected to the primary ${config.lease.hostname} at ${config.lease.advertiseURL}`);
      node.setConnected(true);
      tellStatus();
    },
    onDisconnected: (reason) => {
      if (o.debug) o.log(`replica: disconnected: ${reason}`);
      node.setConnected(false);
      tellStatus();
    },
    log: o.log,
  });
  await client.run(o.signal);
}
