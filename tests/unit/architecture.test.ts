import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/project';

// The rooms of src/ and their rule (docs/architecture.md, "Layout"): every folder is a room, the files
// directly in src/ one more; imports between rooms only go down, so no two rooms import each other, even
// through others. And no file of src/ over MAX_LINES lines: a file that grows past it is split by concern.

const SRC = path.join(projectRoot(), 'src');
const MAX_LINES = 400;

interface Import {
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

/** The file a relative specifier names: <spec>.ts, <spec>.d.ts or <spec>/index.ts. */
function resolve(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  const candidates = [`${base}.ts`, `${base}.d.ts`, path.join(base, 'index.ts'), base.replace(/\.js$/, '.ts')];
  return candidates.find((c) => files.includes(c));
}

/** Every relative import of a file: `import … from`, `export … from`, side-effect imports and import(). */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g),
  ].map((m) => m[1] as string);
  return specs.flatMap((spec) => {
    const to = resolve(file, spec);
    if (!to) throw new Error(`${path.relative(SRC, file)}: import '${spec}' names no file of src/`);
    return [{ from: file, to }];
  });
}

/** The room of a file: its folder under src/, or "src" for the files directly in it. */
const roomOf = (file: string): string => path.relative(SRC, path.dirname(file)) || 'src';
const name = (file: string): string => path.relative(SRC, file);

/** Strongly connected groups of rooms (Tarjan): every group of more than one is a cycle. */
function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

const files = sourceFiles(SRC);
const imports = files.flatMap(importsOf).filter((i) => roomOf(i.from) !== roomOf(i.to));
const roomEdges = new Map<string, Set<string>>();
for (const { from, to } of imports) {
  const edges = roomEdges.get(roomOf(from)) ?? new Set<string>();
  edges.add(roomOf(to));
  roomEdges.set(roomOf(from), edges);
}

describe('the rooms of src/', () => {
  it('finds the imports it checks (a parser that found none would pass anything)', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(imports.length).toBeGreaterThan(100);
    expect(roomEdges.get('cli')?.has('cli/commands')).toBe(true);
  });

  it('finds a cycle through several rooms, and none in rooms that only import down', () => {
    const graph = (edges: [string, string][]) => {
      const map = new Map<string, Set<string>>();
      for (const [a, b] of edges) map.set(a, (map.get(a) ?? new Set()).add(b));
      return map;
    };
    expect(
      cycles(
        graph([
          ['a', 'b'],
          ['b', 'c'],
          ['c', 'a'],
          ['c', 'd'],
        ]),
      ),
    ).toEqual([['a', 'b', 'c']]);
    expect(
      cycles(
        graph([
          ['a', 'b'],
          ['b', 'c'],
          ['a', 'c'],
        ]),
      ),
    ).toEqual([]);
  });

  it('has no cycle between rooms: each one listed with the imports that close it', () => {
    const offenders = cycles(roomEdges).map((group) => ({
      rooms: group.join(' <-> '),
      imports: imports
        .filter((i) => group.includes(roomOf(i.from)) && group.includes(roomOf(i.to)))
        .map((i) => `${name(i.from)} -> ${name(i.to)}`)
        .filter((line, n, all) => all.indexOf(line) === n),
    }));
    expect(offenders).toEqual([]);
  });

  it(`has no file over ${MAX_LINES} lines`, () => {
    const oversize = files
      .map((file) => ({ file: name(file), lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > MAX_LINES);
    expect(oversize.map((f) => `${f.file}: ${f.lines} lines`)).toEqual([]);
  });
});
