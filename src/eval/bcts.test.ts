import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gaussianProblem, tail } from '../../test/helpers/gaussian-logits.ts';
import { createRng } from '../random/rng.ts';
import { arrayBlocks, calibrationStats, fitBcts, fitTemperature, nllAt } from './calibration.ts';
import { adjustedPredictions, emPrior, labelPrior, softmaxRows, tvDistance } from './label-shift.ts';

const PY = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'bcts.numpy.py');
const hasNumpy = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

/** Adds a per-class offset to every row: what a head trained on a long tail does to its logits. */
function offset(logits: Float32Array, C: number, delta: readonly number[]): Float32Array {
  return logits.map((v, k) => v + delta[k % C]!);
}

const sum = (v: readonly number[]) => v.reduce((a, b) => a + b, 0);

describe('bias-corrected temperature scaling (BCTS)', () => {
  it('matches an independent NumPy Newton solve on fixed logits', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy not available');
    const C = 6;
    const prob = gaussianProblem(C, 5, 3);
    const delta = [1.5, 1.0, 0.4, 0, -0.6, -1.2];
    const v = prob.draw([40, 35, 42, 38, 30, 45], createRng(21), 2.5);
    const logits = offset(v.logits, C, delta);
    const fit = fitBcts(arrayBlocks(logits, v.n, C, 37), v.labels, C);
    const py = spawnSync(PY, [SCRIPT], {
      input: JSON.stringify({ n: v.n, C, logits: Array.from(logits), labels: Array.from(v.labels) }),
      encoding: 'utf8',
    });
    assert.equal(py.status, 0, py.stderr);
    const ref = JSON.parse(py.stdout) as { temperature: number; bias: number[]; nll: number; nll1: number };
    assert.ok(Math.abs(fit.nllAfter - ref.nll) < 1e-10, `NLL ${fit.nllAfter} vs NumPy ${ref.nll}`);
    assert.ok(Math.abs(fit.nllBefore - ref.nll1) < 1e-10);
    assert.ok(
      Math.abs(fit.temperature / ref.temperature - 1) < 1e-5,
      `T ${fit.temperature} vs ${ref.temperature}`,
    );
    for (const [c, b] of fit.bias.entries())
      assert.ok(Math.abs(b - ref.bias[c]!) < 1e-5, `b[${c}] ${b} vs NumPy ${ref.bias[c]}`);
    assert.ok(Math.abs(sum(fit.bias)) < 1e-9);
    // Strictly better than temperature scaling here: the offsets are what T alone cannot fit.
    assert.ok(fit.nllAfter < fit.nllTemperature - 1e-3, `${fit.nllAfter} vs ${fit.nllTemperature}`);
  });

  it('never has a higher validation NLL than temperature scaling, and its reported NLL is the one it fitted (seeds)', () => {
    for (let seed = 0; seed < 12; seed++) {
      const C = 3 + (seed % 5);
      const prob = gaussianProblem(C, 4, 200 + seed);
      const rng = createRng(seed, 7);
      const scale = [3, 0.3, 0.05][seed % 3]!;
      // Half the seeds with head-biased offsets, half without (then BCTS can gain only a little).
      const delta = Array.from({ length: C }, (_, c) => (seed % 2 === 0 ? (C / 2 - c) * 0.5 * scale : 0));
      const v = prob.draw(new Array(C).fill(30), rng, scale);
      const z = offset(v.logits, C, delta);
      const blocks = arrayBlocks(z, v.n, C, 16);
      const ts = fitTemperature(blocks, v.labels, C);
      const fit = fitBcts(blocks, v.labels, C);
      assert.ok(
        fit.nllAfter <= ts.nllAfter + 1e-12,
        `seed ${seed}: BCTS ${fit.nllAfter} > TS ${ts.nllAfter}`,
      );
      assert.ok(Math.abs(nllAt(blocks, v.labels, C, fit.temperature, fit.bias) - fit.nllAfter) < 1e-12);
      assert.ok(
        fit.gradNorm < 1e-6,
        `seed ${seed}: gradient ${fit.gradNorm} after ${fit.iterations} iterations`,
      );
      assert.ok(Math.abs(sum(fit.bias)) < 1e-9);
      // A block size does not change the fit.
      const whole = fitBcts(arrayBlocks(z, v.n, C), v.labels, C);
      assert.deepEqual(whole.bias, fit.bias);
    }
  });

  it('recovers injected per-class offsets and the scale, and then EM estimates a shifted prior well where temperature scaling fails', () => {
    const C = 5;
    const prob = gaussianProblem(C, 4, 9);
    const scale = 2;
    const delta = [2, 1, 0, -1, -2];
    const v = prob.draw(new Array(C).fill(400), createRng(31), scale);
    const zv = offset(v.logits, C, delta);
    const fit = fitBcts(arrayBlocks(zv, v.n, C), v.labels, C);
    assert.ok(Math.abs(fit.temperature / scale - 1) < 0.08, `T ${fit.temperature}, true ${scale}`);
    // z / T + b = Bayes logits + delta / T + b: b should cancel delta / T (up to a constant, fixed by sum 0).
    for (const [c, b] of fit.bias.entries())
      assert.ok(
        Math.abs(b + delta[c]! / scale) < 0.15,
        `b[${c}] = ${b}, expected about ${-delta[c]! / scale}`,
      );
    // Top-1 of the calibrated scores is the Bayes rule's again, higher than the offset logits'.
    const balanced = prob.draw(new Array(C).fill(300), createRng(32), scale);
    const zb = offset(balanced.logits, C, delta);
    const raw = calibrationStats(arrayBlocks(zb, balanced.n, C), balanced.labels, C);
    const cal = calibrationStats(
      arrayBlocks(zb, balanced.n, C),
      balanced.labels,
      C,
      fit.temperature,
      fit.bias,
    );
    assert.ok(cal.accuracy > raw.accuracy + 0.02, `calibrated top-1 ${cal.accuracy} vs raw ${raw.accuracy}`);
    assert.ok(cal.nll < raw.nll);
    // A backward long tail (ratio 20): EM on BCTS's probabilities against EM on temperature scaling's.
    const target = prob.draw(tail(C, 600, 20, true), createRng(33), scale);
    const zt = offset(target.logits, C, delta);
    const truth = labelPrior(target.labels, C);
    const source = labelPrior(v.labels, C);
    const ts = fitTemperature(arrayBlocks(zv, v.n, C), v.labels, C);
    const emTs = emPrior(softmaxRows(zt, target.n, C, ts.temperature), target.n, C, source).prior;
    const emB = emPrior(softmaxRows(zt, target.n, C, fit.temperature, fit.bias), target.n, C, source).prior;
    const tvTs = tvDistance(emTs, truth);
    const tvB = tvDistance(emB, truth);
    assert.ok(tvB < 0.05, `EM after BCTS: TV ${tvB}`);
    assert.ok(tvTs > 2 * tvB, `EM after temperature scaling: TV ${tvTs} vs BCTS ${tvB}`);
    const hits = (pred: Int32Array) => pred.reduce((h, p, i) => h + (p === target.labels[i] ? 1 : 0), 0);
    const adjB = hits(adjustedPredictions(zt, target.n, C, fit.temperature, emB, source, fit.bias));
    const adjTs = hits(adjustedPredictions(zt, target.n, C, ts.temperature, emTs, source));
    assert.ok(adjB > adjTs, `EM-adjusted hits: BCTS ${adjB}, temperature ${adjTs}`);
  });

  it('keeps bias 0 for a class absent from validation, and a finite fit', () => {
    const C = 4;
    const prob = gaussianProblem(C, 4, 4);
    const v = prob.draw([50, 40, 0, 30], createRng(8), 1.5);
    const fit = fitBcts(arrayBlocks(v.logits, v.n, C), v.labels, C);
    assert.equal(fit.bias[2], 0);
    assert.ok(fit.bias.every(Number.isFinite) && Number.isFinite(fit.temperature));
    assert.ok(Math.abs(sum(fit.bias)) < 1e-9);
    assert.ok(fit.nllAfter <= fit.nllTemperature + 1e-12);
  });

  it('refuses an empty validation split in one line', () => {
    assert.throws(
      () => fitBcts(arrayBlocks(new Float32Array(0), 0, 3), new Int32Array(0), 3),
      /^ConfigError: BCTS calibration needs a validation split with images$/,
    );
  });
});
