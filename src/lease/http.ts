import { LeaseStoreError } from './lease.js';

/**
 * One HTTP request to a lease store, with a timeout, every failure mapped to
 * a LeaseStoreError naming the store and the request. The caller's abort
 * (signal) is passed through unchanged so shutdown is not reported as a store
 * failure.
 */
export interface StoreResponse {
  readonly status: number;
  readonly text: string;
  readonly headers: Headers;
}

export interface StoreRequest {
  readonly store: string;
  /** Short name for messages, e.g. 'PUT /v1/session/create'. */
  readonly name: string;
  readonly url: string;
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Read only up to the first newline (streaming endpoints such as etcd keepalive). */
  readonly firstLine?: boolean;
}

const MAX_DETAIL = 200;

export async function storeRequest(req: StoreRequest): Promise<StoreResponse> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout.signal]) : timeout.signal;
  const fail = (e: unknown): never => {
    if (req.signal?.aborted) throw req.signal.reason;
    if (timeout.signal.aborted) {
      throw new LeaseStoreError(req.store, 'timeout', req.name, `no answer within ${req.timeoutMs} ms from ${origin(req.url)}`);
    }
    throw new LeaseStoreError(req.store, 'unavailable', req.name, `${origin(req.url)}: ${errorText(e)}`);
  };
  try {
    let res: Response;
    try {
      res = await fetch(req.url, {
        method: req.method,
        headers: req.headers ?? {},
        ...(req.body !== undefined ? { body: req.body } : {}),
        signal,
      });
    } catch (e) {
      return fail(e);
    }
    let text: string;
    try {
      text = req.firstLine ? await readFirstLine(res) : await res.text();
    } catch (e) {
      return fail(e);
    }
    return { status: res.status, text, headers: res.headers };
  } finally {
    clearTimeout(timer);
  }
}

async function readFirstLine(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const nl = text.indexOf('\n');
      if (nl >= 0) return text.slice(0, nl);
    }
    return text + decoder.decode();
  } finally {
    // A streaming response stays open on the server side: stop reading it.
    reader.cancel().catch(() => undefined);
  }
}

/** Parses JSON or throws a 'malformed' LeaseStoreError quoting the start of the body. */
export function parseJSON(store: string, name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new LeaseStoreError(store, 'malformed', name, `not JSON: ${snippet(text)}`);
  }
}

export function snippet(text: string): string {
  const t = text.trim();
  return JSON.stringify(t.length > MAX_DETAIL ? `${t.slice(0, MAX_DETAIL)}...` : t);
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message} (${cause.message})` : e.message;
  }
  return String(e);
}
