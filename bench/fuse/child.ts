import { spawn } from 'node:child_process';
import { basename, isAbsolute } from 'node:path';
import type { CleanupStack } from './cleanup.js';

/** A child program exited non-zero, was killed, or overran its time limit. */
export class ProgramError extends Error {
  constructor(
    readonly command: string,
    readonly outcome: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${outcome}${stderr === '' ? '' : `: ${lastLines(stderr, 3)}`}`);
    this.name = 'ProgramError';
  }
}

export interface RunOptions {
  /** Kill the program's process group after this long. */
  timeoutMs: number;
  /** Pin the program to this CPU with taskset. */
  cpu?: number;
  /** Registered while the program runs so an interrupted run still stops it. */
  cleanup?: CleanupStack;
}

/** `taskset -c CPU` prefix, or nothing. taskset execs the program, so the PID stays the program's. */
export function pinned(command: string, args: string[], cpu: number | undefined): [string, string[]] {
  return cpu === undefined ? [command, args] : ['taskset', ['-c', String(cpu), command, ...args]];
}

/**
 * Runs a program and resolves with its stdout. It gets its own process group
 * so a timeout also stops the workers it forked (the mixed SQLite workload).
 */
export function runProgram(command: string, args: string[], options: RunOptions): Promise<string> {
  const [cmd, argv] = pinned(command, args, options.cpu);
  // Temp-folder paths are long and differ per run; the file name says enough.
  const shown = [command, ...args].map((a) => (isAbsolute(a) ? basename(a) : a)).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    let timedOut = false;
    const killGroup = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    };
    const unregister = options.cleanup?.push(`stop ${command}`, killGroup);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      void unregister?.();
      reject(new ProgramError(shown, `could not start (${err.message})`, ''));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      void unregister?.();
      const err = Buffer.concat(stderr).toString('utf8');
      if (timedOut) reject(new ProgramError(shown, `killed after ${options.timeoutMs} ms`, err));
      else if (code !== 0) reject(new ProgramError(shown, `exited with ${code ?? signal}`, err));
      else resolve(Buffer.concat(stdout).toString('utf8'));
    });
  });
}

/** The last JSON object line a program printed. */
export function lastJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  const parsed: unknown = JSON.parse(lines[lines.length - 1] ?? '');
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`expected a JSON object, got: ${stdout.trim()}`);
  return parsed as Record<string, unknown>;
}

/** A numeric field of a program's JSON result. */
export function numberField(result: Record<string, unknown>, name: string): number {
  const v = result[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`result has no numeric "${name}": ${JSON.stringify(result)}`);
  return v;
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}
