/**
 * Cluster ids on the wire (ref §7.1): `LFSC` + 16 upper-case hex digits,
 * sent by every node in the `Litefs-Cluster-Id` response header and, by
 * litefs-ts clients, in the same request header (ARCHITECTURE §2).
 */

/** Header name as Node's HTTP layers give it (lower case). */
export const CLUSTER_ID_HEADER = 'litefs-cluster-id';

export function isValidClusterID(id: string): boolean {
  return /^LFSC[0-9A-F]{16}$/.test(id);
}
