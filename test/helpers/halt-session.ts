import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { program } from './sqlite-client.js';

/** One answer of test/programs/halt-session.py. */
export interface HaltAnswer {
  readonly ok?: boolean;
  readonly errno?: string;
  readonly error?: string;
  readonly type?: string;
  readonly rows?: unknown[][];
}

/** Longest a command may take before the test fails (a hang, not a measurement). */
const ANSWER_TIMEOUT_MS = 60_000;

/**
 * A python3 child process holding a `<db>-lock` file description, driven a
 * command at a time (test/programs/halt-session.py): the lock stays held
 * between commands, as an application's would.
 */
export class HaltSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly answers: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  private stderr = '';

  constructor(dbPath: string) {
    this.child = spawn('python3', [program('halt-session.py'), dbPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (c: Buffer) => (this.stderr += c.toString('utf8')));
    this.child.stdin.on('error', () => undefined);
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const w = this.waiting;
      if (w === null) this.answers.push(line);
      else {
        this.waiting = null;
        w(line);
      }
    });
  }

  async ask(command: string): Promise<HaltAnswer> {
    this.child.stdin.write(`${command}\n`);
    const line = await new Promise<string>((resolve, reject) => {
      const queued = this.answers.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error(`halt-session: no answer to ${JSON.stringify(command)} in ${ANSWER_TIMEOUT_MS} ms; stderr: ${this.stderr}`)), ANSWER_TIMEOUT_MS);
      this.waiting = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
    });
    return JSON.parse(line) as HaltAnswer;
  }

  /** SIGKILL: the program dies holding whatever it holds; the kernel closes its files. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Ends the process (its lock file description closes with it). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
