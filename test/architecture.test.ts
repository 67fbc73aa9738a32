/**
 * Dependencies point one way (docs/architecture.md). Every relative import of every non-test source
 * file under src/ (`import`, `import type`, `export ... from`, `import()`, and worker entries
 * located with `new URL('./x.ts', import.meta.url)`) is mapped to the top-level folder it
 * leaves and the one it enters; an import into a higher tier, or a cycle between folders of
 * one tier, fails with the file, line and import named.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/**
 * Tiers from the top. A unit may import its own tier (if no cycle forms) and any tier below.
 * Files directly in src/ are units of their own: index.ts is the public barrel (top);
 * errors.ts, registry.ts and settings.ts are used by everyone (bottom). `config` composes the
 * command schemas from the registries' own settings (data sources, stage 1 with its backbones and
 * samplers, stage-2 methods), so it sits at the pipeline's tier, above every registry it composes;
 * nothing below imports it (no hook). `workers` is the worker-thread service
 * (boot and spawn): it runs the entries it is handed and imports none of its users. `optim` is
 * SGD and the LR schedule, which stage 1 and the stage-2 heads share.
 */
const TIERS: readonly (readonly string[])[] = [
  ['index.ts'],
  ['cli'],
  ['pipeline', 'config'],
  ['deploy', 'report'],
  ['classifiers'],
  ['features'],
  ['train'],
  ['models', 'sampling', 'data', 'optim'],
  ['backend', 'eval', 'random', 'io', 'workers'],
  ['errors.ts', 'registry.ts', 'settings.ts'],
];

/**
 * Known violations that are being fixed elsewhere, each with its reason. An entry that no
 * longer matches an import fails the test, so the list only ever shrinks.
 */
/**
 * Units that stand side by side whatever their tiers: stage 2 (classifiers) and feature
 * extraction use what sits below both stages (sampling, optim, data), never stage 1's own code,
 * so either stage can change or be replaced (stage 1 elsewhere) without touching the other.
 */
const APART: readonly { from: string; to: string }[] = [
  { from: 'classifiers', to: 'train' },
  { from: 'features', to: 'train' },
];

const ALLOWED: readonly { from: string; to: string; why: string }[] = [];

interface Import {
  /** Importing file, relative to src/ with '/' separators. */
  file: string;
  line: number;
  specifier: string;
  /** Imported file, relative to src/ (may start with '..' when it leaves src/). */
  target: string;
}

