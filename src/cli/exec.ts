/**
 * The exec supervisor of `litefs mount` (ref §12.4): each `exec` entry is
 * split into words with shell rules (no shell runs); every entry but the last
 * runs to completion and must exit 0; the last runs in the background and
 * its exit ends the daemon. Children inherit the environment, stdout and
 * stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { ExecEntry } from './config.js';

export class ExecError extends Error {
  override readonly name = 'ExecError';
}

/**
 * Splits a command line as a POSIX shell would split words: blanks separate,
 * '…' is literal, "…" keeps blanks and honours \" \\ \$ \` and \newline,
 * a backslash outside quotes escapes the next character. No expansion.
 */
export function splitShellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
      continue;
    }
    inWord = true;
    if (c === '\\') {
      if (i + 1 >= line.length) throw new ExecError(`invalid command line (trailing backslash): ${line}`);
      if (line[i + 1] !== '\n') word += line[i + 1];
      i += 2;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new ExecError(`invalid command line (unterminated quote): ${line}`);
      word += line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new ExecError(`invalid command line (unterminated quote): ${line}`);
        const d = line[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1]!)) {
          if (line[i + 1] !== '\n') word += line[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      i++;
    } else {
      word += c;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** The entries that run on this node, each split into words (empty commands dropped). */
export function planExec(entries: readonly ExecEntry[], candidate: boolean): string[][] {
  return entries
    .filter((e) => candidate || !e.ifCandidate)
    .map((e) => splitShellWords(e.cmd))
    .filter((words) => words.length > 0);
}

/**
 * `litefs mount -- CMD ARGS`: the arguments override `exec`, joined with
 * spaces into one command line and split again (LiteFS does the same, so
 * the original quoting is lost).
 */
export function execFromArgs(args: readonly string[]): ExecEntry[] {
  return args.length === 0 ? [] : [{ cmd: args.join(' '), ifCandidate: false }];
}

function spawnCommand(words: string[]): ChildProcess {
  const [file, ...args] = words;
  return spawn(file!, args, { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** Resolves with the exit code (128+n for a signal, as a shell reports it); rejects if it cannot start. */
export function waitForExit(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code !== null) resolve(code);
      else resolve(128 + signalNumber(signal));
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return (signal !== null ? numbers[signal] : undefined) ?? 1;
}

/**
 * Runs every command but the last to completion (each must exit 0), then
 * starts the last in the background and returns it (undefined if there are
 * no commands). `signal` stops a synchronous command (SIGTERM) and the run.
 */
export async function runExec(commands: readonly string[][], signal: AbortSignal): Promise<ChildProcess | undefined> {
  for (const [i, words] of commands.entries()) {
    if (signal.aborted) throw new ExecError('exec cancelled');
    const child = spawnCommand(words);
    if (i === commands.length - 1) {
      // Wait for the spawn so an unknown program is a start-up error, not an exit code.
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (err) => reject(new ExecError(`cannot start ${words[0]}: ${err.message}`)));
      });
      return child;
    }
    const stop = (): boolean => child.kill('SIGTERM');
    signal.addEventListener('abort', stop, { once: true });
    let code: number;
    try {
      code = await waitForExit(child);
    } catch (err) {
      throw new ExecError(`cannot start ${words[0]}: ${(err as Error).message}`);
    } finally {
      signal.removeEventListener('abort', stop);
    }
    if (code !== 0) throw new ExecError(`exec: ${words.join(' ')}: exit status ${code}`);
  }
  return undefined;
}
