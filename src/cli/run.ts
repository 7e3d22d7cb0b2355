/**
 * `litefs run [flags] -- CMD ARGS` (ref §12.1, §12.5): runs a command with a
 * guarantee from the local node. `-if-candidate` skips the command (exit 0)
 * on a node that may never be primary; `-promote` asks the local node to take
 * the lease over and, unlike LiteFS, waits until it holds it, so CMD really
 * runs on the primary. CMD inherits stdin/stdout/stderr, receives the
 * signals litefs gets, and its exit code becomes litefs's (LiteFS turns a
 * failing CMD into `ERROR: exit status N` and exit 1).
 * `-with-halt-lock-on DBPATH` runs CMD while this node holds the primary's
 * HALT lock on the database DBPATH names, so CMD (a migration, say) may write
 * on a replica (ref §8). LiteFS takes the lock on `DBPATH-lock` with fcntl;
 * Node has no fcntl, so ours asks the node at `-url` (POST /litefs-ts/halt)
 * and holds the lock for as long as that request stays open: CMD's exit, or
 * litefs's, ends it.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { basename } from 'node:path';
import { NodeClient } from '../http/client.js';
import { waitForExit } from './exec.js';
import { FlagError, flagUsage, parseFlags, type FlagSpec } from './flags.js';

const FLAGS: FlagSpec[] = [
  { name: 'url', kind: 'string', usage: 'LiteFS API URL', default: 'http://localhost:20202' },
  { name: 'promote', kind: 'boolean', usage: 'promote node to primary' },
  { name: 'if-candidate', kind: 'boolean', usage: 'only execute if node is a candidate' },
  { name: 'with-halt-lock-on', kind: 'string', usage: 'full database path to halt' },
  { name: 'v', kind: 'boolean', usage: 'enable verbose logging' },
];

const USAGE = `usage: litefs run [arguments] -- CMD [ARG...]\n${flagUsage(FLAGS)}`;

/** How long -promote waits for the node to become primary, as `lease.promote` does. */
const PROMOTE_WAIT_MS = 10_000;
const PROMOTE_POLL_MS = 100;

/** Signals litefs passes on to CMD instead of dying from them (SIGUSR1 belongs to Node's debugger). */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

export interface RunCommandOptions {
  /** Time -promote waits for the node to report itself primary; default 10 s. */
  readonly promoteWaitMs?: number;
  /** Interval between the /info polls of that wait; default 100 ms. */
  readonly promotePollMs?: number;
  /** Where -v log lines and the "not a candidate" notice go; default stderr. */
  readonly stderr?: (line: string) => void;
}

export class RunCommandError extends Error {
  override readonly name = 'RunCommandError';
}

/** Resolves with CMD's exit code (128+n if a signal ended it), or 0 when -if-candidate skipped it. */
export async function runRun(argv: string[], options: RunCommandOptions = {}): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  // As LiteFS: nothing to run is a usage error; words before `--` are refused.
  if (flags.positional.length === 0 && (flags.afterDoubleDash ?? []).length === 0) throw new FlagError(USAGE);
  if (flags.positional.length > 0) throw new RunCommandError("too many arguments, specify a '--' to specify an exec command");
  const command = flags.afterDoubleDash ?? [];

  const promote = flags.booleans.get('promote') === true;
  const ifCandidate = flags.booleans.get('if-candidate') === true;
  const haltLockOn = flags.strings.get('with-halt-lock-on') ?? '';
  if (promote && haltLockOn !== '') throw new RunCommandError('cannot specify both -promote & -with-halt-lock-on');

  const stderr = options.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = flags.booleans.get('v') === true ? stderr : () => {};

  if (ifCandidate || promote) {
    const client = new NodeClient(flags.strings.get('url') ?? 'http://localhost:20202');
    try {
      log('fetching node metadata');
      const info = await client.info(AbortSignal.timeout(PROMOTE_WAIT_MS));
      if (ifCandidate && !info.candidate) {
        stderr('node is not a candidate, skipping execution');
        return 0;
      }
      if (promote && info.isPrimary) log('node is already primary, skipping promotion');
      else if (promote) {
        log('promoting node to primary');
        await client.promote(AbortSignal.timeout(PROMOTE_WAIT_MS));
        await waitUntilPrimary(client, options.promoteWaitMs ?? PROMOTE_WAIT_MS, options.promotePollMs ?? PROMOTE_POLL_MS);
        log('promotion successful');
      }
    } finally {
      client.close();
    }
  }
  if (haltLockOn === '') return runForwardingSignals(command);
  const url = flags.strings.get('url') ?? 'http://localhost:20202';
  const db = basename(haltLockOn);
  log(`acquiring halt lock on ${db}`);
  const release = await holdHaltLock(url, db);
  log('halt lock acquired');
  try {
    return await runForwardingSignals(command);
  } finally {
    release();
    log('halt lock released');
  }
}

/** POST /litefs-ts/halt: resolves once the node holds the lock, with the function that releases it (closing the request). */
function holdHaltLock(url: string, db: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(`/litefs-ts/halt?${new URLSearchParams({ name: db })}`, url), { method: 'POST' });
    const fail = (message: string): void => {
      req.destroy();
      reject(new RunCommandError(`cannot acquire halt lock on ${db}: ${message}`));
    };
    req.on('error', (err) => fail(err.message));
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (res.statusCode === 200 && text.startsWith('held\n')) resolve(() => req.destroy());
      });
      res.on('end', () => fail(res.statusCode === 200 ? 'the node closed the request' : text.trim() || `status ${res.statusCode}`));
      res.on('error', (err) => fail(err.message));
    });
    req.end();
  });
}

/**
 * LiteFS's /promote returns once the primary accepted the handoff, before
 * this node holds the lease; CMD must not start on a replica in between.
 */
async function waitUntilPrimary(client: NodeClient, waitMs: number, pollMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const info = await client.info(AbortSignal.timeout(Math.max(waitMs, 1000)));
    if (info.isPrimary) return;
    if (Date.now() >= deadline) throw new RunCommandError(`node is not primary ${waitMs} ms after the promotion request`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function runForwardingSignals(command: readonly string[]): Promise<number> {
  const [file, ...args] = command;
  // Handlers go in before the spawn: a signal that arrives while CMD starts
  // must reach CMD, not kill litefs and leave CMD running without it.
  let child: ReturnType<typeof spawn> | undefined;
  const early: NodeJS.Signals[] = [];
  const forward = (signal: NodeJS.Signals): void => {
    if (child === undefined) early.push(signal);
    else child.kill(signal);
  };
  for (const s of FORWARDED_SIGNALS) process.on(s, forward);
  try {
    const started = spawn(file!, args, { stdio: 'inherit' });
    child = started;
    await new Promise<void>((resolve, reject) => {
      started.once('spawn', resolve);
      started.once('error', (err) => reject(new RunCommandError(`cannot start ${file}: ${err.message}`)));
    });
    for (const signal of early) started.kill(signal);
    return await waitForExit(started);
  } finally {
    for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward);
  }
}
