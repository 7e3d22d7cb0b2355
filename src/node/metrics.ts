/**
 * The node's Prometheus metrics (ref §7.8) for what a single static primary
 * knows on the main thread: LiteFS's names and help texts, plus the process
 * collectors (Go's runtime collectors have no Node counterpart; prom-client's
 * defaults take their place).
 */
import { Counter, Gauge, collectDefaultMetrics, type Registry } from 'prom-client';

export interface NodeMetrics {
  readonly dbCount: Gauge;
  readonly isPrimary: Gauge;
  readonly subscriberCount: Gauge;
  readonly dbTXID: Gauge<'db'>;
  readonly dbCommitCount: Counter<'db'>;
  /** Seconds behind the primary (0 on the primary and before the first sync). */
  readonly lagSeconds: Gauge;
  /** Per database: now − the LTX timestamp when a replica applied it (0 after a local commit). */
  readonly dbLagSeconds: Gauge<'db'>;
  /** Snapshots that replaced local data not provably a prefix of the primary's history (ARCHITECTURE §3.1). */
  readonly quarantineCount: Counter<'db'>;
  /** Primary/replica transitions, by the role entered and why. */
  readonly roleChangeCount: Counter<'role' | 'reason'>;
  /** The TXID the backup holds of each database, as this node last uploaded or read it. */
  readonly backupTXID: Gauge<'db'>;
  /** Files uploaded to the backup, by kind (`incremental`: compacted new files; `snapshot`). */
  readonly backupUploadCount: Counter<'db' | 'kind'>;
  /** Backup passes that failed (the backup unreachable or refusing); each is retried. */
  readonly backupErrorCount: Counter;
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
  return (registry.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

/** Registers (once per registry) and returns the node metrics. */
export function nodeMetrics(registry: Registry, withDefaults = true): NodeMetrics {
  if (withDefaults && registry.getSingleMetric('process_cpu_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry });
  }
  return {
    dbCount: gauge(registry, 'litefs_db_count', 'Number of managed databases.'),
    isPrimary: gauge(registry, 'litefs_is_primary', 'Primary status of the node.'),
    subscriberCount: gauge(registry, 'litefs_subscriber_count', 'Number of connected subscribers'),
    dbTXID: gauge(registry, 'litefs_db_txid', 'Current transaction ID.', ['db']),
    dbCommitCount: counter(registry, 'litefs_db_commit_count', 'Number of database commits.', ['db']),
    lagSeconds: gauge(registry, 'litefs_lag_seconds', 'Lag behind the primary node, in seconds'),
    dbLagSeconds: gauge(registry, 'litefs_db_lag_seconds', 'Latency between generating an LTX file on the primary and applying it on the replica.', ['db']),
    quarantineCount: counter(registry, 'litefs_quarantine_count', 'Local data copied aside before a snapshot replaced it.', ['db']),
    roleChangeCount: counter(registry, 'litefs_role_change_count', 'Changes of this node between primary and replica, by reason.', ['role', 'reason']),
    backupTXID: gauge(registry, 'litefs_backup_txid', 'Transaction ID the backup holds, as this node last uploaded or read it.', ['db']),
    backupUploadCount: counter(registry, 'litefs_backup_upload_count', 'Files uploaded to the backup, by kind.', ['db', 'kind']),
    backupErrorCount: counter(registry, 'litefs_backup_error_count', 'Backup passes that failed and were retried.', []),
  };
}
