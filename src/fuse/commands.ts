/** Running mount/umount as child processes (the main thread never blocks on them). */
import { spawn, type StdioOptions } from 'node:child_process';

export interface CommandResult {
  readonly code: number;
  readonly stderr: string;
}

/** Runs `cmd args`; never rejects for a non-zero exit (the code says it), only for spawn failures. */
export function runCommand(cmd: string, args: readonly string[], stdio: StdioOptions = ['ignore', 'ignore', 'pipe']): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal !== null ? 128 : 1), stderr: stderr.trim() }));
  });
}
