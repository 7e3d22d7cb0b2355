/**
 * `npm run bench:failover`: how long writes stop when the primary changes
 * (issue 6). Three `litefs mount` candidates share a real etcd lease (TTL
 * 2 s, demote-delay 1 s); one python3 writer (bench/programs/failover-writer.py)
 * commits single-row transactions to whichever mount accepts them and prints
 * the time of every acknowledged commit on CLOCK_MONOTONIC, the clock
 * `process.hrtime` reads here, so the bench's own kill and promote times
 * compare with the writer's directly.
 *   1. failover: SIGKILL the primary; time = first acknowledged write on
 *      another node − the kill. The killed node is restarted and rejoins
 *      before the next run.
 *   2. handoff: POST /promote to a replica; unavailability = first
 *      acknowledged write on the new primary − last on the old one.
 * Prints markdown on stdout, progress on stderr. BENCH_QUICK=1: 3 runs each
 * instead of 20. Every daemon, mount, etcd and writer is stopped on every
 * exit path (normal end, error, SIGINT/SIGTERM).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { readPos } from '../test/helpers/cluster.js';
import { type Etcd, startEtcd } from '../test/helpers/etcd.js';
import { type LiteFSDaemon, startLiteFS } from '../test/helpers/litefs-daemon.js';
import { CleanupStack, cleanUpOnSignals, errorText } from './fuse/cleanup.js';
import { programsDir } from './fuse/paths.js';
import { markdownTable } from './fuse/report.js';
import { mountBenchBlocker } from './mount-prereq.js';

const RUNS = Number(process.env.BENCH_RUNS ?? (process.env.BENCH_QUICK === '1' ? 3 : 20));
/** BENCH_ONLY=failover or handoff: run one part only. */
const ONLY = process.env.BENCH_ONLY ?? '';
const NODES = 3;
/** The writer's SQLite busy timeout: how long a refused (e.g. fenced) write lock is retried before SQLITE_BUSY. */
const BUSY_MS = Number(process.env.BENCH_BUSY_MS ?? 100);
/** The writer's sleep after each acknowledged commit: the resolution of every figure below. */
const PAUSE_MS = 5;
/** lease.reconnect-delay of every node (LiteFS's default is 1s; the test suite's 100ms). */
const RECONNECT_DELAY = process.env.BENCH_RECONNECT_DELAY ?? '100ms';
const TTL = '2s';
const DEMOTE_DELAY = '1s';
/** A run that has not elected and written within this long counts as failed. */
const ELECT_DEADLINE_MS = 60_000;
/** Acknowledged commits on the primary before the kill or the promote: the writer is steady. */
const WARM_ACKS = 20;
const INFO_POLL_MS = 25;
/** A failover slower than this prints the writer's failures (stderr). */
const SLOW_FAILOVER_MS = 5000;
/** How long a restarted node gets to converge before it is wiped (rejoin()). */
const REJOIN_MS = 20_000;

const TARGET_FAILOVER_P50_MS = 3000;
const TARGET_HANDOFF_MS = 250;

const DB = 'fo.db';
const WRITER_PY = join(programsDir, 'failover-writer.py');

function progress(message: string): void {
  process.stderr.write(`[bench:failover] ${message}\n`);
}

