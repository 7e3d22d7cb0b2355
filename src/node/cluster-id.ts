/**
 * The cluster id (ref §7.1): `LFSC` + 16 uppercase hex digits, persisted in
 * `<data>/clusterid` so two distinct clusters can never merge. Generated on
 * first start, loaded afterwards; invalid content stops start-up.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isValidClusterID } from '../http/cluster-id.js';
import { writeFileDurably } from './durable-file.js';

export class ClusterIDError extends Error {
  override readonly name = 'ClusterIDError';
}

export const CLUSTER_ID_FILE = 'clusterid';

export { isValidClusterID };

export function generateClusterID(): string {
  return 'LFSC' + randomBytes(8).toString('hex').toUpperCase();
}

/** Reads `<dataDir>/clusterid`, creating it (atomically: tmp, fsync, rename, fsync dir) if missing. */
export function loadOrCreateClusterID(dataDir: string): string {
  const id = loadClusterID(dataDir);
  if (id !== '') return id;
  const created = generateClusterID();
  saveClusterID(dataDir, created);
  return created;
}

/**
 * Reads `<dataDir>/clusterid`; '' if there is none yet. A replica starts
 * without one and adopts its primary's (ref §7.1).
 */
export function loadClusterID(dataDir: string): string {
  const path = join(dataDir, CLUSTER_ID_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
  const id = text.trim();
  if (!isValidClusterID(id)) throw new ClusterIDError(`invalid cluster id in ${path}: ${JSON.stringify(id)}`);
  return id;
}

/** Persists a cluster id (atomically: tmp, fsync, rename, fsync dir). */
export function saveClusterID(dataDir: string, id: string): void {
  if (!isValidClusterID(id)) throw new ClusterIDError(`invalid cluster id: ${JSON.stringify(id)}`);
  writeFileDurably(join(dataDir, CLUSTER_ID_FILE), id + '\n');
}
