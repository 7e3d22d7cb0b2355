/**
 * `npm run bench:fuse`: the FUSE layer against a plain folder and libfuse.
 *
 * Columns, all measured in one run: a plain folder (the baseline), our
 * passthrough mount (`litefs passthrough`), and libfuse3's passthrough_ll
 * example built from Debian's libfuse3-dev. Suites: per-request round trips
 * (free and pinned to one CPU) and SQLite workloads. Client loops are C
 * programs from bench/programs/ built into a temp folder at start; every
 * daemon runs as a child process and is stopped, and its mount removed, on
 * every exit path. Prints markdown on stdout, progress on stderr.
 * BENCH_QUICK=1 runs a ~30-second smoke version; BENCH_ONLY=requests skips the
 * SQLite suites; BENCH_ONLY=sqlite skips the
 * per-request suites. The SQLite suite also has a LiteFS column: `litefs
 * mount` as a single node (static lease, primary, no replica).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cell, missing } from './fuse/cell.js';
import { lastJsonLine, runProgram } from './fuse/child.js';
import { CleanupStack, cleanUpOnSignals, errorText } from './fuse/cleanup.js';
import { mountLiteFS, mountOurs, mountPassthroughLl, plainFolder } from './fuse/mounts.js';
import { BuildError, type ClientPrograms, type PassthroughLl, buildClientPrograms, buildPassthroughLl } from './fuse/native.js';
import { cliMain } from './fuse/paths.js';
import { Notes, markdownTable, micros, percent, rate, ratioVerdict, shareVerdict, times } from './fuse/report.js';
import { REQUEST_OPS, type RequestSettings, requestSuite } from './fuse/requests.js';
import { SQLITE_SCENARIOS, type SqliteSettings, sqliteSuite } from './fuse/sqlite.js';
import { type ColumnKey, type ColumnPlan, type ColumnResult, runSuite } from './fuse/suite.js';
import { idleSetting } from './idle-setting.js';

interface Settings {
  name: string;
  requests: RequestSettings;
  sqlite: SqliteSettings;
}

const FULL: Settings = {
  name: 'full',
  requests: { durationMs: 300, rounds: 5 },
  sqlite: {
    durationMs: 1000,
    rounds: 3,
    bulkRows: 200_000,
    bulkRounds: 2,
    selectRows: 20_000,
    mixedMs: 3000,
    mixedRounds: 2,
    readers: 4,
  },
};

const QUICK: Settings = {
  name: 'quick (BENCH_QUICK=1)',
  requests: { durationMs: 150, rounds: 1 },
  sqlite: {
    durationMs: 250,
    rounds: 1,
    bulkRows: 20_000,
    bulkRounds: 1,
    selectRows: 5000,
    mixedMs: 1000,
    mixedRounds: 1,
    readers: 4,
  },
};

/** The CPU that daemon and client share in the pinned per-request run. */
const PINNED_CPU = 0;
/** Target: our per-request cost at most this multiple of passthrough_ll's (pinned, single-threaded). */
const PER_REQUEST_LIMIT = 1.6;

/** Every timeout 0, so each fstat/stat really reaches the daemon. */
const OURS_REQUEST_FLAGS = ['-attr-timeout', '0', '-entry-timeout', '0', '-negative-timeout', '0'];
const PLL_REQUEST_OPTIONS = 'cache=always,timeout=0';
/**
 * The passthrough's own defaults, the same caching passthrough_ll's
 * cache=always gives (attributes and names cached 1 s, missing names too,
 * page cache kept across opens), so the columns compare the request paths
 * rather than cache policies. Locks still reach our daemon on every call.
 * LiteFS's own stricter policy (attributes never cached) is measured by the
 * LiteFS file-system benchmark, not here.
 */
const OURS_SQLITE_FLAGS = ['-attr-timeout', '1', '-entry-timeout', '1', '-negative-timeout', '1', '-keep-cache'];
const PLL_SQLITE_OPTIONS = 'cache=always';

function cell(results: Map<ColumnKey, ColumnResult>, key: ColumnKey, id: string): Cell {
  const r = results.get(key);
  if (r === undefined) return missing('not run');
  if (typeof r === 'string') return missing(r);
  return r.get(id) ?? missing('not measured');
}

function bestOf(rounds: number, ms?: number): string {
  const each = ms === undefined ? '' : ` of ${ms} ms`;
  return rounds === 1 ? `one round${each}` : `best of ${rounds} rounds${each}`;
}

function progress(message: string): void {
  process.stderr.write(`[bench:fuse] ${message}\n`);
}

