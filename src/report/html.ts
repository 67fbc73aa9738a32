/**
 * report.html: one self-contained page. The static part: the results table (with macro-F1 and
 * ECE), the charts as inline SVG, environment and configuration. With live data (live/data.ts),
 * a live section: the logits it needs as JSON and a small inline script (live/page.ts, bundled)
 * that recomputes every method's numbers and the shown method's charts on each control change.
 * No network, no CDN: it works from file://.
 */
import { escapeHtml as esc } from '../io/display.ts';
import { MAX_CONFUSION_CLASSES } from './charts/common.ts';
import { confusedPairsHtml } from './confused-pairs.ts';
import {
  LIVE_BBSE_MAX_CLASSES,
  LIVE_ROWS_WITHOUT_PER_CLASS,
  type LiveData,
  MIN_LIVE_ROWS_PER_CLASS,
} from './live/data.ts';
import { PRIOR_RATIOS } from './live/math.ts';
import { methodColour, SPLIT_COLOURS } from './palette.ts';
import { perClassRows, worstFirst } from './per-class.ts';
import { gridEdgeWarnings, type RunResults, TABLE_HEADER, tableRows } from './results.ts';

function tableHtml(r: RunResults): string {
  const head = [...TABLE_HEADER, 'macro-F1', 'ECE'];
  const rows = tableRows(r).map((cells, i) => {
    const m = r.methods[i]!;
    const all = [...cells.map((c) => c ?? '-'), m.macroF1.toFixed(4), m.ece.toFixed(4)];
    const sw = `<span class="swatch" style="background:${esc(methodColour(m.method))}"></span>`;
    return `<tr data-method="${esc(m.method)}">${all.map((c, j) => `<td>${j === 0 ? sw : ''}${esc(c)}</td>`).join('')}</tr>`;
  });
  return `<table class="results"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

/** The worst classes first (per-class.ts), accuracy (%) per method; every class is in per-class.csv. */
function worstClassesHtml(r: RunResults, limit = 20): string {
  const rows = worstFirst(perClassRows(r)).slice(0, limit);
  const pct = (v: number | null) => (v === null ? '-' : (v * 100).toFixed(1));
  return `<h2>Per class, worst first</h2>
<p class="note">The ${rows.length} classes with the lowest test accuracy (mean over the methods) of ${r.dataset.classNames.length}; every class, with precision, recall and F1 per method, is in per-class.csv beside this page.</p>
<table class="results per-class"><thead><tr><th>class</th><th>train images</th><th>split</th>${r.methods
    .map(
      (m) =>
        `<th><span class="swatch" style="background:${esc(methodColour(m.method))}"></span>${esc(m.label)}</th>`,
    )
    .join('')}</tr></thead>
<tbody>${rows
    .map(
      (x) =>
        `<tr><td>${esc(x.name)}</td><td>${x.train}</td><td>${x.split}</td>${x.methods.map((m) => `<td>${pct(m.accuracy)}</td>`).join('')}</tr>`,
    )
    .join('\n')}</tbody></table>`;
}

/** JSON inside <script type="application/json">: no `<` at all, so nothing can close the element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

export { MIN_LIVE_ROWS_PER_CLASS };

/** The method with the best validation accuracy (ties: the first), else the best test accuracy without validation. */
export function bestMethod(r: Pick<RunResults, 'methods'>): string {
  const withVal = r.methods.filter((m) => m.valOverall !== null);
  const pool = withVal.length > 0 ? withVal : r.methods;
  let best = pool[0]!;
  for (const m of pool) if ((m.valOverall ?? m.overall) > (best.valOverall ?? best.overall)) best = m;
  return best.method;
}

/** Why the page offers no BBSE, or null when it does. */
function noBbse(live: LiveData): string | null {
  if (live.methods.some((m) => m.calibration?.valConfusion)) return null;
  if (!live.methods.some((m) => m.calibration)) return 'this page carries no calibration';
  if (live.numClasses > LIVE_BBSE_MAX_CLASSES)
    return `above ${LIVE_BBSE_MAX_CLASSES} classes its C x C solve would stall the page on every move; results.json has it`;
  return 'it needs a labeled validation split, and this run had none';
}

/** The prior-correction select: none, the known prior, or the prior estimated by EM or BBSE. */
function correctionControl(live: LiveData): string {
  const calibrated = live.methods.some((m) => m.calibration);
  const bbse = noBbse(live);
  const opt = (value: string, text: string, off: string | null = null) =>
    `<option value="${value}"${off ? ` disabled title="${esc(off)}"` : ''}>${esc(text)}</option>`;
  return `<label class="control">Prior correction <select id="live-correction">${[
    opt('none', 'none'),
    opt('known', 'known prior (the oracle)'),
    opt('em', 'estimated by EM', calibrated ? null : 'this page carries no calibration'),
    opt('bbse', 'estimated by BBSE', bbse),
  ].join('')}</select> <output id="live-correction-value" class="print-only">none</output></label>`;
}

function correctionNote(live: LiveData): string {
  const bbse = noBbse(live);
  return `The prior correction adds log(q) - log(p) + b to each method's calibrated scores z / T (T and the biases b fitted on validation, p the validation split's class shares; with no calibration, log q to the raw scores), where q is the known target prior, or the prior estimated from the test images re-weighted to the target prior, unlabeled: by EM (maximum likelihood on the calibrated probabilities) or by BBSE (the validation confusion matrix${bbse ? `; not offered here: ${esc(bbse)}` : ''}), as the shifted columns of results.md are. "prior TV" is the total-variation distance of the estimate to the target prior. The calibration is the run's: for tau-norm and logit adjustment at the run's tau only.`;
}

function liveHtml(r: RunResults, live: LiveData, script: string): string {
  const tau = live.methods.find((m) => m.kind === 'tau-norm');
  const la = live.methods.find((m) => m.kind === 'logit-adjust');
  const best = bestMethod(r);
  // Per-class views need rows per class: with fewer than MIN_LIVE_ROWS_PER_CLASS on average (a
  // large class count, or a small subsample), hidden with a sentence saying why.
  const perClassViews = live.k / live.numClasses >= MIN_LIVE_ROWS_PER_CLASS;
  const hiddenNote = perClassViews
    ? ''
    : `<p class="note" id="live-per-class-hidden">The live per-class accuracy and confusion views are hidden: the live section holds ${(live.k / live.numClasses).toFixed(1)} test images per class on average (${live.k} images, ${live.numClasses} classes), fewer than ${MIN_LIVE_ROWS_PER_CLASS}, so a class's live accuracy would be noise. Without those views the page embeds at most ${LIVE_ROWS_WITHOUT_PER_CLASS} test images, enough for the table and the reliability diagram: a live accuracy on ${live.k} images has a standard error of at most ${(50 / Math.sqrt(live.k)).toFixed(1)} points. Per-class numbers on all test images are in "Per class, worst first" below, per-class.csv and the static per-class chart.</p>`;
  const shown = live.methods.find((m) => m.method === best) ?? live.methods[0]!;
  const sample =
    live.k < live.nTest
      ? `Live numbers on ${live.k} of ${live.nTest} test images: a stratified subsample (every class in proportion to its test images, the same images for every method) that keeps the page small; the table above is on all ${live.nTest}.`
      : `Live numbers on all ${live.nTest} test images.`;
  const slider = (id: string, label: string, value: number, max: number) =>
    `<label class="control">${label} <input type="range" id="${id}" min="0" max="${max}" step="0.01" value="${value}"> <output id="${id}-value">${value.toFixed(2)}</output></label>`;
  const n = PRIOR_RATIOS.length;
  return `<section id="live">
<h2>Live: turn the post-hoc knobs</h2>
<p class="note" id="live-sample">${esc(sample)} Logits are stored as float16 (per-row float32 offset), so a number can differ from the CLI's in the last digit only where two classes' scores nearly tie.</p>
<div class="controls">
<label class="control">Method shown <select id="live-method">${live.methods
    .map((m) => `<option value="${esc(m.method)}"${m === shown ? ' selected' : ''}>${esc(m.label)}</option>`)
    .join('')}</select> <output id="live-method-value" class="print-only">${esc(shown.label)}</output></label>
${tau ? slider('live-tau', 'tau-norm: tau', tau.tau ?? 1, 2) : ''}
${la ? slider('live-la-tau', 'logit adjustment: tau', la.tau ?? 1, Math.max(2, Math.ceil(la.tau ?? 1))) : ''}
<label class="control">Target class prior of the test set <input type="range" id="live-prior" min="${-n}" max="${n}" step="1" value="0"> <output id="live-prior-value">uniform</output></label>
${correctionControl(live)}
<button type="button" id="live-reset">reset</button>
</div>
<table class="results" id="live-table"><thead><tr><th>method</th><th>All</th><th>Many</th><th>Medium</th><th>Few</th><th>macro-F1</th><th>ECE</th><th>prior TV</th></tr></thead><tbody></tbody></table>
<p class="note" id="live-correction-note"></p>
<p class="note">The prior slider runs from a forward long tail (the training order, head classes frequent; n_max / n_min 50) through the test set as it is to a backward one (reversed), with class sizes set by training-count rank, as for the shifted columns of the results (ratios 2, 10, 50). Under a prior, every number is its <b>expectation</b>: accuracy = sum over classes of prior(c) x accuracy(c), each test image weighted by prior / test images of its class; many / medium / few are means of per-class accuracy, so only a prior correction moves them. ${correctionNote(live)} The shifted columns of results.md are seeded re-samplings of the test set and differ from the expectation by that draw.</p>
${hiddenNote}
<div class="grid live-grid">
${
  perClassViews
    ? `<figure id="live-class-accuracy" class="live"><canvas width="640" height="280"></canvas><figcaption>Per-class accuracy of the shown method, head to tail; colours: <span style="color:${SPLIT_COLOURS.many}">many</span>, <span style="color:${SPLIT_COLOURS.medium}">medium</span>, <span style="color:${SPLIT_COLOURS.few}">few</span>; black marks: Joint.</figcaption></figure>
