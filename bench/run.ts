/**
 * `npm run bench`: every benchmark that needs no mount. BENCH_QUICK=1 shortens
 * each measurement for a smoke run. Results and how to reproduce them are in
 * BENCHMARKS.md. (`npm run bench:fuse` runs the mount benchmarks;
 * `npm run bench:replication` the primary-to-replica ones: lag, apply
 * throughput, replica reads under writes.)
 */
import { cpus } from 'node:os';
import { runCodecBench } from './codecs.js';
import { runProxyBench } from './proxy.js';

const budgetMs = process.env.BENCH_QUICK === '1' ? 200 : 1500;
console.log(`# litefs-ts benchmarks (node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'})\n`);
console.log('## Codecs (one core)\n');
console.log(runCodecBench(budgetMs));
console.log('\n## HTTP proxy (application, proxy and load in three processes on 127.0.0.1)\n');
console.log(await runProxyBench(process.env.BENCH_QUICK === '1' ? 300 : 2000));
