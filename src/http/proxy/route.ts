/**
 * Which way the proxy sends a request (ref §12.6), decided from its method
 * and path alone.
 */
import { matchesAny } from './glob.js';

export const HEALTH_PATH = '/litefs/health';

/**
 * - `passthrough`: straight to the application, no TXID handling at all;
 * - `health`: answered by the proxy itself;
 * - `read`: GET or HEAD; waits for the `__txid` cookie's TXID locally;
 * - `write`: anything else (and GET/HEAD on an always-forward path); only
 *   the primary runs it.
 */
export type ProxyRoute = 'passthrough' | 'health' | 'read' | 'write';

export interface RouteRules {
  readonly passthrough: readonly RegExp[];
  readonly alwaysForward: readonly RegExp[];
}

export function routeRequest(method: string, path: string, rules: RouteRules): ProxyRoute {
  if (matchesAny(rules.passthrough, path)) return 'passthrough';
  if (path === HEALTH_PATH) return 'health';
  const reading = method === 'GET' || method === 'HEAD';
  return reading && !matchesAny(rules.alwaysForward, path) ? 'read' : 'write';
}

/** The decoded path of a request target (`/a%20b?x=1` → `/a b`), as Go's URL.Path. */
export function requestPath(target: string): string {
  const raw = target.startsWith('/') ? target.split('?', 1)[0]! : new URL(target, 'http://proxy.invalid').pathname;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
