/**
 * Per-class outputs: per-class.csv (every class, every method) and the worst classes first for
 * results.md and report.html. Class names are user data: quoted in CSV, escaped in Markdown.
 */
import { csvField } from '../io/display.ts';
import type { RunResults } from './results.ts';

type Split = 'many' | 'medium' | 'few';

export interface PerClassRow {
  class: number;
  name: string;
  train: number;
  split: Split;
  /** Per method, in results order: accuracy (= recall: the class's test images classified as it), precision, F1. */
  methods: { accuracy: number | null; precision: number | null; f1: number | null }[];
  /** Mean accuracy over the methods that have one (the worst-first order); null when none. */
  mean: number | null;
}

function splitOf(r: RunResults, c: number): Split {
  const s = r.dataset.splits;
  return s.many.includes(c) ? 'many' : s.medium.includes(c) ? 'medium' : 'few';
}

/** Precision of class c from the method's per-class precision, else its confusion matrix. */
function precisionOf(m: RunResults['methods'][number], c: number): number | null {
  if (m.perClassPrecision) return m.perClassPrecision[c] ?? null;
  if (m.confusion.length === 0) return null;
  let predicted = 0;
  for (const row of m.confusion) predicted += row[c] ?? 0;
  return predicted === 0 ? null : m.confusion[c]![c]! / predicted;
}

export function perClassRows(r: RunResults): PerClassRow[] {
  const splitByClass = new Map<number, Split>();
  for (const k of ['many', 'medium', 'few'] as const)
    for (const c of r.dataset.splits[k]) splitByClass.set(c, k);
  return r.dataset.classNames.map((name, c) => {
    const methods = r.methods.map((m) => {
      const accuracy = m.perClass[c] ?? null;
      const precision = precisionOf(m, c);
      // F1 of a class with test images: 0 when it is never predicted (precision undefined, recall 0).
      const p = precision ?? 0;
      const f1 = accuracy === null ? null : p + accuracy === 0 ? 0 : (2 * p * accuracy) / (p + accuracy);
      return { accuracy, precision, f1 };
    });
    const accs = methods.map((x) => x.accuracy).filter((a): a is number => a !== null);
    return {
      class: c,
      name,
      train: r.dataset.trainCounts[c] ?? 0,
      split: splitByClass.get(c) ?? splitOf(r, c),
      methods,
      mean: accs.length === 0 ? null : accs.reduce((a, b) => a + b, 0) / accs.length,
    };
  });
}

/** Worst first: lowest mean accuracy, then fewer training images, then class index; classes without test images last. */
export function worstFirst(rows: PerClassRow[]): PerClassRow[] {
  return [...rows].sort(
    (a, b) =>
      (a.mean ?? Number.POSITIVE_INFINITY) - (b.mean ?? Number.POSITIVE_INFINITY) ||
      a.train - b.train ||
      a.class - b.class,
  );
}

const num = (v: number | null) => (v === null ? '' : String(Math.round(v * 1e6) / 1e6));

/**
 * per-class.csv: class index, name, training images, split, then per method its accuracy,
 * precision, recall and F1 on the test set (fractions; empty when undefined: a class with no test
 * image, or precision of a class never predicted). Rows in class order.
 */
export function perClassCsv(r: RunResults): string {
  const header = ['class', 'name', 'train_count', 'split'];
  for (const m of r.methods)
    for (const k of ['accuracy', 'precision', 'recall', 'f1']) header.push(`${m.method}_${k}`);
  const lines = [header.map(csvField).join(',')];
  for (const row of perClassRows(r)) {
    const cells = [String(row.class), csvField(row.name), String(row.train), row.split];
    for (const m of row.methods) cells.push(num(m.accuracy), num(m.precision), num(m.accuracy), num(m.f1));
    lines.push(cells.join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Markdown inline text: escapes what Markdown or HTML would interpret, and keeps one line. */
export function mdText(s: string): string {
  return s
    .replace(/[\r\n]+/g, ' ')
    .replace(/[\\`*_{}[\]()#+!|~]/g, (ch) => `\\${ch}`)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;');
}

/** results.md's per-class section: the `limit` worst classes, accuracy (%) per method. */
export function worstClassesMarkdown(r: RunResults, limit = 20): string[] {
  const rows = worstFirst(perClassRows(r)).slice(0, limit);
  const pct = (v: number | null) => (v === null ? '-' : (v * 100).toFixed(1));
  return [
    `## Per class, worst first (${rows.length} of ${r.dataset.classNames.length}; every class in per-class.csv)`,
    '',
    'Test accuracy (%) per class, ordered by the mean over the methods.',
    '',
    `| class | train | split | ${r.methods.map((m) => mdText(m.label)).join(' | ')} |`,
    `|---|---:|---|${r.methods.map(() => '---:').join('|')}|`,
    ...rows.map(
      (x) =>
        `| ${mdText(x.name)} | ${x.train} | ${x.split} | ${x.methods.map((m) => pct(m.accuracy)).join(' | ')} |`,
    ),
    '',
  ];
}
