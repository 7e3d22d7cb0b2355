/**
 * Go-style command-line flags, as LiteFS's CLI uses them: `-name value`,
 * `-name=value`, `--name value`; boolean flags take no value (`-debug`) or an
 * explicit `-debug=false`. Parsing stops at the first non-flag argument or at
 * `--`; what follows is returned as positional arguments.
 */
export interface FlagSpec {
  readonly name: string;
  readonly kind: 'string' | 'boolean';
  readonly usage: string;
  readonly default?: string | boolean;
}

export interface ParsedFlags {
  readonly strings: ReadonlyMap<string, string>;
  readonly booleans: ReadonlyMap<string, boolean>;
  readonly positional: readonly string[];
  /** Arguments after a literal `--`, or undefined when there was none. */
  readonly afterDoubleDash: readonly string[] | undefined;
}

export class FlagError extends Error {
  override readonly name = 'FlagError';
}

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const strings = new Map<string, string>();
  const booleans = new Map<string, boolean>();
  for (const s of specs) {
    if (s.kind === 'string' && typeof s.default === 'string') strings.set(s.name, s.default);
    if (s.kind === 'boolean') booleans.set(s.name, s.default === true);
  }
  let i = 0;
  let afterDoubleDash: string[] | undefined;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      afterDoubleDash = argv.slice(i + 1);
      i = argv.length;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = byName.get(name);
    if (spec === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    if (spec.kind === 'boolean') {
      if (eq < 0) booleans.set(name, true);
      else booleans.set(name, parseBool(name, body.slice(eq + 1)));
      continue;
    }
    if (eq >= 0) {
      strings.set(name, body.slice(eq + 1));
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new FlagError(`flag needs an argument: -${name}`);
    strings.set(name, value);
    i++;
  }
  const positional = argv.slice(i);
  // A `--` after positional arguments still separates the command to run.
  const dd = positional.indexOf('--');
  if (afterDoubleDash === undefined && dd >= 0) {
    return { strings, booleans, positional: positional.slice(0, dd), afterDoubleDash: positional.slice(dd + 1) };
  }
  return { strings, booleans, positional, afterDoubleDash };
}

function parseBool(name: string, value: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new FlagError(`invalid boolean value "${value}" for -${name}`);
}

export function flagUsage(specs: readonly FlagSpec[]): string {
  return specs
    .map((s) => `  -${s.name}${s.kind === 'string' ? ' value' : ''}\n    \t${s.usage}`)
    .join('\n');
}
