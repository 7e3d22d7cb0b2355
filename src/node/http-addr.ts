/** `http.addr` in Go's `host:port` form (`:20202` = every interface). */
export interface ListenAddr {
  /** undefined: every interface. */
  readonly host: string | undefined;
  readonly port: number;
}

export class HTTPAddrError extends Error {
  override readonly name = 'HTTPAddrError';
}

/** Parses `addr`; `key` names the config key in the error. */
export function parseListenAddr(addr: string, key = 'http.addr'): ListenAddr {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(addr);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) throw new HTTPAddrError(`invalid ${key}: ${JSON.stringify(addr)} (want host:port)`);
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? undefined : host, port };
}
