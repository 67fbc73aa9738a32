/** results.md: the paper's table (table.ts) and the facts a reader needs, in Markdown. */
import { calibrationMarkdown } from './calibration-md.ts';
import { MAX_CONFUSION_CLASSES } from './charts/common.ts';
import { confusedPairsMarkdown } from './confused-pairs.ts';
import { mdText, worstClassesMarkdown } from './per-class.ts';
import { gridEdgeWarnings, type RunResults, shiftedColumns, shiftedRows } from './results.ts';
import { markdownTable } from './table.ts';

export function resultsMarkdown(r: RunResults, charts: string[]): string {
  const s1 = r.stage1;
  const lines = [
    `# longtail results: ${r.dataset.name}`,
    '',
    `Top-1 accuracy (%) on the balanced test set (${r.dataset.testSize} images). Splits by training images per class: ` +
      `many > ${r.dataset.thresholds.many} (${r.dataset.splits.many.length} classes), medium ${r.dataset.thresholds.few}..${r.dataset.thresholds.many} ` +
      `(${r.dataset.splits.medium.length}), few < ${r.dataset.thresholds.few} (${r.dataset.splits.few.length}); '-' = no class in that split.`,
    '',
    markdownTable(r),
    '',
    '| method | macro-F1 | ECE | val All | stage-2 mode | seconds |',
    '|---|---:|---:|---:|---|---:|',
    ...r.methods.map(
      (m) =>
        `| ${m.label} | ${m.macroF1.toFixed(4)} | ${m.ece.toFixed(4)} | ${m.valOverall === null ? '-' : m.valOverall.toFixed(1)} | ${m.mode ?? '-'} | ${m.seconds} |`,
    ),
    '',
    ...shiftedMarkdown(r),
    ...calibrationMarkdown(r),
    s1
      ? `Stage 1: ${String(r.config.backbone)}, ${String(r.config.sampler)} sampling, ${s1.history.length} epochs in ${s1.seconds.toFixed(0)} s; best validation epoch ${s1.bestEpoch}` +
        (s1.bestValAcc === null ? '' : ` (${s1.bestValAcc.toFixed(1)}%)`) +
        '.'
      : 'Stage 1: features from a file.',
    `Total ${r.seconds.total.toFixed(0)} s on ${r.environment.cpus} x ${r.environment.cpuModel}, backend ${r.environment.backend}, tfjs ${r.environment.tfjs}, Node ${r.environment.node}.`,
    ...(r.warnings.length + gridEdgeWarnings(r).length
      ? ['', '**Warnings**', ...[...gridEdgeWarnings(r), ...r.warnings].map((w) => `- ${mdText(w)}`)]
      : []),
    '',
    ...worstClassesMarkdown(r),
    ...(r.dataset.classNames.length > MAX_CONFUSION_CLASSES
      ? ['## Most-confused classes (true -> predicted)', ...confusedPairsMarkdown(r), '']
      : []),
    ...charts.map((c) => `![${c}](${c}.svg)`),
    '',
  ];
  return lines.join('\n');
}

/** The shifted-prior table (LADE / SADE protocol), or nothing when the run has none. */
function shiftedMarkdown(r: RunResults): string[] {
  const cols = shiftedColumns(r);
  if (cols.length === 0) return [];
  const seed = r.methods[0]?.shifted[0]?.seed ?? 0;
  return [
    `Top-1 (%) on test sets re-sampled to shifted class priors (forward: the training order, backward: reversed; ` +
      `n_max / n_min per column; drawn with seed ${seed}); the methods do not know the prior.`,
    '',
    `| method | ${cols.map((c) => c.prior).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
    ...shiftedRows(r).map(
      (x) => `| ${x.label} | ${x.values.map((v) => (v === null ? '-' : v.toFixed(1))).join(' | ')} |`,
    ),
    '',
  ];
}
