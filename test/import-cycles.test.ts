// The house has no import circles (ARCHITECTURE.md): every import inside lib/, type-only ones
// included, read from the TypeScript sources (not build/, where stale files of moved modules linger).

import fs from 'fs';
import path from 'path';
import t from 'tap';
import ts from 'typescript';

const LIB = path.resolve(__dirname, '..', 'lib');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The lib/ files a module imports (import, export … from, import(), require), resolved like tsc does. */
export function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  const out: string[] = [];
  for (const ref of info.importedFiles) {
    if (!ref.fileName.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), ref.fileName);
    const hit = [`${base}.ts`, path.join(base, 'index.ts'), base.replace(/\.js$/, '.ts')].find((p) => fs.existsSync(p) && fs.statSync(p).isFile());
    if (!hit) throw new Error(`${path.relative(LIB, file)}: cannot resolve ${ref.fileName}`);
    if (hit.startsWith(LIB + path.sep)) out.push(hit);
  }
  return out;
}

/** Every elementary circle's shortest representative, found by a DFS per strongly connected component. */
export function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') {
        const circle = stack.slice(stack.indexOf(m));
        const key = [...circle].sort().join('|');
        if (!seen.has(key)) { seen.add(key); found.push([...circle, m]); }
      } else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

t.test('the cycle finder finds a circle and passes a tree', async (t) => {
  t.same(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), [['a', 'b', 'c', 'a']]);
  t.same(cycles(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]])), []);
  t.same(cycles(new Map([['a', ['a']]])), [['a', 'a']]);
});

t.test('lib/ has no import circle', async (t) => {
  const files = sources(LIB);
  t.ok(files.length > 20, `read ${files.length} modules of lib/`);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  t.ok([...graph.values()].some((deps) => deps.length > 0), 'the modules import each other at all');
  const found = cycles(graph).map((c) => c.map((f) => path.relative(LIB, f)).join(' → '));
  t.same(found, [], found.length ? `import circles:\n  ${found.join('\n  ')}` : 'no import circles');
});

t.test('only lib/http speaks koa', async (t) => {
  const speakers = sources(LIB).filter((f) =>
    ts.preProcessFile(fs.readFileSync(f, 'utf8'), true, true).importedFiles.some((r) => r.fileName === 'koa' || r.fileName.startsWith('koa/') || r.fileName.startsWith('@koa/')))
    .map((f) => path.relative(LIB, f));
  t.ok(speakers.length > 0, 'lib/http does import koa (the check sees imports at all)');
  t.same(speakers.filter((f) => !f.startsWith(`http${path.sep}`)), [], 'no module outside lib/http imports koa');
});
