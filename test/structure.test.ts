/**
 * Structure rules of DEVELOPERS.md checked on the sources: no import cycles
 * (static, dynamic and type-only imports all count: a cycle of types is still
 * two modules that cannot be understood apart), nothing in the shipped
 * library imports benchmark, test or development-only code, and environment
 * variables are read in one module each (lib/env.ts for the library,
 * test/helpers/env.ts for tests and benchmarks), every one documented in the
 * README's "Environment variables" table.
 *
 * Imports are listed by TypeScript's own pre-processor (`ts.preProcessFile`).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { LIBRARY_ENV } from '../lib/env.js';
import { DEV_ENV } from './helpers/env.js';
import { repoRoot } from './helpers/shared.js';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (/\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Module specifiers a file imports (static, dynamic, type-only, re-exports). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(path.join(repoRoot, file), 'utf8'), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

/** Relative imports resolved to repository paths (.js → .ts as NodeNext resolution does). */
function localImports(file: string): string[] {
  const out: string[] = [];
  for (const spec of importsOf(file)) {
    if (!spec.startsWith('.')) continue;
    const target = path.normalize(path.join(path.dirname(file), spec)).replace(/\.js$/, '.ts');
    if (fs.existsSync(path.join(repoRoot, target))) out.push(target);
  }
  return out;
}

/** Every strongly connected component of more than one module (Tarjan). */
export function cycles(files: readonly string[]): string[][] {
  const graph = new Map(files.map((f) => [f, localImports(f)]));
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return out;
}

const lib = sources('lib');
const bench = sources('bench');
const tests = sources('test');

describe('import structure', () => {
  // Cycles being removed by their owners (issue 14: h5/keras3).
  // Delete an entry once it is gone; a cycle not listed here fails.
  const KNOWN = new Set([
    ['lib/formats/h5.ts', 'lib/formats/keras3.ts'].join(' '),
  ]);

  it('has no import cycles in lib/, bench/ or test/', () => {
    const found = cycles([...lib, ...bench, ...tests]).filter((c) => !KNOWN.has(c.join(' ')));
    expect(found).toEqual([]);
  });

  it('finds a cycle when there is one (the checker itself)', () => {
    const dir = fs.mkdtempSync(path.join(repoRoot, 'test', '.tmp-cycle-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b.js';\nexport type A = B;\n");
      fs.writeFileSync(path.join(dir, 'b.ts'), "export type B = number;\nexport async function f() { return import('./a.js'); }\n");
      const rel = path.relative(repoRoot, dir);
      expect(cycles([path.join(rel, 'a.ts'), path.join(rel, 'b.ts')])).toEqual([[path.join(rel, 'a.ts'), path.join(rel, 'b.ts')]]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the shipped library imports no benchmark/test code and no devDependency', () => {
    const require = createRequire(import.meta.url);
    const pkg = require('../package.json') as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const bad: string[] = [];
    for (const f of lib) {
      for (const spec of importsOf(f)) {
        if (spec.startsWith('.')) {
          const target = path.normalize(path.join(path.dirname(f), spec));
          if (!target.startsWith(`lib${path.sep}`) && !target.startsWith('package.json')) bad.push(`${f} -> ${spec}`);
        } else if (!spec.startsWith('node:')) {
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          if (!(name in pkg.dependencies) && name !== 'node-addon-api') bad.push(`${f} -> ${spec}${name in pkg.devDependencies ? ' (devDependency)' : ''}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });
});

describe('environment variables', () => {
  const readers = new Set([path.join('lib', 'env.ts'), path.join('test', 'helpers', 'env.ts')]);

  it('are read only by lib/env.ts (library) and test/helpers/env.ts (tests, benchmarks)', () => {
    const offenders: string[] = [];
    for (const f of [...lib, ...bench, ...sources(path.join('test', 'helpers'))]) {
      if (readers.has(f)) continue;
      const text = fs.readFileSync(path.join(repoRoot, f), 'utf8');
      // process.env passed on whole to a child process is not a read of a variable.
      const reads = text.match(/process\.env(?:\.[A-Z_]+|\[)/g);
      if (reads) offenders.push(`${f}: ${reads.join(', ')}`);
    }
    expect(offenders).toEqual([]);
  });

  it('are each documented in the README table', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Environment variables'));
    expect(section.length).toBeLessThan(readme.length);
    const table = section.slice(0, section.indexOf('\n## ') > 0 ? section.indexOf('\n## ') : undefined);
    const missing = [...LIBRARY_ENV, ...DEV_ENV].map((e) => e.name).filter((n) => !table.includes(`| \`${n}\``));
    expect(missing).toEqual([]);
  });
});