/** ms on CLOCK_MONOTONIC (libuv's hrtime), the clock of python's time.monotonic(). */
function mono(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- nodes ----

interface Info {
  isPrimary: boolean;
  primaryHostname: string;
}

async function info(node: LiteFSDaemon, timeoutMs = 2000): Promise<Info | undefined> {
  if (!node.running) return undefined;
  try {
    const res = await fetch(`${node.httpURL}/info`, { signal: AbortSignal.timeout(timeoutMs) });
    const v = (await res.json()) as { isPrimary?: boolean; primary?: { hostname?: string } };
    return { isPrimary: v.isPrimary === true, primaryHostname: v.primary?.hostname ?? '' };
  } catch {
    return undefined;
  }
}

/** Polls `check` every 50 ms until it holds (true) or `timeoutMs` passes (false). */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

/** The one running node that says it is primary, or undefined after `timeoutMs`. */
async function findPrimary(nodes: LiteFSDaemon[], timeoutMs: number): Promise<LiteFSDaemon | undefined> {
  let found: LiteFSDaemon | undefined;
  await until(async () => {
    const says = await Promise.all(nodes.map((n) => info(n)));
    const primaries = nodes.filter((_, i) => says[i]?.isPrimary === true);
    found = primaries.length === 1 ? primaries[0] : undefined;
    return found !== undefined;
  }, timeoutMs);
  return found;
}

/** Every node running, one primary, every replica following it, DB at one position everywhere. */
async function settled(nodes: LiteFSDaemon[], hostnames: string[], timeoutMs: number): Promise<LiteFSDaemon | undefined> {
  const primary = await findPrimary(nodes, timeoutMs);
  if (primary === undefined) return undefined;
  const name = hostnames[nodes.indexOf(primary)];
  const ok = await until(async () => {
    const says = await Promise.all(nodes.map((n) => info(n)));
    if (!says.every((s, i) => s !== undefined && (nodes[i] === primary ? s.isPrimary : !s.isPrimary && s.primaryHostname === name))) return false;
    const pos = await Promise.all(nodes.map((n) => readPos(n, DB)));
    return pos[0] !== '' && pos.every((p) => p === pos[0]);
  }, timeoutMs);
  if (ok) return primary;
  const says = await Promise.all(nodes.map((n) => info(n)));
  const pos = await Promise.all(nodes.map((n) => readPos(n, DB)));
  lastSettleState = nodes
    .map((n, i) => `${hostnames[i]}: ${says[i] === undefined ? 'no /info' : says[i]!.isPrimary ? 'primary' : `replica of '${says[i]!.primaryHostname}'`}, pos ${pos[i] || '?'}\n${n.output().slice(-1500)}`)
    .join('\n');
  return undefined;
}

/** What settled() saw when it gave up: for the error message. */
let lastSettleState = '';

/**
 * After a restart: wait for the cluster to settle. A node that does not
 * converge within REJOIN_MS (see BENCHMARKS.md: a restarted old primary can
 * loop on "apply refused: position mismatch") is stopped, its data folder
 * deleted and started empty, so the next run starts from a working cluster;
 * its hostname is returned. BENCH_NO_WIPE=1 skips that (to reproduce the bug).
 */
async function rejoin(nodes: LiteFSDaemon[], hostnames: string[]): Promise<string[]> {
  if ((await settled(nodes, hostnames, REJOIN_MS)) !== undefined || process.env.BENCH_NO_WIPE === '1') return [];
  const primary = await findPrimary(nodes, ELECT_DEADLINE_MS);
  if (primary === undefined) return [];
  const want = await readPos(primary, DB);
  const wiped: string[] = [];
  for (const [i, n] of nodes.entries()) {
    if (n === primary || (await readPos(n, DB)) === want) continue;
    progress(`${hostnames[i]}'s log (tail): ${n.output().slice(-600)}`);
    progress(`${hostnames[i]} did not converge (${await readPos(n, DB)} vs the primary's ${want}): restarting it with an empty data folder`);
    await n.stop();
    rmSync(n.data, { recursive: true, force: true });
    await n.start();
    wiped.push(hostnames[i]!);
  }
  return wiped;
}

// ---- the writer ----

interface Ack {
  node: number;
  t: number;
}

/** One failover-writer.py child: its acknowledged commits by node index (index into the `nodes` given). */
class Writer {
  readonly acks: Ack[] = [];
  readonly errors: string[] = [];
  /** Every failure line with its time, for diagnosing a slow run. */
  readonly failures: { node: number; t: number; msg: string }[] = [];
  private readonly exited: Promise<void>;
  private readonly pid: number;
  private readonly unregister: () => Promise<void>;
  /** Closes the writer's stdin: its stop signal. */
  private readonly stdin: () => void;

  constructor(nodes: LiteFSDaemon[], cleanup: CleanupStack) {
    const child = spawn('python3', [WRITER_PY, String(BUSY_MS), String(PAUSE_MS), ...nodes.map((n) => join(n.mnt, DB))], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    if (child.pid === undefined) throw new Error('could not start python3');
    this.pid = child.pid;
    child.stdin.on('error', () => undefined);
    let pending = '';
    child.stdout.on('data', (c: Buffer) => {
      pending += c.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 4000) stderr += c.toString('utf8');
    });
    this.exited = new Promise((resolve) =>
      child.on('close', (code) => {
        if (code !== 0) this.errors.push(`writer exited with ${code}: ${stderr.trim()}`);
        resolve();
      }),
    );
    this.stdin = () => child.stdin.end();
    this.unregister = cleanup.push('stop the writer', () => this.kill());
  }

  private onLine(line: string): void {
    const [kind, node, t, ...msg] = line.split(' ');
    if (kind === 'ack') this.acks.push({ node: Number(node), t: Number(t) });
    else if (kind === 'err') {
      if (this.errors.length < 50) this.errors.push(`node ${node}: ${msg.join(' ')}`);
      if (this.failures.length < 200) this.failures.push({ node: Number(node), t: Number(t), msg: msg.join(' ') });
    }
  }

  count(node: number, after = -Infinity): number {
    return this.acks.filter((a) => a.node === node && a.t > after).length;
  }

  firstOther(than: number, after: number): Ack | undefined {
    return this.acks.find((a) => a.node !== than && a.t > after);
  }

  lastOn(node: number, before = Infinity): Ack | undefined {
    for (let i = this.acks.length - 1; i >= 0; i--) {
      const a = this.acks[i]!;
      if (a.node === node && a.t < before) return a;
    }
    return undefined;
  }

  /** Closes stdin (the writer's stop signal); SIGKILLs its group if it does not exit within 10 s. */
  async stop(): Promise<void> {
    this.stdin();
    const done = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) this.kill();
    await this.exited;
    await this.unregister();
  }

  private kill(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

async function waitAcks(writer: Writer, node: number, n: number, after = -Infinity): Promise<boolean> {
  return until(async () => writer.count(node, after) >= n, 30_000);
}

// ---- runs ----

interface FailoverRun {
  ok: boolean;
  note: string;
  /** kill → a survivor's /info says isPrimary (polled every INFO_POLL_MS). */
  electedMs: number;
  /** kill → first acknowledged write on another node. */
  writeMs: number;
  /** last acknowledged write on the killed node → the kill. */
  lastBeforeKillMs: number;
  /** kill → the daemon reaped and its mount detached (the helper's kill(): SIGKILL, wait up to 10 s, umount -l). */
  reapedMs: number;
  load: number;
  /** Nodes restarted empty after this run because they did not converge (rejoin()). */
  wiped: string[];
}

async function failoverRun(nodes: LiteFSDaemon[], hostnames: string[], cleanup: CleanupStack): Promise<FailoverRun> {
  const load = loadavg()[0] ?? 0;
  const primary = await settled(nodes, hostnames, ELECT_DEADLINE_MS);
  if (primary === undefined) throw new Error(`the cluster did not settle (one primary, replicas following, same position) within 60 s:\n${lastSettleState}`);
  const p = nodes.indexOf(primary);
  const order = [primary, ...nodes.filter((n) => n !== primary)];
  const writer = new Writer(order, cleanup);
  const fail = (note: string): FailoverRun => ({ ok: false, note, electedMs: NaN, writeMs: NaN, lastBeforeKillMs: NaN, reapedMs: NaN, load, wiped: [] });
  try {
    if (!(await waitAcks(writer, 0, WARM_ACKS))) return fail(`no steady writes on the primary: ${writer.errors.slice(-3).join('; ')}`);
    const survivors = nodes.filter((n) => n !== primary);
    const killAt = mono();
    const killed = primary.kill();
    let electedAt = NaN;
    const electWatch = (async () => {
      const deadline = killAt + ELECT_DEADLINE_MS;
      while (mono() < deadline) {
        const says = await Promise.all(survivors.map((n) => info(n, 500)));
        if (says.some((s) => s?.isPrimary === true)) {
          electedAt = mono();
          return;
        }
        await sleep(INFO_POLL_MS);
      }
    })();
    await killed;
    const reapedAt = mono();
    const wrote = await until(async () => writer.firstOther(0, killAt) !== undefined, ELECT_DEADLINE_MS);
    await electWatch;
    await writer.stop();
    const first = writer.firstOther(0, killAt);
    const last = writer.lastOn(0, killAt);
    if (first === undefined || first.t - killAt > SLOW_FAILOVER_MS) {
      const lines = writer.failures.filter((f) => f.t > killAt - 100).map((f) => `  +${ms(f.t - killAt)} ms ${hostnames[nodes.indexOf(order[f.node]!)]}: ${f.msg}`);
      progress(`slow run: the writer's failures after the kill (first of each kind per node):\n${lines.join('\n')}`);
      for (const n of survivors) {
        const tail = n.output().split('\n').filter((x) => /lease|replica:|stream/.test(x)).slice(-8).join('\n  ');
        progress(`slow run: ${hostnames[nodes.indexOf(n)]}'s lease log (tail):\n  ${tail}`);
      }
    }
    if (!wrote || first === undefined) return fail(`no write on another node within ${ELECT_DEADLINE_MS / 1000} s: ${writer.errors.slice(-3).join('; ')}`);
    return {
      ok: true,
      note: `${hostnames[p]} → ${hostnames[nodes.indexOf(order[first.node]!)]}`,
      electedMs: electedAt - killAt,
      writeMs: first.t - killAt,
      lastBeforeKillMs: last === undefined ? NaN : killAt - last.t,
      reapedMs: reapedAt - killAt,
      load,
      wiped: [],
    };
  } finally {
    await writer.stop();
    if (!primary.running) {
      progress(`restarting ${hostnames[p]}`);
      await primary.start();
    }
  }
}

interface HandoffRun {
  ok: boolean;
  note: string;
  /** last acknowledged write on the old primary → first on the new one. */
  gapMs: number;
  /** POST /promote sent → its response. */
  promoteMs: number;
  /** POST /promote sent → first acknowledged write on the new primary. */
  promoteToWriteMs: number;
  load: number;
}

async function handoffRun(nodes: LiteFSDaemon[], hostnames: string[], round: number, cleanup: CleanupStack): Promise<HandoffRun> {
  const load = loadavg()[0] ?? 0;
  const primary = await settled(nodes, hostnames, ELECT_DEADLINE_MS);
  if (primary === undefined) throw new Error(`the cluster did not settle (one primary, replicas following, same position) within 60 s:\n${lastSettleState}`);
  const replicas = nodes.filter((n) => n !== primary);
  const target = replicas[round % replicas.length]!;
  const order = [primary, ...replicas];
  const writer = new Writer(order, cleanup);
  const fail = (note: string): HandoffRun => ({ ok: false, note, gapMs: NaN, promoteMs: NaN, promoteToWriteMs: NaN, load });
  try {
    if (!(await waitAcks(writer, 0, WARM_ACKS))) return fail(`no steady writes on the primary: ${writer.errors.slice(-3).join('; ')}`);
    const sentAt = mono();
    const res = await fetch(`${target.httpURL}/promote`, { method: 'POST', signal: AbortSignal.timeout(30_000) }).catch((e: unknown) => e as Error);
    const answeredAt = mono();
    if (res instanceof Error) return fail(`POST /promote: ${res.message}`);
    if (res.status !== 200) return fail(`POST /promote: HTTP ${res.status} ${(await res.text()).trim()}`);
    await res.body?.cancel();
    const wrote = await until(async () => writer.firstOther(0, sentAt) !== undefined, ELECT_DEADLINE_MS);
    await writer.stop();
    const first = writer.firstOther(0, sentAt);
    if (!wrote || first === undefined) {
      const says = await Promise.all(nodes.map((n) => info(n)));
      const roles = nodes.map((_n, i) => `${hostnames[i]} ${says[i]?.isPrimary === true ? 'primary' : `replica of '${says[i]?.primaryHostname ?? '?'}'`}`).join(', ');
      return fail(`no write on another node within ${ELECT_DEADLINE_MS / 1000} s (${writer.count(0, sentAt)} on the old primary after the POST; now ${roles}): ${writer.errors.slice(-3).join('; ')}`);
    }
    const last = writer.lastOn(0, first.t);
    const to = order[first.node]!;
    return {
      ok: true,
      note: `${hostnames[nodes.indexOf(primary)]} → ${hostnames[nodes.indexOf(to)]}${to === target ? '' : ` (promoted ${hostnames[nodes.indexOf(target)]})`}`,
      gapMs: last === undefined ? NaN : first.t - last.t,
      promoteMs: answeredAt - sentAt,
      promoteToWriteMs: first.t - sentAt,
      load,
    };
  } finally {
    await writer.stop();
  }
}

// ---- report ----

/** Nearest-rank percentile of ascending `sorted`. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

function stats(xs: number[]): { p50: number; max: number; min: number } {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return { p50: percentile(s, 50), max: s[s.length - 1] ?? NaN, min: s[0] ?? NaN };
}

function ms(x: number): string {
  if (!Number.isFinite(x)) return '—';
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
}

function versionOf(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

function machineTable(loadStart: number[], loadEnd: number[], loads: number[]): string {
  const fmt = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' / ');
  const etcd = /etcd Version: (\S+)/.exec(versionOf('etcd', ['--version']))?.[1] ?? '?';
  const [py, sqlite] = versionOf('python3', ['-c', 'import sqlite3, platform; print(platform.python_version(), sqlite3.sqlite_version)']).split(' ');
  const l = stats(loads);
  return markdownTable(
    ['machine', 'node', 'python / SQLite', 'etcd', 'commit', 'load avg 1/5/15 min at start', 'at end', '1-min load at each run start'],
    [[
      `Linux ${release()}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
      process.version,
      `${py ?? '?'} / ${sqlite ?? '?'}`,
      etcd,
      versionOf('git', ['rev-parse', '--short', 'HEAD']),
      fmt(loadStart),
      fmt(loadEnd),
      `${l.min.toFixed(2)}–${l.max.toFixed(2)}`,
    ]],
  );
}

function verdict(ok: boolean): string {
  return ok ? 'met' : 'MISSED';
}

function resultsTable(fo: FailoverRun[], ho: HandoffRun[]): string {
  const okF = fo.filter((r) => r.ok);
  const okH = ho.filter((r) => r.ok);
  const w = stats(okF.map((r) => r.writeMs));
  const e = stats(okF.map((r) => r.electedMs));
  const k = stats(okF.map((r) => r.reapedMs));
  const l = stats(okF.map((r) => r.lastBeforeKillMs));
  const g = stats(okH.map((r) => r.gapMs));
  const pw = stats(okH.map((r) => r.promoteToWriteMs));
  const pr = stats(okH.map((r) => r.promoteMs));
  const runs = (rs: { ok: boolean }[]): string => `${rs.filter((r) => r.ok).length} / ${rs.length}`;
  const failedNote = (rs: { ok: boolean }[]): string => (rs.some((r) => !r.ok) ? ' (failed runs count as missed)' : '');
  return markdownTable(
    ['measure', 'runs ok', 'p50 ms', 'max ms', 'min ms', 'target', 'verdict'],
    [
      ['failover: SIGKILL of the primary → first acknowledged write on the new primary', runs(fo), ms(w.p50), ms(w.max), ms(w.min), `p50 ≤ ${TARGET_FAILOVER_P50_MS} ms`, verdict(w.p50 <= TARGET_FAILOVER_P50_MS && okF.length === fo.length) + failedNote(fo)],
      ['failover: SIGKILL → a survivor\'s /info says isPrimary', runs(fo), ms(e.p50), ms(e.max), ms(e.min), '', ''],
      ['failover: SIGKILL → the killed daemon reaped and its mount detached', runs(fo), ms(k.p50), ms(k.max), ms(k.min), '', ''],
      ['failover: last acknowledged write on the old primary → SIGKILL', runs(fo), ms(l.p50), ms(l.max), ms(l.min), '', ''],
      ['handoff: last acknowledged write on the old primary → first on the new', runs(ho), ms(g.p50), ms(g.max), ms(g.min), `≤ ${TARGET_HANDOFF_MS} ms`, verdict(g.max <= TARGET_HANDOFF_MS && okH.length === ho.length) + failedNote(ho)],
      ['handoff: POST /promote sent → first acknowledged write on the new primary', runs(ho), ms(pw.p50), ms(pw.max), ms(pw.min), '', ''],
      ['handoff: POST /promote sent → its response', runs(ho), ms(pr.p50), ms(pr.max), ms(pr.min), '', ''],
    ],
  );
}

function perRun(fo: FailoverRun[], ho: HandoffRun[]): string {
  const wiped = (r: FailoverRun): string => (r.wiped.length > 0 ? `; then ${r.wiped.join(', ')} did not converge: wiped` : '');
  const f = fo.map((r, i) => `${i + 1}: ${r.ok ? `${ms(r.writeMs)} (elected ${ms(r.electedMs)}, reaped ${ms(r.reapedMs)}, ${r.note}${wiped(r)})` : `FAILED (${r.note}${wiped(r)})`}`);
  const nWiped = fo.filter((r) => r.wiped.length > 0).length;
  const h = ho.map((r, i) => `${i + 1}: ${r.ok ? `${ms(r.gapMs)} (${r.note})` : `FAILED (${r.note})`}`);
  return [
    `Failover runs, kill → first write ms: ${f.join('; ')}.`,
    '',
    `Restarted nodes that did not converge within ${REJOIN_MS / 1000} s and were restarted with an empty data folder: after ${nWiped} of ${fo.length} failover runs.`,
    '',
    `Handoff runs, write gap ms: ${h.join('; ')}.`,
  ].join('\n');
}

// ---- main ----


async function main(): Promise<void> {
  const loadStart = loadavg();
  const why = mountBenchBlocker([
    ['etcd', ['--version'], 'etcd (Debian etcd-server)'],
    ['sqlite3', ['-version'], 'the sqlite3 CLI'],
  ]);
  if (why !== null) throw new Error(why);
  const cleanup = new CleanupStack();
  cleanUpOnSignals(cleanup);
  try {
    progress('starting etcd');
    const etcd: Etcd = await startEtcd();
    cleanup.push('stop etcd', () => etcd.stop());
    const key = `litefs-bench/${randomBytes(4).toString('hex')}`;
    const hostnames = Array.from({ length: NODES }, (_, i) => `fo${i + 1}`);
    const nodes: LiteFSDaemon[] = [];
    for (const name of hostnames) {
      progress(`starting candidate ${name}`);
      const node = await startLiteFS({
        strictVerify: false,
        reconnectDelay: RECONNECT_DELAY,
        leaseLines: [
          '  type: etcd',
          `  hostname: ${name}`,
          '  advertise-url: "$SELF_URL"',
          '  candidate: true',
          `  demote-delay: ${DEMOTE_DELAY}`,
          '  etcd:',
          `    endpoints: ["${etcd.clientURL}"]`,
          `    key: "${key}"`,
          `    ttl: ${TTL}`,
        ],
      });
      cleanup.push(`close ${name}`, () => node.close());
      nodes.push(node);
    }
    const primary = await findPrimary(nodes, ELECT_DEADLINE_MS);
    if (primary === undefined) throw new Error('no primary elected within 60 s');
    execFileSync('sqlite3', [join(primary.mnt, DB), 'PRAGMA journal_mode=wal; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);'], { stdio: 'ignore', timeout: 30_000 });

    const loads: number[] = [];
    const fo: FailoverRun[] = [];
    for (let i = 0; i < (ONLY === 'handoff' ? 0 : RUNS); i++) {
      const r = await failoverRun(nodes, hostnames, cleanup);
      r.wiped = await rejoin(nodes, hostnames);
      loads.push(r.load);
      fo.push(r);
      progress(`failover ${i + 1}/${RUNS}: ${r.ok ? `first write ${ms(r.writeMs)} ms after the kill (elected ${ms(r.electedMs)} ms; ${r.note})` : `FAILED: ${r.note}`}`);
    }
    const ho: HandoffRun[] = [];
    for (let i = 0; i < (ONLY === 'failover' ? 0 : RUNS); i++) {
      const r = await handoffRun(nodes, hostnames, i, cleanup);
      loads.push(r.load);
      ho.push(r);
      progress(`handoff ${i + 1}/${RUNS}: ${r.ok ? `write gap ${ms(r.gapMs)} ms (promote answered in ${ms(r.promoteMs)} ms; ${r.note})` : `FAILED: ${r.note}`}`);
    }

    const out = [
      '### Results of `npm run bench:failover`',
      '',
      `${RUNS} runs each${RUNS === 3 ? ' (BENCH_QUICK=1)' : ''}; ${NODES} candidates on one etcd, lease TTL ${TTL}, demote-delay ${DEMOTE_DELAY}, ` +
        `reconnect-delay ${RECONNECT_DELAY}; writer: busy timeout ${BUSY_MS} ms, ${PAUSE_MS} ms pause after each commit, WAL, synchronous=NORMAL. ` +
        'Times on CLOCK_MONOTONIC, shared by the bench (kill, promote, /info polls) and the writer (acknowledged commits). ' +
        'No plain-folder ratio applies: a plain folder has no primary to lose. LiteFS (Go) documents failover within its 10 s Consul TTL + 1 s lock delay.',
      '',
      machineTable(loadStart, loadavg(), loads),
      '',
      resultsTable(fo, ho),
      '',
      perRun(fo, ho),
      '',
    ];
    process.stdout.write(out.join('\n'));
  } finally {
    await cleanup.runAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:failover failed: ${err instanceof Error ? (err.stack ?? err.message) : errorText(err)}\n`);
  process.exitCode = 1;
});
