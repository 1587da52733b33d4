/**
 * The layers of ../shared/ARCHITECTURE.md, checked on the import statements themselves: dependencies point one
 * way (shells → services → config → errors), a lower service never imports a higher one, and no import circles
 * exist anywhere. A new services/ folder must be given its place in LAYERS before anything imports it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Lower number = lower layer. Modules may import their own area and strictly lower layers. */
const LAYERS: Record<string, number> = {
  errors: 0,
  config: 1,
  'services/checksum': 2,
  'services/throttle': 2,
  'services/storage': 3,
  'services/auth': 3,
  'services/marking': 3,
  'services/processing': 3,
  'services/transfer': 4,
  'services/jobs': 5,
  'services/probe': 5,
  'services/exports': 6,
  gateway: 7,
  workers: 7,
  bin: 8,
};
const SOURCE_ROOTS = ['errors', 'config', 'services', 'gateway', 'workers', 'bin'];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The area of a repository-relative path: `services/<folder>` for services, else the top folder. */
function areaOf(rel: string): string {
  const parts = rel.split(sep);
  return parts[0] === 'services' && parts.length > 2 ? `services/${parts[1]}` : parts[0]!;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

/** Repository-relative .ts paths each file imports (relative imports only; packages are not layers). */
function importsOf(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2]!;
    if (!spec.startsWith('.')) continue;
    out.push(relative(root, normalize(join(dirname(file), spec))).replace(/\.js$/, '.ts'));
  }
  return out;
}

const files = SOURCE_ROOTS.flatMap((d) => tsFiles(join(root, d))).map((f) => relative(root, f));
const graph = new Map(files.map((f) => [f, importsOf(join(root, f))]));

test('every source area has a layer', () => {
  const missing = [...new Set(files.map(areaOf))].filter((a) => !(a in LAYERS));
  assert.deepEqual(missing, [], `give these folders a layer in LAYERS: ${missing.join(', ')}`);
});

test('no import runs upward: shells → services → config → errors, lower services never import higher ones', () => {
  const bad: string[] = [];
  for (const [from, targets] of graph) {
    const a = areaOf(from);
    for (const to of targets) {
      const b = areaOf(to);
      if (a === b || !(b in LAYERS)) continue;
      if (LAYERS[b]! >= LAYERS[a]!) bad.push(`${from} → ${to} (${a} may not import ${b})`);
    }
  }
  assert.deepEqual(bad, []);
});

test('no import circles', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const to of graph.get(f) ?? []) {
      if (!graph.has(to)) continue;
      const s = state.get(to);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to].join(' → '));
      else if (s === undefined) visit(to);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});
