import { type Cell, figure, missing } from './cell.js';
import { errorText } from './cleanup.js';
import type { BenchTarget } from './mounts.js';

/**
 * A suite is a list of measurements run against every column. All columns are
 * mounted together and each measurement runs on them back to back, round
 * after round, so a change in the machine's load (other people's builds, disk
 * flushes) hits every column alike instead of whichever happened to run then.
 */
export interface Measurement {
  /** The cells it fills, in the order run() returns them. */
  ids: string[];
  /** Which of several rounds counts: outside load only ever makes a figure worse. */
  better: 'lower' | 'higher';
  rounds: number;
  run(dir: string): Promise<number[]>;
}

export interface Suite {
  name: string;
  /** Per-column set-up before any measurement (test files, populated databases). */
  prepare(dir: string): Promise<void>;
  measurements: Measurement[];
}

export type ColumnKey = 'plain' | 'ours' | 'pll' | 'litefs';

/** How to get a column's folder, or why the column cannot run. */
export interface ColumnPlan {
  key: ColumnKey;
  open: (() => Promise<BenchTarget>) | string;
}

/** A column's figures by id, or why it has none. */
export type ColumnResult = Map<string, Cell> | string;

export async function runSuite(
  suite: Suite,
  plans: ColumnPlan[],
  progress: (message: string) => void,
): Promise<Map<ColumnKey, ColumnResult>> {
  const results = new Map<ColumnKey, ColumnResult>();
  const live: { key: ColumnKey; target: BenchTarget; cells: Map<string, Cell> }[] = [];
  try {
    for (const plan of plans) {
      if (typeof plan.open === 'string') {
        results.set(plan.key, plan.open);
        continue;
      }
      try {
        const target = await plan.open();
        live.push({ key: plan.key, target, cells: new Map() });
        await suite.prepare(target.dir);
      } catch (err) {
        results.set(plan.key, errorText(err));
        progress(`${suite.name}: ${plan.key} unavailable: ${errorText(err)}`);
        const failed = live.find((l) => l.key === plan.key);
        if (failed !== undefined) {
          live.splice(live.indexOf(failed), 1);
          await failed.target.stop();
        }
      }
    }
    for (const m of suite.measurements) {
      progress(`${suite.name}: ${m.ids.join(', ')}`);
      for (let round = 0; round < m.rounds; round++) {
        for (const col of live) {
          if (m.ids.some((id) => col.cells.get(id) !== undefined && 'missing' in (col.cells.get(id) as Cell))) continue;
          const dead = col.target.failure();
          if (dead !== null) {
            for (const id of m.ids) col.cells.set(id, missing(dead));
            continue;
          }
          try {
            const values = await m.run(col.target.dir);
            // The first figure decides which round counts; the others come from the same round.
            if (isBetter(col.cells.get(m.ids[0] ?? ''), values[0] ?? NaN, m.better)) {
              m.ids.forEach((id, i) => col.cells.set(id, figure(values[i] ?? NaN)));
            }
          } catch (err) {
            // A daemon that died mid-measurement explains the failure better than the client's errno.
            await settle();
            const reason = col.target.failure() ?? errorText(err);
            for (const id of m.ids) col.cells.set(id, missing(reason));
          }
        }
      }
    }
    for (const col of live) results.set(col.key, col.cells);
  } finally {
    for (const col of live) {
      try {
        await col.target.stop();
      } catch (err) {
        // Its figures stand; the mount itself is reported and the next suite still runs.
        progress(`${suite.name}: stopping ${col.key} failed: ${errorText(err)}`);
      }
    }
  }
  return results;
}

function isBetter(old: Cell | undefined, value: number, better: 'lower' | 'higher'): boolean {
  if (old === undefined || !('value' in old)) return true;
  return better === 'lower' ? value < old.value : value > old.value;
}

/** Lets pending child-exit events run, so a daemon's death is known before it is asked about. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 50));
}
