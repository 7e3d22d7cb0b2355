/** Timing helpers shared by the benchmarks: run a body until a time budget is spent, report MB/s. */

export interface Throughput {
  readonly name: string;
  readonly bytes: number;
  readonly seconds: number;
  readonly mbPerSec: number;
}

/** Runs `body` (which processes `bytesPerCall` bytes) repeatedly for about `budgetMs` after a warm-up. */
export function measure(name: string, bytesPerCall: number, body: () => void, budgetMs = 1500): Throughput {
  const warmUntil = performance.now() + Math.min(300, budgetMs / 4);
  while (performance.now() < warmUntil) body();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < budgetMs) {
    for (let i = 0; i < 16; i++) body();
    calls += 16;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  const bytes = calls * bytesPerCall;
  return { name, bytes, seconds, mbPerSec: bytes / seconds / 1e6 };
}

export function formatTable(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows;
  const line = (r: readonly string[]): string => `| ${r.join(' | ')} |`;
  return [line(head!), line(head!.map(() => '---')), ...body.map(line)].join('\n');
}
