import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

/**
 * SQLite clients for the FUSE suite. They always run in child processes: a
 * SQLite call blocks its thread in the kernel, and a test process must never
 * block on a file system it might itself be serving.
 */

export interface ChildResult {
  /** Exit status; null when killed by a signal (see `signal`). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the runner killed the child at its time limit. */
  timedOut: boolean;
}

export interface RunOptions {
  /** Text written to the child's stdin (then closed). */
  input?: string;
  /** Kill the child (SIGKILL) after this long. Default 60 s. */
  timeoutMs?: number;
  cwd?: string;
  /** Extra environment variables (added to this process's environment). */
  env?: Record<string, string>;
}

/** Runs a command and collects its output; never rejects for a non-zero exit. */
export function runChild(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd, env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({
        status,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    // A child that exits without reading its stdin must not crash the test with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** The sqlite3 CLI on `dbPath`, fed `sql` on stdin; stops at the first error (-bail). */
export function runSqlite3(dbPath: string, sql: string, options: RunOptions = {}): Promise<ChildResult> {
  return runChild('sqlite3', ['-batch', '-bail', dbPath], { ...options, input: sql });
}

/** Path of a program under test/programs/ (they are not compiled; read from the source tree). */
export function program(name: string): string {
  return join(repoRoot, 'test', 'programs', name);
}

/** python3 running test/programs/<name> with args. */
export function runPython(name: string, args: readonly string[], options: RunOptions = {}): Promise<ChildResult> {
  return runChild('python3', [program(name), ...args], options);
}

/** Throws with the child's output unless it exited 0. */
export function expectSuccess(what: string, r: ChildResult): string {
  if (r.status === 0 && !r.timedOut) return r.stdout;
  const how = r.timedOut ? 'timed out' : r.signal !== null ? `was killed by ${r.signal}` : `exited ${r.status}`;
  throw new Error(`${what} ${how}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`);
}
