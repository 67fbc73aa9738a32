/**
 * The confusion above MAX_CONFUSION_CLASSES classes: not a matrix (1,000 classes would be a
 * million cells) but the most-confused pairs, true -> predicted, with their count and share of
 * the true class's test images, one table per method. From results.json's `confusedPairs`, or
 * from its confusion matrix for runs written before those were kept.
 */
import { escapeHtml as esc } from '../io/display.ts';
import { methodColour } from './palette.ts';
import { mdText } from './per-class.ts';
import type { RunResults } from './results.ts';

type MethodResult = RunResults['methods'][number];
export type ConfusedPair = { true: number; predicted: number; count: number; share: number };

/** A method's most-confused pairs (largest count first), or null when the run kept neither pairs nor a matrix. */
export function confusedPairsOf(m: MethodResult, limit = 10): ConfusedPair[] | null {
  if (m.confusedPairs) return m.confusedPairs.slice(0, limit);
  if (m.confusion.length === 0) return null;
  const out: ConfusedPair[] = [];
  m.confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      if (p !== t && count > 0) out.push({ true: t, predicted: p, count, share: count / total });
    });
  });
  return out
    .sort((a, b) => b.count - a.count || a.true - b.true || a.predicted - b.predicted)
    .slice(0, limit);
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

/** The report's section: a small table per method (class names escaped). */
export function confusedPairsHtml(r: RunResults, limit = 10): string {
  const name = (c: number) => esc(r.dataset.classNames[c] ?? String(c));
  const tables = r.methods.flatMap((m) => {
    const pairs = confusedPairsOf(m, limit);
    if (pairs === null) return [];
    const body =
      pairs.length === 0
        ? '<tr><td colspan="4">no errors</td></tr>'
        : pairs
            .map(
              (p) =>
                `<tr><td>${name(p.true)}</td><td>${name(p.predicted)}</td><td>${p.count}</td><td>${pct(p.share)}</td></tr>`,
            )
            .join('\n');
    return [
      `<figure class="pairs" id="confused-${esc(m.method)}"><figcaption><span class="swatch" style="background:${esc(methodColour(m.method))}"></span><b>${esc(m.label)}</b></figcaption>
<table class="results confused"><thead><tr><th>true class</th><th>predicted as</th><th>images</th><th>share of true class</th></tr></thead>
<tbody>${body}</tbody></table></figure>`,
    ];
  });
  if (tables.length === 0) return '';
  return `<h2>Most-confused classes</h2>
<p class="note">With ${r.dataset.classNames.length} classes a confusion matrix is unreadable: instead, each method's ${limit} most frequent errors on the test set (true class -> predicted class), the number of test images and their share of the true class's test images.</p>
<div class="grid">
${tables.join('\n')}
</div>`;
}

/** The same, for results.md (the best-first method order of the run). */
export function confusedPairsMarkdown(r: RunResults, limit = 10): string[] {
  const name = (c: number) => mdText(r.dataset.classNames[c] ?? String(c));
  return r.methods.flatMap((m) => {
    const pairs = confusedPairsOf(m, limit);
    if (pairs === null || pairs.length === 0) return [];
    return [
      '',
      `**${mdText(m.label)}**`,
      '',
      '| true class | predicted as | images | share of true class |',
      '|---|---|---:|---:|',
      ...pairs.map((p) => `| ${name(p.true)} | ${name(p.predicted)} | ${p.count} | ${pct(p.share)} |`),
    ];
  });
}