interface Environment {
  workRoot: string;
  cleanup: CleanupStack;
  programs: ClientPrograms;
  /** passthrough_ll, or why there is no such column. */
  pll: PassthroughLl | string;
  /** Why our mount cannot run at all, if so. */
  oursUnavailable: string | null;
}

function requestPlans(env: Environment, cpu: number | undefined): ColumnPlan[] {
  const { workRoot, cleanup, pll } = env;
  return [
    { key: 'plain', open: async () => plainFolder(workRoot, cleanup, 'plain folder') },
    {
      key: 'ours',
      open: env.oursUnavailable ?? (() => mountOurs(workRoot, cleanup, 'litefs passthrough', { flags: OURS_REQUEST_FLAGS, cpu })),
    },
    {
      key: 'pll',
      open:
        typeof pll === 'string'
          ? pll
          : () =>
              mountPassthroughLl(workRoot, cleanup, 'passthrough_ll', pll.binary, {
                options: PLL_REQUEST_OPTIONS,
                singleThreaded: cpu !== undefined,
                cpu,
              }),
    },
  ];
}

function sqlitePlans(env: Environment): ColumnPlan[] {
  const { workRoot, cleanup, pll } = env;
  return [
    { key: 'plain', open: async () => plainFolder(workRoot, cleanup, 'plain folder') },
    {
      key: 'ours',
      open: env.oursUnavailable ?? (() => mountOurs(workRoot, cleanup, 'litefs passthrough', { flags: OURS_SQLITE_FLAGS })),
    },
    {
      key: 'pll',
      open:
        typeof pll === 'string'
          ? pll
          : () =>
              mountPassthroughLl(workRoot, cleanup, 'passthrough_ll', pll.binary, {
                options: PLL_SQLITE_OPTIONS,
                singleThreaded: false,
              }),
    },
    { key: 'litefs', open: env.oursUnavailable ?? (() => mountLiteFS(workRoot, cleanup, 'litefs mount')) },
  ];
}

/**
 * A mount answering within 2× of the plain folder cannot have made a round
 * trip to its daemon (one costs 10 µs or more): the kernel answered from a
 * cache, and the figure measures the wrong thing.
 */
function cachedHint(mount: Cell, plain: Cell, notes: Notes): string {
  if (!('value' in mount) || !('value' in plain) || mount.value >= 2 * plain.value) return '';
  return ` ${notes.marker('within 2× of the plain folder: the kernel answered without asking the daemon (a cache timeout is not 0?)')}`;
}

function requestTable(results: Map<ColumnKey, ColumnResult>, pll: PassthroughLl | string, pinnedRun: boolean): string {
  const notes = new Notes();
  const pllName = pinnedRun ? 'passthrough_ll -s' : 'passthrough_ll';
  const header = ['request', 'plain folder', 'ours', 'ours ÷ plain', pllName, 'pll ÷ plain', 'ours ÷ pll'];
  if (pinnedRun) header.push('target');
  const rows = REQUEST_OPS.map((op) => {
    const plain = cell(results, 'plain', op);
    const ours = cell(results, 'ours', op);
    let ref = cell(results, 'pll', op);
    let pllShown = micros(ref, notes);
    // Without a setlk handler the kernel keeps POSIX locks itself: no FUSE
    // request, so the figure is not a round trip and must not be compared.
    if (op === 'lock' && typeof pll !== 'string' && !pll.forwardsPosixLocks && 'value' in ref) {
      pllShown += ` ${notes.marker('passthrough_ll has no setlk handler, so the kernel keeps POSIX locks itself: no FUSE request, not comparable')}`;
      ref = missing('not comparable');
    }
    const row = [
      op,
      micros(plain, notes),
      micros(ours, notes) + cachedHint(ours, plain, notes),
      times(ours, plain),
      pllShown + (ref === cell(results, 'pll', op) ? cachedHint(ref, plain, notes) : ''),
      times(ref, plain),
      times(ours, ref),
    ];
    if (pinnedRun) row.push(op === 'lock' ? '' : ratioVerdict(PER_REQUEST_LIMIT, ours, ref));
    return row;
  });
  const rendered = notes.render();
  return markdownTable(header, rows) + (rendered === '' ? '' : `\n\n${rendered}`);
}

