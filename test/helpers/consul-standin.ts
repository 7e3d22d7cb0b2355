import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultKnob } from './http-faults.js';

/**
 * A stand-in for Consul, because Consul is not packaged in Debian: a small
 * in-test HTTP server implementing only the session and KV endpoints LiteFS
 * uses (reference §10.3, leases-and-testing.md §2.1) with Consul's semantics:
 * sessions with a TTL (lazily reaped), Behavior delete/release, lock-delay
 * after a session is invalidated, ?acquire / ?release / ?cas, and a single
 * Raft-like index that every write increments (ModifyIndex, X-Consul-Index).
 * Not a Consul: no blocking queries, no ACLs (the token is only recorded).
 */
interface Session {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly ttlMs: number;
  readonly lockDelayMs: number;
  readonly behavior: 'delete' | 'release';
  expiresAt: number;
  readonly createIndex: number;
}

interface KV {
  value: Buffer;
  session: string;
  lockIndex: number;
  readonly createIndex: number;
  modifyIndex: number;
  flags: number;
}

export interface ConsulStandinOptions {
  /** Real Consul refuses TTLs below 10 s; tests lower this to see expiry sooner. */
  readonly minTTLMs?: number;
}

export class ConsulStandin {
  readonly faults = new FaultKnob();
  /** Every session create body received, parsed (to check LiteFS's exact layout). */
  readonly sessionBodies: unknown[] = [];
  readonly registeredNodes: unknown[] = [];
  readonly tokens = new Set<string>();
  private readonly sessions = new Map<string, Session>();
  private readonly kv = new Map<string, KV>();
  private readonly lockDelays = new Map<string, number>();
  private index = 1;
  private readonly minTTLMs: number;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    opts: ConsulStandinOptions,
  ) {
    this.minTTLMs = opts.minTTLMs ?? 10_000;
  }

  static async start(opts: ConsulStandinOptions = {}): Promise<ConsulStandin> {
    let standin: ConsulStandin | null = null;
    const server = createServer((req, res) => {
      if (!standin) return void res.destroy();
      const s = standin;
      if (s.faults.apply(req, res)) return;
      readBody(req).then(
        (body) => s.handle(req, res, body),
        () => res.destroy(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    standin = new ConsulStandin(server, `http://127.0.0.1:${port}`, opts);
    return standin;
  }

  async close(): Promise<void> {
    this.faults.releaseHanging();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Invalidates a session as if its TTL had run out (the next renew gets 404). */
  expireSession(id: string): void {
    this.invalidate(id);
  }

  /** The raw KV entry (decoded value), for assertions. */
  entry(key: string): { value: string; session: string; modifyIndex: number } | null {
    this.reap();
    const e = this.kv.get(key);
    return e ? { value: e.value.toString('utf8'), session: e.session, modifyIndex: e.modifyIndex } : null;
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    this.reap();
    const token = req.headers['x-consul-token'];
    if (typeof token === 'string') this.tokens.add(token);
    const url = new URL(req.url ?? '/', 'http://consul');
    const path = url.pathname;
    const send = (status: number, v: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-consul-index': String(this.index) });
      res.end(typeof v === 'string' ? v : JSON.stringify(v));
    };
    if (req.method === 'PUT' && path === '/v1/catalog/register') {
      this.registeredNodes.push(JSON.parse(body.toString('utf8')));
      this.index++;
      return send(200, true);
    }
    if (req.method === 'PUT' && path === '/v1/session/create') return this.createSession(body, send);
    const renew = /^\/v1\/session\/renew\/(.+)$/.exec(path);
    if (req.method === 'PUT' && renew) {
      const s = this.sessions.get(decodeURIComponent(renew[1]!));
      if (!s) return send(404, `Session id '${renew[1]}' not found`);
      s.expiresAt = performance.now() + s.ttlMs;
      return send(200, [this.sessionJSON(s)]);
    }
    const destroy = /^\/v1\/session\/destroy\/(.+)$/.exec(path);
    if (req.method === 'PUT' && destroy) {
      this.invalidate(decodeURIComponent(destroy[1]!));
      return send(200, true);
    }
    if (req.method === 'PUT' && path === '/v1/txn') return this.txn(body, send);
    if (path.startsWith('/v1/kv/')) {
      const key = path.slice('/v1/kv/'.length).split('/').map(decodeURIComponent).join('/');
      if (req.method === 'GET') {
        const keys = url.searchParams.has('recurse') ? [...this.kv.keys()].filter((k) => k.startsWith(key)).sort() : [key];
        const entries = keys.flatMap((k) => {
          const e = this.kv.get(k);
          return e ? [this.entryJSON(k, e)] : [];
        });
        if (entries.length === 0) return send(404, '');
        return send(200, entries);
      }
      if (req.method === 'PUT') return send(200, this.putKey(key, url.searchParams, body));
      if (req.method === 'DELETE') {
        this.kv.delete(key);
        this.index++;
        return send(200, true);
      }
    }
    send(405, `stand-in does not implement ${req.method} ${path}`);
  }

  /** /v1/txn with the verbs the leaser uses: check-session, check-index, set. All or nothing; 409 when a check fails. */
  private txn(body: Buffer, send: (status: number, v: unknown) => void): void {
    let ops: unknown;
    try {
      ops = JSON.parse(body.toString('utf8'));
    } catch {
      return send(400, 'Failed to parse body');
    }
    if (!Array.isArray(ops)) return send(400, 'Failed to parse body');
    const sets: [string, Buffer][] = [];
    const errors: { OpIndex: number; What: string }[] = [];
    ops.forEach((op: { KV?: { Verb?: string; Key?: string; Session?: string; Index?: number; Value?: string } }, i) => {
      const kv = op.KV;
      const e = kv?.Key !== undefined ? this.kv.get(kv.Key) : undefined;
      switch (kv?.Verb) {
        case 'check-session':
          if (!e || e.session !== kv.Session) errors.push({ OpIndex: i, What: `failed session check for key "${kv.Key}"` });
          break;
        case 'check-index':
          if (!e || e.modifyIndex !== kv.Index) errors.push({ OpIndex: i, What: `failed index check for key "${kv.Key}"` });
          break;
        case 'set':
          sets.push([kv.Key ?? '', Buffer.from(kv.Value ?? '', 'base64')]);
          break;
        default:
          errors.push({ OpIndex: i, What: `stand-in does not implement verb ${String(kv?.Verb)}` });
      }
    });
    if (errors.length > 0) return send(409, { Results: null, Errors: errors });
    for (const [k, v] of sets) this.write(k, v, this.kv.get(k)?.session ?? '', false);
    send(200, { Results: sets.map(([k]) => ({ KV: { Key: k } })), Errors: null });
  }

  private entryJSON(key: string, e: KV): Record<string, unknown> {
    return {
      Key: key,
      Value: e.value.length > 0 ? e.value.toString('base64') : null,
      Session: e.session || undefined,
      LockIndex: e.lockIndex,
      Flags: e.flags,
      CreateIndex: e.createIndex,
      ModifyIndex: e.modifyIndex,
    };
  }

  private createSession(body: Buffer, send: (status: number, v: unknown) => void): void {
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(body.length > 0 ? body.toString('utf8') : '{}') as Record<string, unknown>;
    } catch {
      return send(400, 'Request decode failed');
    }
    this.sessionBodies.push(v);
    const ttlMs = typeof v['TTL'] === 'string' ? parseDuration(v['TTL']) : 0;
    if (ttlMs !== 0 && (Number.isNaN(ttlMs) || ttlMs < this.minTTLMs || ttlMs > 86_400_000)) {
      return send(400, `Invalid Session TTL '${String(v['TTL'])}', must be between [${this.minTTLMs / 1000}s=24h0m0s]`);
    }
    const lockDelayMs = typeof v['LockDelay'] === 'string' ? parseDuration(v['LockDelay']) : 15_000;
    const s: Session = {
      id: randomUUID(),
      name: typeof v['Name'] === 'string' ? v['Name'] : '',
      node: typeof v['Node'] === 'string' ? v['Node'] : 'standin-agent',
      ttlMs: ttlMs === 0 ? Number.POSITIVE_INFINITY : ttlMs,
      lockDelayMs: Number.isNaN(lockDelayMs) ? 15_000 : lockDelayMs,
      behavior: v['Behavior'] === 'delete' ? 'delete' : 'release',
      expiresAt: performance.now() + (ttlMs === 0 ? Number.POSITIVE_INFINITY : ttlMs),
      createIndex: ++this.index,
    };
    this.sessions.set(s.id, s);
    send(200, { ID: s.id });
  }

  private putKey(key: string, q: URLSearchParams, body: Buffer): boolean {
    const e = this.kv.get(key);
    const acquire = q.get('acquire');
    const release = q.get('release');
    const cas = q.get('cas');
    if (acquire !== null) {
      if (!this.sessions.has(acquire)) return false;
      if (e && e.session !== '' && e.session !== acquire) return false;
      const delayed = this.lockDelays.get(key);
      if (delayed !== undefined && delayed > performance.now() && e?.session !== acquire) return false;
      this.write(key, body, acquire, e?.session !== acquire);
      return true;
    }
    if (release !== null) {
      if (!e || e.session !== release) return false;
      e.session = '';
      e.modifyIndex = ++this.index;
      return true;
    }
    if (cas !== null) {
      const want = Number(cas);
      if (want === 0 ? e !== undefined : e?.modifyIndex !== want) return false;
    }
    this.write(key, body, e?.session ?? '', false);
    return true;
  }

  private write(key: string, value: Buffer, session: string, newLock: boolean): void {
    const idx = ++this.index;
    const e = this.kv.get(key);
    if (e) {
      e.value = value;
      e.session = session;
      e.modifyIndex = idx;
      if (newLock) e.lockIndex++;
    } else {
      this.kv.set(key, { value, session, lockIndex: newLock ? 1 : 0, createIndex: idx, modifyIndex: idx, flags: 0 });
    }
  }

  private reap(): void {
    const now = performance.now();
    for (const s of [...this.sessions.values()]) if (s.expiresAt <= now) this.invalidate(s.id);
  }

  private invalidate(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    for (const [key, e] of [...this.kv]) {
      if (e.session !== id) continue;
      this.lockDelays.set(key, performance.now() + s.lockDelayMs);
      if (s.behavior === 'delete') this.kv.delete(key);
      else e.session = '';
    }
    this.index++;
  }

  private sessionJSON(s: Session): Record<string, unknown> {
    return {
      ID: s.id,
      Name: s.name,
      Node: s.node,
      LockDelay: s.lockDelayMs * 1e6,
      Behavior: s.behavior,
      TTL: Number.isFinite(s.ttlMs) ? `${s.ttlMs / 1000}s` : '',
      CreateIndex: s.createIndex,
    };
  }
}

/** Go durations as Consul accepts them here: "10s", "1000ms", "1m". */
function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return n * unit;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
