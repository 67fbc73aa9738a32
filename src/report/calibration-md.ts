/**
 * results.md sections for calibration and the estimated test prior (pipeline/stage2.ts): per
 * method the temperature, ECE and NLL before / after, the recall summaries; per shifted set the
 * columns raw head / calibrated head / EM / BBSE / known prior and the estimators' TV errors. Nothing
 * for results written before these fields existed.
 */
import type { RunResults } from './results.ts';

const f = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined ? '-' : v.toFixed(digits);

export function calibrationMarkdown(r: RunResults): string[] {
  const ms = r.methods.filter((m) => m.calibration);
  if (ms.length === 0) return [];
  const c0 = ms[0]!.calibration!;
  const lines = [
    c0.method === 'bcts'
      ? "Calibration: bias-corrected temperature scaling (BCTS), softmax(z / T + b) with T and a bias per class fitted on the validation split (minimum NLL); test ECE (15 bins) and NLL before (raw scores) and after. The biases can change the argmax: \"top-1 after\" is the calibrated scores' (the deployed head's), the main table the raw ones'."
      : c0.method === 'temperature'
        ? 'Calibration: a temperature T per method fitted on the validation split (minimum NLL); test ECE (15 bins) and NLL before (T = 1) and after.'
        : 'Calibration: none (--calibrate none, or no validation split); ECE and the prior corrections use raw scores.',
    '',
    '| method | T | ECE before | ECE after | NLL before | NLL after | top-1 after | worst class | H-mean recall | G-mean recall | note |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...ms.map((m) => {
      const c = m.calibration!;
      const rc = m.recall;
      const top1 = c.accuracyAfter === undefined ? undefined : c.accuracyAfter * 100;
      return `| ${m.label} | ${f(c.temperature, 3)} | ${f(c.eceBefore, 4)} | ${f(c.eceAfter, 4)} | ${f(c.nllBefore, 3)} | ${f(c.nllAfter, 3)} | ${f(top1, 2)} | ${f(rc?.worstClass, 3)} | ${f(rc?.hmeanRecall, 3)} | ${f(rc?.gmeanRecall, 3)} | ${c.notApplicable ?? ''} |`;
    }),
    '',
  ];
  const priors = [
    ...new Set(ms.flatMap((m) => m.shifted.filter((s) => s.em !== undefined).map((s) => s.prior))),
  ];
  if (priors.length === 0) return lines;
  lines.push(
    `Shifted test priors, the prior unknown: top-1 (%) of the raw head (none) / of the calibrated head with no prior adjustment (calibrated: the deployed head as is, what \`predict --adapt-prior\` starts from) / with the prior estimated from the set's unlabeled images by EM (Saerens et al. 2002) / by BBSE (Lipton et al. 2018) / the known prior (oracle); ` +
      `then each estimate's total-variation error. Corrections add log q - log p (p: the ${c0.sourcePrior} prior) to the calibrated scores.`,
    '',
    '| method | prior | none | calibrated | EM | BBSE | known | EM TV | BBSE TV |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const m of ms)
    for (const s of m.shifted)
      if (s.em !== undefined)
        lines.push(
          `| ${m.label} | ${s.prior} | ${f(s.overall)} | ${f(s.calibrated)} | ${f(s.em)} | ${f(s.bbse)} | ${f(s.knownPrior)} | ${f(s.emTv, 3)} | ${f(s.bbseTv, 3)} |`,
        );
  const notes = [...new Set(ms.map((m) => m.calibration!.note).filter((n): n is string => n !== null))];
  lines.push('', ...notes.map((n) => `Note: ${n}.`), '');
  return lines;
}
