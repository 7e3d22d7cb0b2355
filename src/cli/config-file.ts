/**
 * Finding and reading `litefs.yml` the way LiteFS does (ref §12.2): the
 * `-config` path, else ./litefs.yml, ~/litefs.yml, /etc/litefs.yml (first that
 * exists); `$HOSTNAME` filled in when unset; env expansion unless disabled.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, parseConfig, type Config } from './config.js';
import { expandEnv, type Env } from './env-expand.js';

export interface LoadOptions {
  /** Value of -config; undefined = search. */
  readonly path?: string | undefined;
  readonly noExpandEnv?: boolean;
  readonly env?: Env;
  readonly cwd?: string;
  readonly home?: string;
}

export interface LoadedConfig {
  readonly path: string;
  readonly config: Config;
}

export function configSearchPaths(cwd: string, home: string): string[] {
  return [join(cwd, 'litefs.yml'), join(home, 'litefs.yml'), '/etc/litefs.yml'];
}

export function loadConfigFile(opts: LoadOptions = {}): LoadedConfig {
  const cwd = opts.cwd ?? process.cwd();
  const env: Env = { HOSTNAME: hostname(), ...(opts.env ?? process.env) };
  let path: string;
  if (opts.path !== undefined && opts.path !== '') {
    path = resolve(cwd, opts.path);
    if (!existsSync(path)) throw new ConfigError(`config file not found: ${path}`);
  } else {
    const found = configSearchPaths(cwd, opts.home ?? homedir()).find((p) => existsSync(p));
    if (found === undefined) {
      throw new ConfigError('config file not found (looked for ./litefs.yml, ~/litefs.yml, /etc/litefs.yml; use -config PATH)');
    }
    path = found;
  }
  const raw = readFileSync(path, 'utf8');
  const text = opts.noExpandEnv === true ? raw : expandEnv(raw, env);
  try {
    return { path, config: parseConfig(text) };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${path}: ${err.message}`);
    throw err;
  }
}