/** The source text with comments blanked (newlines kept, so line numbers stay right). */
function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      // A string: copy it whole (a '//' inside it is not a comment).
      let j = i + 1;
      while (j < text.length && text[j] !== c && !(c !== '`' && text[j] === '\n'))
        j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const SPECIFIER_PATTERNS = [
  // import x from '…', import type { X } from '…', export { x } from '…', export * from '…'
  /\b(?:import|export)\s[^;'"]*?\bfrom\s*(['"])([^'"]+)\1/g,
  // import '…' (side effects only)
  /\bimport\s*(['"])([^'"]+)\1/g,
  // import('…')
  /\bimport\(\s*(['"])([^'"]+)\1\s*\)/g,
  // new URL('./worker.ts', import.meta.url): a worker entry is a dependency too
  /\bnew URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url\s*\)/g,
];

/** The relative imports of one file's text. */
function relativeImports(file: string, text: string): Import[] {
  const code = stripComments(text);
  const found: Import[] = [];
  const seen = new Set<number>();
  for (const pattern of SPECIFIER_PATTERNS) {
    for (const m of code.matchAll(pattern)) {
      const specifier = m[2]!;
      const at = m.index + m[0].lastIndexOf(specifier);
      if (!specifier.startsWith('.') || seen.has(at)) continue;
      seen.add(at);
      const target = join(dirname(file), specifier).split(sep).join('/');
      found.push({ file, line: code.slice(0, at).split('\n').length, specifier, target });
    }
  }
  return found.sort((a, b) => a.line - b.line);
}

/** The unit a path relative to src/ belongs to: its top-level folder, or the file itself. */
function unitOf(path: string): string {
  return path.split('/')[0]!;
}

function tierOf(unit: string): number {
  return TIERS.findIndex((t) => t.includes(unit));
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !/\.test\.ts$/.test(e.name) && !e.name.endsWith('.d.ts'))
      out.push(relative(SRC, p).split(sep).join('/'));
  }
  return out.sort();
}

const show = (i: Import) => `src/${i.file}:${i.line} imports '${i.specifier}'`;

/** Strongly connected components of more than one unit (Tarjan). */
function components(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n);
    n++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** For each unit of a component, the shortest cycle through it (breadth first), without repeats. */
function shortestCycles(scc: string[], edges: Map<string, Set<string>>): string[][] {
  const found = new Map<string, string[]>();
  for (const start of scc) {
    const prev = new Map<string, string>();
    const queue = [start];
    let end: string | null = null;
    while (queue.length > 0 && end === null) {
      const v = queue.shift()!;
      for (const w of [...(edges.get(v) ?? [])].sort()) {
        if (!scc.includes(w)) continue;
        if (w === start) {
          end = v;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    if (end === null) continue;
    const path = [end];
    while (path[0] !== start) path.unshift(prev.get(path[0]!)!);
    // Rotate to begin at the smallest name, so one cycle found from two units is kept once.
    const k = path.indexOf([...path].sort()[0]!);
    const cycle = [...path.slice(k), ...path.slice(0, k)];
    found.set(cycle.join('>'), cycle);
  }
  return [...found.values()];
}

/** Every rule broken by `imports`, as sentences naming file, line and import. */
function violations(files: string[], imports: Import[]): string[] {
  const problems: string[] = [];
  for (const unit of new Set(files.map(unitOf)))
    if (tierOf(unit) < 0)
      problems.push(
        `src/${unit} is in no tier of the dependency order: place it in TIERS (test/architecture.test.ts)`,
      );

  const allowed = (i: Import) => ALLOWED.some((a) => a.from === i.file && a.to === i.target);
  for (const a of ALLOWED)
    if (!imports.some((i) => i.file === a.from && i.target === a.to))
      problems.push(
        `allow-listed import src/${a.from} -> src/${a.to} no longer exists: remove it from ALLOWED`,
      );

  const edges = new Map<string, Set<string>>();
  const witness = new Map<string, Import>();
  for (const i of imports) {
    if (i.target.startsWith('../')) continue; // leaves src/ (package.json, data/): not a layer
    const from = unitOf(i.file);
    const to = unitOf(i.target);
    if (from === to || allowed(i)) continue;
    const [tf, tt] = [tierOf(from), tierOf(to)];
    if (tt < 0) problems.push(`${show(i)}: src/${to} is in no tier of the dependency order`);
    else if (APART.some((a) => a.from === from && a.to === to))
      problems.push(`${show(i)}: ${from} must not depend on ${to} (what both stages share sits below them)`);
    else if (tt < tf)
      problems.push(`${show(i)}: ${from} (tier ${tf}) must not depend on ${to} (tier ${tt}, higher)`);
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from)!.add(to);
    if (!witness.has(`${from}>${to}`)) witness.set(`${from}>${to}`, i);
  }
  for (const scc of components(edges))
    for (const cycle of shortestCycles(scc, edges)) {
      const steps = cycle.map((u, k) => show(witness.get(`${u}>${cycle[(k + 1) % cycle.length]}`)!));
      problems.push(`cycle ${[...cycle, cycle[0]].join(' -> ')}: ${steps.join('; ')}`);
    }
  return problems;
}

function srcImports(): { files: string[]; imports: Import[] } {
  const files = sourceFiles(SRC);
  const imports = files.flatMap((f) => relativeImports(f, readFileSync(resolve(SRC, f), 'utf8')));
  return { files, imports };
}

describe('architecture: dependencies point one way', () => {
  it('finds the imports in every form the code uses', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from '../b/b.ts';",
      'import {',
      '  c,',
      '  type C,',
      "} from '../c/c.ts';",
      "export { d } from './d.ts';",
      "export * from '../e/e.ts';",
      "import './side.ts';",
      "const f = await import('../f/f.ts');",
      "const w = new URL('./worker.ts', import.meta.url);",
      "// import { no } from '../comment/x.ts';",
      "/* export * from '../comment/y.ts'; */",
      "const url = 'http://x'; import { g } from 'node:fs';",
    ].join('\n');
    const got = relativeImports('x/y.ts', text).map((i) => [i.line, i.target]);
    assert.deepEqual(got, [
      [1, 'x/a.ts'],
      [2, 'b/b.ts'],
      [6, 'c/c.ts'],
      [7, 'x/d.ts'],
      [8, 'e/e.ts'],
      [9, 'x/side.ts'],
      [10, 'f/f.ts'],
      [11, 'x/worker.ts'],
    ]);
  });

  it('names an upward import and a cycle with file and line', () => {
    const files = [
      'train/joint.ts',
      'cli/common.ts',
      'report/markdown.ts',
      'data/a.ts',
      'models/b.ts',
      'classifiers/c.ts',
    ];
    const imports = [
      ...relativeImports('classifiers/c.ts', "import { cosineLr } from '../train/schedule.ts';"),
      ...relativeImports('report/markdown.ts', "import { formatTable } from '../cli/common.ts';"),
      ...relativeImports('data/a.ts', "\nimport type { B } from '../models/b.ts';"),
      ...relativeImports('models/b.ts', "import { a } from '../data/a.ts';"),
    ];
    assert.deepEqual(violations(files, imports), [
      "src/classifiers/c.ts:1 imports '../train/schedule.ts': classifiers must not depend on train (what both stages share sits below them)",
      "src/report/markdown.ts:1 imports '../cli/common.ts': report (tier 3) must not depend on cli (tier 1, higher)",
      "cycle data -> models -> data: src/data/a.ts:2 imports '../models/b.ts'; src/models/b.ts:1 imports '../data/a.ts'",
    ]);
  });

  it('holds for src/', () => {
    const { files, imports } = srcImports();
    assert.ok(imports.length > 100, `only ${imports.length} relative imports found: is the scanner broken?`);
    const problems = violations(files, imports);
    assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
  });
});