function sqliteTable(results: Map<ColumnKey, ColumnResult>): string {
  const notes = new Notes();
  const header = ['workload', 'unit', 'plain folder', 'ours', 'ours % of plain', 'passthrough_ll', 'pll % of plain', 'target (ours)'];
  const rows = SQLITE_SCENARIOS.map((s) => {
    const plain = cell(results, 'plain', s.id);
    const ours = cell(results, 'ours', s.id);
    const pll = cell(results, 'pll', s.id);
    return [
      s.label,
      s.unit,
      rate(plain, notes),
      rate(ours, notes),
      percent(ours, plain),
      rate(pll, notes),
      percent(pll, plain),
      shareVerdict(s.target, ours, plain),
    ];
  });
  const rendered = notes.render();
  return markdownTable(header, rows) + (rendered === '' ? '' : `\n\n${rendered}`);
}

/** A share of the plain folder as "2.2%" (one decimal below 10%). */
function share(x: number): string {
  const p = 100 * x;
  return `${p < 10 ? p.toFixed(1) : Math.round(p)}%`;
}

/** Our LiteFS mount against the plain folder; Go LiteFS v0.5.11's share and our target on the rows the issue names. */
function liteFSTable(results: Map<ColumnKey, ColumnResult>): string {
  const notes = new Notes();
  const header = ['workload', 'unit', 'plain folder', 'LiteFS (ours)', 'LiteFS % of plain', 'Go LiteFS % of plain', 'target', 'verdict'];
  const rows = SQLITE_SCENARIOS.map((s) => {
    const plain = cell(results, 'plain', s.id);
    const ours = cell(results, 'litefs', s.id);
    const target = s.liteFSTarget;
    const x = 'value' in ours ? ours.value : undefined;
    const y = 'value' in plain ? plain.value : undefined;
    let verdict = '';
    if (target !== undefined) verdict = x === undefined || y === undefined || y === 0 ? '—' : x / y >= target ? 'met' : 'MISSED';
    return [
      s.label,
      s.unit,
      rate(plain, notes),
      rate(ours, notes),
      percent(ours, plain),
      s.goLiteFS === undefined ? '' : share(s.goLiteFS),
      target === undefined ? '' : `≥ ${share(target)}`,
      verdict,
    ];
  });
  const rendered = notes.render();
  return markdownTable(header, rows) + (rendered === '' ? '' : `\n\n${rendered}`);
}

function prepare(cleanup: CleanupStack): Environment {
  const workRoot = mkdtempSync(join(tmpdir(), 'litefs-bench-fuse-'));
  cleanup.push(`delete ${workRoot}`, () => rmSync(workRoot, { recursive: true, force: true }));
  progress(`building client programs in ${workRoot}`);
  const programs = buildClientPrograms(workRoot);

  let mountBlocker: string | null = null;
  if (!existsSync('/dev/fuse')) mountBlocker = 'no /dev/fuse on this machine';
  else if (process.getuid?.() !== 0) mountBlocker = 'mounting needs root (or CAP_SYS_ADMIN)';

  let pll: PassthroughLl | string;
  if (mountBlocker !== null) pll = mountBlocker;
  else {
    try {
      pll = buildPassthroughLl(workRoot);
    } catch (err) {
      pll = err instanceof BuildError ? err.reason : errorText(err);
    }
  }
  let oursUnavailable = mountBlocker;
  if (oursUnavailable === null && !existsSync(cliMain)) oursUnavailable = `${cliMain} not built`;
  return { workRoot, cleanup, programs, pll, oursUnavailable };
}

async function describeRun(env: Environment, settings: Settings, loadAtStart: number): Promise<string> {
  let sqliteVersion = '?';
  try {
    const v = lastJsonLine(await runProgram(env.programs.sqliteWorkload, ['version'], { timeoutMs: 10_000 })).sqlite;
    if (typeof v === 'string') sqliteVersion = v;
  } catch {
    // Only cosmetic.
  }
  let gitHead = '?';
  try {
    gitHead = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // Not a checkout.
  }
  const when = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const load = `load average (1 min) at start ${loadAtStart.toFixed(2)}, at end ${loadavg()[0]?.toFixed(2)}`;
  return [
    `Run: ${when} UTC, ${settings.name}, commit ${gitHead}, Linux ${release()}, ${cpus().length} CPUs, ${idleSetting()}, node ${process.version}, SQLite ${sqliteVersion}; ${load}.`,
    loadAtStart > 0.3 ? '**Caveat:** other processes were running at the start (load above 0.3); figures are noisy and pessimistic.' : '',
  ]
    .filter((l) => l !== '')
    .join('  \n');
}

