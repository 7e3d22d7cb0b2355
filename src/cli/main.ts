#!/usr/bin/env node
/**
 * The `litefs` command. Commands and exit codes follow LiteFS v0.5.11
 * (ref §12.1): no command, `help` or a leading `-` prints usage and exits 2;
 * an unknown command exits 1; errors print `ERROR: <msg>` and exit 1.
 */
import { versionLine } from './version.js';
import { FlagError } from './flags.js';

interface Command {
  readonly summary: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  version: {
    summary: 'prints the version',
    run: async () => {
      console.log(versionLine());
      return 0;
    },
  },
  ltx: {
    summary: 'inspects LTX files (dump, verify)',
    run: async (argv) => (await import('./ltx-command.js')).runLTXCommand(argv),
  },
  import: { summary: 'imports a SQLite database into a node', run: async (argv) => (await import('./import.js')).runImport(argv) },
  export: { summary: 'exports a database from a node', run: async (argv) => (await import('./export.js')).runExport(argv) },
  restore: {
    summary: 'writes a database as it was at a TXID or time, from a file backup',
    run: async (argv) => (await import('./restore.js')).runRestore(argv),
  },
  run: {
    summary: 'runs a command on a candidate or promoted node',
    run: async (argv) => (await import('./run.js')).runRun(argv),
  },
  mount: { summary: 'mounts the LiteFS file system (single node)', run: async (argv) => (await import('./mount.js')).runMount(argv) },
  passthrough: {
    summary: 'mounts a FUSE passthrough of a folder (test vehicle for the FUSE layer)',
    run: async (argv) => (await import('./passthrough.js')).runPassthrough(argv),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `\t${name.padEnd(12)}${c.summary}`);
  return [
    'litefs-ts: a FUSE file system that replicates SQLite databases (LiteFS v0.5 compatible).',
    '',
    'Usage:',
    '',
    '\tlitefs <command> [arguments]',
    '',
    'The commands are:',
    '',
    ...lines,
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name.startsWith('-')) {
    console.error(usage());
    return 2;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`litefs ${name}: unknown command`);
    return 1;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`ERROR: ${message}`);
    return err instanceof FlagError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
