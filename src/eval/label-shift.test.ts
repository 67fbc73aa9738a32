import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gaussianProblem, tail } from '../../test/helpers/gaussian-logits.ts';
import { createRng } from '../random/rng.ts';
import { arrayBlocks, calibrationStats, fitTemperature, nllAt } from './calibration.ts';
import {
  adjustedPredictions,
  bbsePrior,
  emPrior,
  labelPrior,
  softmaxRows,
  tvDistance,
} from './label-shift.ts';
import { argmaxRows } from './metrics.ts';

const PY = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'label-shift.numpy.py');
const hasNumpy = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

const accuracy = (pred: ArrayLike<number>, labels: ArrayLike<number>) => {
  let h = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) h++;
  return h / labels.length;
};

describe('temperature scaling, EM and BBSE against NumPy', () => {
  it('match an independent NumPy computation on fixed logits', (t) => {
    if (!hasNumpy) return t.skip('python3 with numpy not available');
    const C = 6;
    const prob = gaussianProblem(C, 5, 3);
    const rng = createRng(11);
    // Validation: a little unbalanced so the source prior is not uniform; over-confident logits.
    const val = prob.draw([40, 35, 42, 38, 30, 45], rng, 2.5);
    const target = prob.draw(tail(C, 300, 20, true), rng, 2.5);
    const fit = fitTemperature(arrayBlocks(val.logits, val.n, C, 37), val.labels, C);
    const T = fit.temperature;
    const source = labelPrior(val.labels, C);
    const valPred = argmaxRows(val.logits, val.n, C);
    const case_ = {
      n: val.n,
      C,
      logits: Array.from(val.logits),
      labels: Array.from(val.labels),
      T,
      source,
      target: Array.from(target.logits),
      valPred: Array.from(valPred),
      valLabels: Array.from(val.labels),
    };
    const py = spawnSync(PY, [SCRIPT], { input: JSON.stringify(case_), encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const ref = JSON.parse(py.stdout) as {
      temperature: number;
      nll1: number;
      em: number[];
      emPred: number[];
      bbse: number[];
      bbsePred: number[];
    };
    // The grid's step in log T is ~1e-6 after refinement; golden section stops at 1e-5 in log T.
    assert.ok(Math.abs(Math.log(T / ref.temperature)) < 2e-5, `T ${T} vs NumPy ${ref.temperature}`);
    assert.ok(T > 1.5, `over-confident logits need T > 1, got ${T}`);
    assert.ok(Math.abs(fit.nllBefore - ref.nll1) < 1e-9);
    const probs = softmaxRows(target.logits, target.n, C, T);
    const em = emPrior(probs, target.n, C, source);
    for (const [c, q] of em.prior.entries())
      assert.ok(Math.abs(q - ref.em[c]!) < 1e-6, `EM class ${c}: ${q} vs ${ref.em[c]}`);
    const emPred = adjustedPredictions(target.logits, target.n, C, T, em.prior, source);
    assert.deepEqual(Array.from(emPred), ref.emPred);
    const targetPred = argmaxRows(target.logits, target.n, C);
    const bb = bbsePrior(valPred, val.labels, targetPred, C);
    for (const [c, q] of bb.prior.entries())
      assert.ok(Math.abs(q - ref.bbse[c]!) < 1e-6, `BBSE class ${c}: ${q} vs ${ref.bbse[c]}`);
    const bbPred = adjustedPredictions(target.logits, target.n, C, T, bb.prior, source);
    assert.deepEqual(Array.from(bbPred), ref.bbsePred);
    // The estimates are about the truth, not only equal to NumPy's.
    const truth = labelPrior(target.labels, C);
    assert.ok(tvDistance(em.prior, truth) < 0.1, `EM TV ${tvDistance(em.prior, truth)}`);
    assert.ok(tvDistance(bb.prior, truth) < 0.15, `BBSE TV ${tvDistance(bb.prior, truth)}`);
  });
});

describe('temperature scaling (properties over seeds)', () => {
  it('lowers validation NLL, never raises it, and leaves every argmax unchanged', () => {
    for (let seed = 0; seed < 12; seed++) {
      const C = 3 + (seed % 5);
      const prob = gaussianProblem(C, 4, 100 + seed);
      const rng = createRng(seed);
      // Over-confident (Joint-like), under-confident, and NCM-like negative distances (small scale).
      const scale = [3, 0.3, 0.05][seed % 3]!;
      const val = prob.draw(new Array(C).fill(30), rng, scale);
      const blocks = arrayBlocks(val.logits, val.n, C, 16);
      const fit = fitTemperature(blocks, val.labels, C);
      assert.ok(fit.nllAfter < fit.nllBefore, `seed ${seed}: ${fit.nllAfter} vs ${fit.nllBefore}`);
      assert.ok(Math.abs(nllAt(blocks, val.labels, C, fit.temperature) - fit.nllAfter) < 1e-12);
      // A local minimum: nudging T either way does not lower the NLL.
      for (const f of [0.99, 1.01])
        assert.ok(nllAt(blocks, val.labels, C, fit.temperature * f) >= fit.nllAfter - 1e-12);
      const scaled = val.logits.map((v) => v / fit.temperature);
      assert.deepEqual(argmaxRows(scaled, val.n, C), argmaxRows(val.logits, val.n, C));
      // Block size does not change the result.
      assert.equal(
        nllAt(arrayBlocks(val.logits, val.n, C), val.labels, C, 1.7),
        nllAt(blocks, val.labels, C, 1.7),
      );
    }
  });

  it('brings a badly over-confident classifier close to calibrated on fresh data (ECE)', () => {
    const C = 5;
    const prob = gaussianProblem(C, 4, 7);
    const rng = createRng(5);
    const val = prob.draw(new Array(C).fill(400), rng, 4);
    const test = prob.draw(new Array(C).fill(400), rng, 4);
    const T = fitTemperature(arrayBlocks(val.logits, val.n, C), val.labels, C).temperature;
    // The true logits are scale 1, so the fit should recover T near 4.
    assert.ok(Math.abs(T - 4) < 0.5, `T ${T}`);
    const before = calibrationStats(arrayBlocks(test.logits, test.n, C), test.labels, C);
    const after = calibrationStats(arrayBlocks(test.logits, test.n, C), test.labels, C, T);
    assert.ok(after.ece < before.ece / 2 && after.ece < 0.03, `ECE ${before.ece} -> ${after.ece}`);
    assert.ok(after.nll < before.nll);
  });

  it('refuses an empty validation split', () => {
    assert.throws(
      () => fitTemperature(arrayBlocks(new Float32Array(0), 0, 3), [], 3),
      /temperature scaling needs a validation split/,
    );
  });
});

describe('label shift on seeded synthetic data', () => {
  const C = 8;
  const prob = gaussianProblem(C, 6, 21);
  const source = new Array(C).fill(1 / C);

  it("EM's error shrinks as the target sample grows (mean over 10 draws)", () => {
    const meanTv = (nMax: number) => {
      let s = 0;
      for (let k = 0; k < 10; k++) {
        const t = prob.draw(tail(C, nMax, 10, true), createRng(nMax, k));
        const em = emPrior(softmaxRows(t.logits, t.n, C), t.n, C, source);
        s += tvDistance(em.prior, labelPrior(t.labels, C));
      }
      return s / 10;
    };
    const e = [20, 80, 320].map(meanTv);
    assert.ok(e[0]! > e[1]! && e[1]! > e[2]!, `TV by size: ${e.join(', ')}`);
    assert.ok(e[2]! < 0.05, `TV at 320 per head class: ${e[2]}`);
  });

  it('EM and BBSE beat no correction under a strong shift (backward 50), every draw', () => {
    for (let k = 0; k < 10; k++) {
      const rng = createRng(77, k);
      const val = prob.draw(new Array(C).fill(60), rng);
      const t = prob.draw(tail(C, 400, 50, true), rng);
      const plain = accuracy(argmaxRows(t.logits, t.n, C), t.labels);
      const em = emPrior(softmaxRows(t.logits, t.n, C), t.n, C, source);
      const emAcc = accuracy(adjustedPredictions(t.logits, t.n, C, 1, em.prior, source), t.labels);
      const bb = bbsePrior(argmaxRows(val.logits, val.n, C), val.labels, argmaxRows(t.logits, t.n, C), C);
      const bbAcc = accuracy(adjustedPredictions(t.logits, t.n, C, 1, bb.prior, source), t.labels);
      assert.ok(emAcc > plain, `draw ${k}: EM ${emAcc} vs none ${plain}`);
      assert.ok(bbAcc > plain, `draw ${k}: BBSE ${bbAcc} vs none ${plain}`);
    }
  });

  it('with no shift the estimate stays near the draw and accuracy drops by at most 1 point', () => {
    for (let k = 0; k < 10; k++) {
      const t = prob.draw(new Array(C).fill(150), createRng(99, k));
      const plain = accuracy(argmaxRows(t.logits, t.n, C), t.labels);
      const em = emPrior(softmaxRows(t.logits, t.n, C), t.n, C, source);
      assert.ok(tvDistance(em.prior, source) < 0.05, `draw ${k}: TV ${tvDistance(em.prior, source)}`);
      const emAcc = accuracy(adjustedPredictions(t.logits, t.n, C, 1, em.prior, source), t.labels);
      assert.ok(emAcc >= plain - 0.01, `draw ${k}: EM ${emAcc} vs none ${plain}`);
    }
  });

  it("accelerated EM reaches plain EM's fixed point in far fewer steps (head-biased, under-confident, 8 seeds)", () => {
    // A head-biased classifier: Bayes scores for a forward-50 training prior (logits + log prior),
    // under-confident (x0.5), on a backward-50 target: a flat likelihood, EM's slow case. Second
    // pass: the same with one class absent from the source (prior 0, as a class missing from the
    // validation split), which EM leaves at 0.
    const fwd = tail(C, 1000, 50).map((k, _, all) => k / all.reduce((x, y) => x + y, 0));
    const withZero = fwd.map((v, c) => (c === 3 ? 0 : v / (1 - fwd[3]!)));
    // Plain EM written out here, run until it stops moving: the reference fixed point.
    const plainEm = (probs: Float64Array, n: number, src: number[]) => {
      let q = [...src];
      const w = (c: number) => (src[c]! > 0 ? q[c]! / src[c]! : 0);
      for (let it = 1; it <= 1_000_000; it++) {
        const acc = new Array<number>(C).fill(0);
        for (let i = 0; i < n; i++) {
          let s = 0;
          for (let c = 0; c < C; c++) s += probs[i * C + c]! * w(c);
          for (let c = 0; c < C; c++) acc[c]! += (probs[i * C + c]! * w(c)) / s;
        }
        const total = acc.reduce((x, y) => x + y, 0);
        const next = acc.map((v) => v / total);
        const moved = Math.max(...next.map((v, c) => Math.abs(v - q[c]!)));
        q = next;
        if (moved < 1e-13) return { q, it };
      }
      throw new Error('plain EM did not converge');
    };
    for (const src of [fwd, withZero])
      for (let k = 0; k < 8; k++) {
        const t = prob.draw(tail(C, 200, 50, true), createRng(5, k), 0.5);
        for (let i = 0; i < t.n; i++) for (let c = 0; c < C; c++) t.logits[i * C + c]! += Math.log(fwd[c]!);
        const probs = softmaxRows(t.logits, t.n, C);
        const ref = plainEm(probs, t.n, src);
        const em = emPrior(probs, t.n, C, src);
        const diff = Math.max(...em.prior.map((v, c) => Math.abs(v - ref.q[c]!)));
        const label = `seed ${k}${src === withZero ? ', a class at 0' : ''}`;
        assert.ok(diff < 1e-9, `${label}: ${diff} from plain EM's fixed point`);
        assert.ok(em.iterations * 3 < ref.it, `${label}: ${em.iterations} steps vs plain ${ref.it}`);
        if (src === withZero) assert.equal(em.prior[3], 0);
      }
  });

  it('refuse what they cannot estimate from', () => {
    assert.throws(() => emPrior(new Float64Array(0), 0, 3, [1 / 3, 1 / 3, 1 / 3]), /at least one image/);
    assert.throws(() => bbsePrior([], [], [0, 1], 2), /BBSE needs a validation split/);
  });
});
