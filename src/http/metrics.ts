/** The HTTP layer's Prometheus metrics (ref §7.8), registered once per registry. */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface HTTPMetrics {
  /** litefs_http_stream_count: connected /stream clients. */
  readonly streamCount: Gauge;
  /** litefs_http_frame_send_count{db,type}: declared as in LiteFS (which never increments it). */
  readonly frameSendCount: Counter<'db' | 'type'>;
}

export function httpMetrics(registry: Registry): HTTPMetrics {
  const streamCount =
    (registry.getSingleMetric('litefs_http_stream_count') as Gauge | undefined) ??
    new Gauge({ name: 'litefs_http_stream_count', help: 'Number of streams currently connected.', registers: [registry] });
  const frameSendCount =
    (registry.getSingleMetric('litefs_http_frame_send_count') as Counter<'db' | 'type'> | undefined) ??
    new Counter({
      name: 'litefs_http_frame_send_count',
      help: 'Number of frames sent.',
      labelNames: ['db', 'type'] as const,
      registers: [registry],
    });
  return { streamCount, frameSendCount };
}
