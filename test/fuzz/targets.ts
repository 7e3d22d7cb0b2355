import { readdirSync } from 'node:fs';
import type { FuzzTarget } from './target.js';

/** Loads every compiled target module in dist/test/fuzz/targets/. */
export async function loadTargets(): Promise<FuzzTarget[]> {
  const dir = new URL('./targets/', import.meta.url);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.js')).sort();
  } catch {
    return [];
  }
  const targets: FuzzTarget[] = [];
  for (const name of names) {
    const mod = (await import(new URL(name, dir).href)) as { target?: FuzzTarget };
    if (mod.target === undefined) throw new Error(`fuzz target module ${name} exports no 'target'`);
    targets.push(mod.target);
  }
  return targets;
}
