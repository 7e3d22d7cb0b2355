/**
 * What every node keeps on the main thread whatever its role: the position
 * of each database (from the store's `tx` events and, at start-up, from the
 * newest LTX files), the /events fan-out and the Prometheus metrics.
 */
import type { Registry } from 'prom-client';
import type { EventSubscription } from '../http/api.js';
import type { PrimaryEventData } from '../http/events.js';
import type { Pos, PosMap } from '../http/posmap.js';
import type { StoreEvent } from '../store/messages.js';
import { EventHub } from './event-hub.js';
import { databaseNames, latestLTXFacts } from './ltx-facts.js';
import { nodeMetrics, type NodeMetrics } from './metrics.js';

export interface NodeCoreOptions {
  readonly dataDir: string;
  readonly registry: Registry;
  /** Register prom-client's process collectors (off in unit tests). */
  readonly defaultMetrics?: boolean;
  /** The `init`/`primaryChange` event data: this node's view of who is primary. */
  readonly primaryData: () => PrimaryEventData;
}

type TxEvent = Extract<StoreEvent, { type: 'tx' }>;

export class NodeCore {
  readonly metrics: NodeMetrics;
  private readonly events: EventHub;
  private readonly positions = new Map<string, Pos>();

  constructor(private readonly options: NodeCoreOptions) {
    this.metrics = nodeMetrics(options.registry, options.defaultMetrics ?? true);
    this.events = new EventHub(() => ({ type: 'init', data: options.primaryData() }));
    this.reload();
  }

  /**
   * Reads every database's position from its newest LTX file. The store's
   * start-up recovery may write LTX files after this node was made (committed
   * WAL frames, a re-base), and they come without a `tx` event: call this once
   * the store is open. Returns the positions that changed.
   */
  reload(): Map<string, Pos> {
    const changed = new Map<string, Pos>();
    for (const db of databaseNames(this.options.dataDir)) {
      const facts = latestLTXFacts(this.options.dataDir, db);
      if (facts === undefined) continue;
      const pos = { txid: facts.header.maxTXID, postApplyChecksum: facts.postApplyChecksum };
      const old = this.positions.get(db);
      if (old?.txid === pos.txid && old.postApplyChecksum === pos.postApplyChecksum) continue;
      this.setPosition(db, pos);
      changed.set(db, pos);
    }
    return changed;
  }

  /** The database's position as last reported by the store; undefined if unknown. */
  position(name: string): Pos | undefined {
    return this.positions.get(name);
  }

  databaseNames(): string[] {
    return [...this.positions.keys()].sort();
  }

  /** Every known position: a replica's /stream request body. */
  posMap(): PosMap {
    return new Map(this.positions);
  }

  /**
   * A transaction reached the store: committed locally (`applied` false) or
   * applied from the primary (`applied` true, which also sets the database's
   * lag from the LTX timestamp). Returns the new position.
   */
  onTx(event: TxEvent, applied: boolean): Pos {
    const pos = { txid: BigInt('0x' + event.txid), postApplyChecksum: BigInt('0x' + event.checksum) };
    this.setPosition(event.db, pos);
    const timestamp = event.timestamp;
    if (applied) this.metrics.dbLagSeconds.set({ db: event.db }, Math.max(0, Date.now() - timestamp) / 1000);
    else {
      this.metrics.dbCommitCount.inc({ db: event.db });
      this.metrics.dbLagSeconds.set({ db: event.db }, 0);
    }
    this.events.publish({
      type: 'tx',
      db: event.db,
      data: {
        txID: pos.txid,
        postApplyChecksum: pos.postApplyChecksum,
        pageSize: event.pageSize,
        commit: event.commit,
        timestamp,
      },
    });
    return pos;
  }

  /** Tells /events subscribers that the primary changed (ref §7.6). */
  publishPrimaryChange(reason = ''): void {
    const data = this.options.primaryData();
    this.events.publish({ type: 'primaryChange', data: reason === '' ? data : { ...data, reason } });
  }

  /** How many /events streams listen now. */
  get eventSubscribers(): number {
    return this.events.size;
  }

  subscribeEvents(): EventSubscription {
    const sub = this.events.subscribe();
    this.metrics.subscriberCount.set(this.events.size);
    return {
      next: (signal) => sub.next(signal),
      close: () => {
        sub.close();
        this.metrics.subscriberCount.set(this.events.size);
      },
    };
  }

  /** Ends every /events stream (shutdown). */
  close(): void {
    this.events.closeAll();
  }

  private setPosition(db: string, pos: Pos): void {
    this.positions.set(db, pos);
    this.metrics.dbTXID.set({ db }, Number(pos.txid));
    this.metrics.dbCount.set(this.positions.size);
  }
}