<figure id="live-confusion" class="live"><canvas width="520" height="460"></canvas><figcaption>Confusion matrix of the shown method (rows: true class, head to tail; darker = larger share).</figcaption></figure>`
    : ''
}
<figure id="live-reliability" class="live"><canvas width="420" height="340"></canvas><figcaption>Reliability diagram: accuracy (bars) and mean softmax confidence (black marks) in 15 equal-width confidence bins; grey: share of the images; ECE as results.json computes it.</figcaption></figure>
</div>
<div id="live-tip" role="tooltip" hidden></div>
<script type="application/json" id="live-data">${scriptJson(live)}</script>
<script>${script}</script>
</section>`;
}

/** Charts wider than this take the page's whole width instead of a grid column (which would shrink their text). */
export const WIDE_PX = 680;

/** The width attribute of a rendered SVG (0 when absent). */
export function svgWidth(svg: string): number {
  const m = /^<svg[^>]*?\swidth="([\d.]+)"/.exec(svg);
  return m ? Number(m[1]) : 0;
}

export function reportHtml(
  r: RunResults,
  charts: { name: string; svg: string }[],
  opts: { live?: LiveData | null; script?: string } = {},
): string {
  const env = r.environment;
  const live = opts.live && opts.script ? liveHtml(r, opts.live, opts.script) : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>longtail: ${esc(r.dataset.name)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1480px; margin: 1.5em auto; color: #222; padding: 0 1.5em; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
td, th { border: 1px solid #ccc; padding: 4px 12px; text-align: right; }
td:first-child, th:first-child { text-align: left; } th { background: #f3f3f3; }
#live-table tbody tr { cursor: pointer; } #live-table tr.shown { background: #eef4fb; font-weight: 600; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.5em; border-radius: 2px; vertical-align: -0.05em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr)); gap: 1em 2em; align-items: start; }
.live-grid { grid-template-columns: repeat(auto-fill, minmax(min(100%, 400px), 1fr)); }
@media (min-width: 1250px) { .live-grid { grid-template-columns: 1fr 1fr; } #live-class-accuracy { grid-column: 1 / -1; } }
figure { margin: 0; break-inside: avoid; page-break-inside: avoid; }
figure svg, figure canvas { max-width: 100%; height: auto; display: block; }
figure.wide { grid-column: 1 / -1; }
figcaption { font-size: 12px; color: #555; margin-top: 0.3em; }
figure.pairs figcaption { font-size: 14px; color: #222; } table.confused td:nth-child(2) { text-align: left; }
.controls { display: flex; flex-wrap: wrap; gap: 0.6em 2em; align-items: center; padding: 0.8em 1em; background: #f7f7f7; border-radius: 6px; }
.control { white-space: nowrap; } .control input[type=range] { width: 12em; vertical-align: middle; }
.print-only { display: none; }
output { font-variant-numeric: tabular-nums; font-weight: 600; }
.note { font-size: 13px; color: #444; max-width: 75em; }
#live-tip { position: absolute; background: #222; color: #fff; font-size: 12px; padding: 4px 8px; border-radius: 4px; pointer-events: none; max-width: 30em; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 12px; }
.warn { color: #a15c00; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 11px; }
  .controls { background: none; padding: 0; }
  .controls input, .controls select, .controls button { display: none; }
  #live-tip { display: none; }
  .print-only { display: inline; }
  .grid, .live-grid { grid-template-columns: 1fr 1fr; }
  figure, table, section#live .controls { break-inside: avoid; page-break-inside: avoid; }
  pre { white-space: pre-wrap; }
}
</style></head><body>
<h1>longtail: decoupled classifiers on ${esc(r.dataset.name)}</h1>
<p>Top-1 accuracy (%) on the test set (${r.dataset.testSize} images). Many &gt; ${r.dataset.thresholds.many},
medium ${r.dataset.thresholds.few}..${r.dataset.thresholds.many}, few &lt; ${r.dataset.thresholds.few} training images per class
(${r.dataset.splits.many.length} / ${r.dataset.splits.medium.length} / ${r.dataset.splits.few.length} classes); '-' = no class in that split.
Macro-F1 over the classes present; ECE of the softmax confidence, 15 bins.</p>
${tableHtml(r)}
${[...gridEdgeWarnings(r), ...r.warnings].map((w) => `<p class="warn">Warning: ${esc(w)}</p>`).join('\n')}
${live}
${worstClassesHtml(r)}
${r.dataset.classNames.length > MAX_CONFUSION_CLASSES ? confusedPairsHtml(r) : ''}
<h2>Charts</h2>
<div class="grid">
${charts.map((c) => `<figure id="${esc(c.name)}"${svgWidth(c.svg) > WIDE_PX ? ' class="wide"' : ''}>${c.svg}</figure>`).join('\n')}
</div>
<h2>Environment</h2>
<p>Backend <b>${esc(env.backend)}</b>, tfjs ${esc(env.tfjs)}, Node ${esc(env.node)}, ${env.cpus} x ${esc(env.cpuModel)} (${esc(env.platform)}).
Total ${r.seconds.total.toFixed(0)} s (stage 1 ${r.seconds.stage1.toFixed(0)} s, features ${r.seconds.features.toFixed(0)} s,
stage 2 ${r.seconds.stage2.toFixed(0)} s). Written ${esc(r.createdAt)} by <code>longtail ${esc(r.command)}</code>.</p>
<h2>Configuration</h2>
<pre>${JSON.stringify(r.config, null, 2).split('\n').map(esc).join('\n')}</pre>
</body></html>
`;
}
