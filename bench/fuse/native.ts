import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { errorText } from './cleanup.js';
import { programsDir } from './paths.js';

/** A program could not be built; `reason` is printed in place of its figures. */
export class BuildError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'BuildError';
  }
}

/** The client programs, compiled into the run's temp folder (never committed). */
export interface ClientPrograms {
  fuseRequests: string;
  sqliteWorkload: string;
}

export function buildClientPrograms(outDir: string): ClientPrograms {
  return {
    fuseRequests: compile(join(programsDir, 'fuse-requests.c'), join(outDir, 'fuse-requests'), []),
    sqliteWorkload: compile(join(programsDir, 'sqlite-workload.c'), join(outDir, 'sqlite-workload'), ['-lsqlite3']),
  };
}

/**
 * Where Debian ships libfuse3's examples: libfuse3-dev puts passthrough_ll.c
 * under /usr/share/doc/libfuse3-dev/examples (gzipped by some releases).
 */
const PASSTHROUGH_LL_SOURCES = [
  '/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c',
  '/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c.gz',
];

export interface PassthroughLl {
  binary: string;
  /** False when the example has no setlk handler: the kernel then keeps POSIX locks itself, with no FUSE request. */
  forwardsPosixLocks: boolean;
}

/** Builds libfuse3's passthrough_ll example from the Debian package's copy. */
export function buildPassthroughLl(outDir: string): PassthroughLl {
  const found = PASSTHROUGH_LL_SOURCES.find((p) => existsSync(p));
  if (found === undefined) {
    throw new BuildError(`no passthrough_ll.c under /usr/share/doc/libfuse3-dev/examples (apt-get install libfuse3-dev)`);
  }
  let source = found;
  if (found.endsWith('.gz')) {
    source = join(outDir, 'passthrough_ll.c');
    writeFileSync(source, gunzipSync(readFileSync(found)));
  }
  let fuseFlags: string[];
  try {
    fuseFlags = execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/);
  } catch (err) {
    throw new BuildError(`pkg-config fuse3 failed (apt-get install pkg-config libfuse3-dev): ${errorText(err)}`);
  }
  const binary = compile(source, join(outDir, 'passthrough_ll'), fuseFlags);
  return { binary, forwardsPosixLocks: /\.setlk\s*=/.test(readFileSync(source, 'utf8')) };
}

function compile(source: string, output: string, libs: string[]): string {
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', output, source, ...libs], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8').trim() ?? '';
    throw new BuildError(`gcc ${source} failed: ${stderr === '' ? errorText(err) : stderr.split('\n').slice(0, 4).join(' | ')}`);
  }
  return output;
}