async function main(): Promise<void> {
  const settings = process.env.BENCH_QUICK === '1' ? QUICK : FULL;
  const loadAtStart = loadavg()[0] ?? 0;
  const cleanup = new CleanupStack();
  cleanUpOnSignals(cleanup);
  try {
    const env = prepare(cleanup);
    if (typeof env.pll === 'string') progress(`no passthrough_ll column: ${env.pll}`);
    if (env.oursUnavailable !== null) progress(`no column for our mount: ${env.oursUnavailable}`);

    const { fuseRequests, sqliteWorkload } = env.programs;
    const sqliteOnly = process.env.BENCH_ONLY === 'sqlite';
    const free = sqliteOnly
      ? null
      : await runSuite(
          requestSuite('per-request', fuseRequests, settings.requests, undefined, cleanup),
          requestPlans(env, undefined),
          progress,
        );
    const pinned = sqliteOnly
      ? null
      : await runSuite(
          requestSuite('per-request pinned', fuseRequests, settings.requests, PINNED_CPU, cleanup),
          requestPlans(env, PINNED_CPU),
          progress,
        );
    const requestsOnly = process.env.BENCH_ONLY === 'requests';
    const sqlite = requestsOnly ? null : await runSuite(sqliteSuite(sqliteWorkload, settings.sqlite, cleanup), sqlitePlans(env), progress);

    const r = settings.requests;
    const s = settings.sqlite;
    const out = [
      `### Results of \`npm run bench:fuse\``,
      '',
      await describeRun(env, settings, loadAtStart),
      '',
      ...(free === null || pinned === null
        ? ['Per-request suites skipped (BENCH_ONLY=sqlite).', '']
        : [
            `#### Per-request round trips (µs per operation, lower is better; ${bestOf(r.rounds, r.durationMs)})`,
            '',
            `Mounts: ours \`passthrough ${OURS_REQUEST_FLAGS.join(' ')}\`; passthrough_ll \`-o ${PLL_REQUEST_OPTIONS}\` (multi-threaded). ` +
              'fstat = 1 GETATTR; lock = F_SETLK lock + unlock of one byte (2 SETLK); stat = LOOKUP + GETATTR.',
            '',
            requestTable(free, env.pll, false),
            '',
            `#### Per-request round trips, daemon and client pinned to CPU ${PINNED_CPU} (\`taskset -c ${PINNED_CPU}\`)`,
            '',
            `Same mounts; passthrough_ll runs single-threaded (\`-s\`). Target: ours ≤ ${PER_REQUEST_LIMIT}× passthrough_ll per request.`,
            '',
            requestTable(pinned, env.pll, true),
            '',
          ]),
      ...(sqlite === null
        ? ['SQLite suites skipped (BENCH_ONLY=requests).', '']
        : [
            `#### SQLite (higher is better)`,
            '',
            `Mounts: ours \`passthrough ${OURS_SQLITE_FLAGS.join(' ')}\` (the passthrough's defaults: the caching passthrough_ll's cache=always gives); passthrough_ll \`-o ${PLL_SQLITE_OPTIONS}\`. ` +
              `Timed scenarios: ${bestOf(s.rounds, s.durationMs)}, columns interleaved; bulk insert (${bestOf(s.bulkRounds)}) = ${s.bulkRows.toLocaleString('en-US')} rows of 100 bytes; ` +
              `selects read a ${s.selectRows.toLocaleString('en-US')}-row table by random primary key. ` +
              '"Warm" = one connection whose page cache holds the table; "cold" = every select on a new connection ' +
              '(open, select, close) in a fresh process, SQLite page cache empty, kernel page cache as left by the previous scenario. ' +
              `Mixed: ${s.readers} reader processes + 1 writer process for ${s.mixedMs} ms (${bestOf(s.mixedRounds)}, chosen by reads).` +
              (typeof env.pll !== 'string' && !env.pll.forwardsPosixLocks
                ? " passthrough_ll has no setlk handler, so SQLite's fcntl locks stay in the kernel and never reach it; ours answers every lock " +
                  'request itself (as LiteFS must), so rows dominated by locking (WAL reads: 2 lock requests per read transaction) favour passthrough_ll.'
                : ''),
            '',
            sqliteTable(sqlite),
            '',
            `#### LiteFS mount (single node)`,
            '',
            'The same workloads, measured in the same run and interleaved with the columns above, on `litefs mount` ' +
              '(static lease, candidate: primary, no replica; data.compress true; its default cache policy). ' +
              'Go LiteFS v0.5.11 shares: measured on this machine kind (from the issue); its "point select" shares are compared with the warm rows. ' +
              'Target: twice Go\'s share; single-row WAL/NORMAL commits at least 10%.',
            '',
            liteFSTable(sqlite),
            '',
        ]),
    ];
    process.stdout.write(out.join('\n'));
  } finally {
    await cleanup.runAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:fuse failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
