import { join } from 'node:path';
import { lastJsonLine, numberField, runProgram } from './child.js';
import type { CleanupStack } from './cleanup.js';
import type { Measurement, Suite } from './suite.js';

/** A row of the SQLite table; `target` is the minimum share of the plain folder's rate we aim for. */
export interface SqliteScenario {
  id: string;
  label: string;
  unit: string;
  target?: number;
  /** Go LiteFS v0.5.11's share of the plain folder on this machine kind (from the issue), where it was measured. */
  goLiteFS?: number;
  /** Minimum share of the plain folder for our LiteFS mount. */
  liteFSTarget?: number;
}

/** Our LiteFS mount aims for at least twice Go LiteFS's share. */
const twiceGo = (share: number, floor = 0): { goLiteFS: number; liteFSTarget: number } => ({
  goLiteFS: share,
  liteFSTarget: Math.max(2 * share, floor),
});

export const SQLITE_SCENARIOS: readonly SqliteScenario[] = [
  { id: 'commit-delete-full', label: 'single-row commit, DELETE, synchronous=FULL', unit: 'commits/s', ...twiceGo(0.17) },
  { id: 'commit-delete-normal', label: 'single-row commit, DELETE, synchronous=NORMAL', unit: 'commits/s' },
  { id: 'commit-wal-full', label: 'single-row commit, WAL, synchronous=FULL', unit: 'commits/s', ...twiceGo(0.1) },
  { id: 'commit-wal-normal', label: 'single-row commit, WAL, synchronous=NORMAL', unit: 'commits/s', target: 0.2, ...twiceGo(0.011, 0.1) },
  { id: 'bulk-delete-full', label: 'bulk insert (one transaction), DELETE, FULL', unit: 'rows/s', target: 0.6, ...twiceGo(0.27) },
  { id: 'bulk-wal-normal', label: 'bulk insert (one transaction), WAL, NORMAL', unit: 'rows/s', target: 0.6, ...twiceGo(0.27) },
  { id: 'select-warm-delete', label: 'point select, warm, DELETE', unit: 'selects/s', ...twiceGo(0.029) },
  { id: 'select-warm-wal', label: 'point select, warm, WAL', unit: 'selects/s', target: 0.15, ...twiceGo(0.041) },
  { id: 'select-cold-delete', label: 'point select, cold, DELETE', unit: 'selects/s' },
  { id: 'select-cold-wal', label: 'point select, cold, WAL', unit: 'selects/s', target: 0.15 },
  { id: 'mixed-reads', label: '4 readers + 1 writer, WAL, NORMAL: reads', unit: 'reads/s', ...twiceGo(0.056) },
  { id: 'mixed-writes', label: '4 readers + 1 writer, WAL, NORMAL: writes', unit: 'writes/s', ...twiceGo(0.017) },
];

export interface SqliteSettings {
  /** How long each timed scenario runs per round. */
  durationMs: number;
  /** Rounds of each timed scenario; the best counts. */
  rounds: number;
  /** Rows in the bulk insert. */
  bulkRows: number;
  /** Rounds of the bulk insert. */
  bulkRounds: number;
  /** Rows in the tables the selects read. */
  selectRows: number;
  /** How long the readers and the writer run together, per round. */
  mixedMs: number;
  mixedRounds: number;
  readers: number;
}

const SLACK_MS = 120_000;

/**
 * Every scenario runs in a fresh process of bench/programs/sqlite-workload.c,
 * so each starts with an empty SQLite page cache.
 */
export function sqliteSuite(program: string, s: SqliteSettings, cleanup: CleanupStack): Suite {
  const run = async (args: string[]): Promise<Record<string, unknown>> =>
    lastJsonLine(await runProgram(program, args, { timeoutMs: s.durationMs + s.mixedMs + SLACK_MS, cleanup }));
  const perSecond = (r: Record<string, unknown>, field = 'ops'): number => numberField(r, field) / (numberField(r, 'ns') / 1e9);
  const ms = String(s.durationMs);
  const rows = String(s.selectRows);
  const measurements: Measurement[] = [];
  // A fresh database name per run: the workload deletes and recreates its
  // database, and in a LiteFS mount every name is a replicated database, so
  // each round starts on a new one rather than deleting one.
  let serial = 0;
  const fresh = (dir: string, stem: string): string => join(dir, `${stem}-${++serial}.db`);

  for (const journal of ['delete', 'wal']) {
    for (const sync of ['full', 'normal']) {
      measurements.push({
        ids: [`commit-${journal}-${sync}`],
        better: 'higher',
        rounds: s.rounds,
        run: async (dir) => [perSecond(await run(['commits', fresh(dir, `commit-${journal}-${sync}`), journal, sync, ms]))],
      });
    }
  }
  for (const [journal, sync] of [['delete', 'full'], ['wal', 'normal']]) {
    measurements.push({
      ids: [`bulk-${journal}-${sync}`],
      better: 'higher',
      rounds: s.bulkRounds,
      run: async (dir) => [perSecond(await run(['bulk', fresh(dir, `bulk-${journal}`), journal, sync, String(s.bulkRows)]))],
    });
  }
  for (const temperature of ['warm', 'cold']) {
    for (const journal of ['delete', 'wal']) {
      measurements.push({
        ids: [`select-${temperature}-${journal}`],
        better: 'higher',
        rounds: s.rounds,
        run: async (dir) => [perSecond(await run([`select-${temperature}`, join(dir, `select-${journal}.db`), rows, ms]))],
      });
    }
  }
  measurements.push({
    ids: ['mixed-reads', 'mixed-writes'],
    better: 'higher',
    rounds: s.mixedRounds,
    run: async (dir) => {
      const r = await run(['mixed', join(dir, 'mixed.db'), rows, String(s.readers), String(s.mixedMs)]);
      return [perSecond(r, 'reads'), perSecond(r, 'writes')];
    },
  });

  return {
    name: 'sqlite',
    prepare: async (dir) => {
      await run(['populate', join(dir, 'select-delete.db'), 'delete', rows]);
      await run(['populate', join(dir, 'select-wal.db'), 'wal', rows]);
      await run(['populate', join(dir, 'mixed.db'), 'wal', rows]);
    },
    measurements,
  };
}
