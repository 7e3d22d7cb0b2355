import { join } from 'node:path';
import { type Cell, figure, missing } from './cell.js';
import { lastJsonLine, numberField, runProgram } from './child.js';
import { type CleanupStack, errorText } from './cleanup.js';

/** A row of the SQLite table; `target` is the minimum share of the plain folder's rate we aim for. */
export interface SqliteScenario {
  id: string;
  label: string;
  unit: string;
  target?: number;
}

export const SQLITE_SCENARIOS: readonly SqliteScenario[] = [
  { id: 'commit-delete-full', label: 'single-row commit, DELETE, synchronous=FULL', unit: 'commits/s' },
  { id: 'commit-delete-normal', label: 'single-row commit, DELETE, synchronous=NORMAL', unit: 'commits/s' },
  { id: 'commit-wal-full', label: 'single-row commit, WAL, synchronous=FULL', unit: 'commits/s' },
  { id: 'commit-wal-normal', label: 'single-row commit, WAL, synchronous=NORMAL', unit: 'commits/s', target: 0.2 },
  { id: 'bulk-delete-full', label: 'bulk insert (one transaction), DELETE, FULL', unit: 'rows/s', target: 0.6 },
  { id: 'bulk-wal-normal', label: 'bulk insert (one transaction), WAL, NORMAL', unit: 'rows/s', target: 0.6 },
  { id: 'select-warm-delete', label: 'point select, warm, DELETE', unit: 'selects/s' },
  { id: 'select-warm-wal', label: 'point select, warm, WAL', unit: 'selects/s', target: 0.15 },
  { id: 'select-cold-delete', label: 'point select, cold, DELETE', unit: 'selects/s' },
  { id: 'select-cold-wal', label: 'point select, cold, WAL', unit: 'selects/s', target: 0.15 },
  { id: 'mixed-reads', label: '4 readers + 1 writer, WAL, NORMAL: reads', unit: 'reads/s' },
  { id: 'mixed-writes', label: '4 readers + 1 writer, WAL, NORMAL: writes', unit: 'writes/s' },
];

export interface SqliteSettings {
  /** How long each timed scenario runs. */
  durationMs: number;
  /** Rows in the bulk insert. */
  bulkRows: number;
  /** Rows in the table the selects read. */
  selectRows: number;
  /** How long the readers and the writer run together. */
  mixedMs: number;
  readers: number;
}

const SLACK_MS = 120_000;

/**
 * Runs every scenario against `dir`, each in a fresh process of
 * bench/programs/sqlite-workload.c. A scenario that fails leaves its cell
 * empty with the reason; the others still run.
 */
export async function runSqliteSuite(
  program: string,
  dir: string,
  s: SqliteSettings,
  cleanup: CleanupStack,
): Promise<Map<string, Cell>> {
  const out = new Map<string, Cell>();
  const run = async (args: string[]): Promise<Record<string, unknown>> =>
    lastJsonLine(await runProgram(program, args, { timeoutMs: s.durationMs + s.mixedMs + SLACK_MS, cleanup }));
  const rate = (r: Record<string, unknown>, field = 'ops'): number => numberField(r, field) / (numberField(r, 'ns') / 1e9);
  const attempt = async (ids: string[], body: () => Promise<number[]>): Promise<void> => {
    try {
      const values = await body();
      ids.forEach((id, i) => out.set(id, figure(values[i] ?? NaN)));
    } catch (err) {
      for (const id of ids) out.set(id, missing(errorText(err)));
    }
  };
  const ms = String(s.durationMs);

  for (const journal of ['delete', 'wal']) {
    for (const sync of ['full', 'normal']) {
      const db = join(dir, `commit-${journal}-${sync}.db`);
      await attempt([`commit-${journal}-${sync}`], async () => [rate(await run(['commits', db, journal, sync, ms]))]);
    }
  }
  for (const [journal, sync] of [['delete', 'full'], ['wal', 'normal']]) {
    const db = join(dir, `bulk-${journal}.db`);
    await attempt([`bulk-${journal}-${sync}`], async () => [rate(await run(['bulk', db, journal, sync, String(s.bulkRows)]))]);
  }
  for (const journal of ['delete', 'wal']) {
    const db = join(dir, `select-${journal}.db`);
    const rows = String(s.selectRows);
    let populated: string | null = null;
    try {
      await run(['populate', db, journal, rows]);
    } catch (err) {
      populated = `populating ${db}: ${errorText(err)}`;
    }
    for (const temperature of ['warm', 'cold']) {
      const id = `select-${temperature}-${journal}`;
      if (populated !== null) out.set(id, missing(populated));
      else await attempt([id], async () => [rate(await run([`select-${temperature}`, db, rows, ms]))]);
    }
  }
  const mixedDb = join(dir, 'mixed.db');
  await attempt(['mixed-reads', 'mixed-writes'], async () => {
    await run(['populate', mixedDb, 'wal', String(s.selectRows)]);
    const r = await run(['mixed', mixedDb, String(s.selectRows), String(s.readers), String(s.mixedMs)]);
    return [rate(r, 'reads'), rate(r, 'writes')];
  });
  return out;
}
