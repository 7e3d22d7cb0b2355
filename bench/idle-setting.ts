/**
 * How this machine's idle CPUs wake up, for the run line of the benchmarks
 * that cross between threads and processes. On a VM whose guest halt
 * polling is off (`haltpoll` cpuidle driver, guest_halt_poll_ns=0) an idle
 * vCPU halts at once and every wake-up of a thread on it is a VM exit: on
 * 2026-12-07 that alone made single-row WAL commits on our mounts 2.5–3×
 * slower than with the kernel's default of 200 µs (BENCHMARKS.md).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';

function readTrimmed(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** e.g. "cpuidle haltpoll, guest halt polling off (guest_halt_poll_ns=0)". */
export function idleSetting(): string {
  const driver = readTrimmed('/sys/devices/system/cpu/cpuidle/current_driver');
  if (driver === null) return 'cpuidle unknown';
  if (driver !== 'haltpoll') return `cpuidle ${driver}`;
  const ns = readTrimmed('/sys/module/haltpoll/parameters/guest_halt_poll_ns');
  if (ns === null) return 'cpuidle haltpoll';
  return `cpuidle haltpoll, guest halt polling ${ns === '0' ? 'off' : 'on'} (guest_halt_poll_ns=${ns})`;
}

/** The "Run: …" line of a benchmark's results: time, kind of run, commit, machine, idle setting, node, load at start and now. */
export function runLine(kind: string, loadAtStart: readonly number[]): string {
  const when = new Date().toISOString().replace('T', ' ').slice(0, 16);
  let commit = '?';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // Not a checkout.
  }
  const fmt = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' / ');
  return (
    `Run: ${when} UTC, ${kind}, commit ${commit}, Linux ${release()}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${idleSetting()}, node ${process.version}; ` +
    `load average (1/5/15 min) at start ${fmt(loadAtStart)}, at end ${fmt(loadavg())}.`
  );
}
