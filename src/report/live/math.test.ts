import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gaussianProblem, tail } from '../../../test/helpers/gaussian-logits.ts';
import { arrayBlocks, fitBcts, sparseConfusion } from '../../eval/calibration.ts';
import {
  adjustedPredictions,
  bbsePriorFromCounts,
  emPrior,
  labelPrior,
  softmaxRows,
  tvDistance,
  validationConfusion,
} from '../../eval/label-shift.ts';
import { evaluateLogits, evaluatePredictions } from '../../eval/metrics.ts';
import { createRng } from '../../random/rng.ts';
import type { LiveCalibration } from './data.ts';
import {
  classSplits,
  classWeights,
  confusionCounts,
  correctionShift,
  countLabels,
  decodeRows,
  encodeRows,
  estimateLivePrior,
  evaluateLive,
  fromHalf,
  livePosteriors,
  livePredictions,
  pctText,
  rowWeights,
  sliderPrior,
  toHalf,
} from './math.ts';

const PY = '/usr/bin/python3';
const hasNumpy = existsSync(PY) && spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

/** Random logits [n, C] (scaled normals) and labels, classes with a long tail of training counts. */
function problem(seed: number, n: number, C: number) {
  const rng = createRng(seed);
  const logits = new Float32Array(n * C);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.int(C);
    for (let c = 0; c < C; c++) logits[i * C + c] = 3 * rng.normal() + (c === labels[i] ? 2 : 0);
  }
  const trainCounts = Array.from({ length: C }, (_, c) => Math.floor(300 * 0.02 ** (c / (C - 1))));
  return { logits, labels, trainCounts };
}

const T = { many: 100, few: 20 };

describe('live math: float16', () => {
  it('encodes known values bit-exactly (IEEE 754 binary16, ties to even)', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -14, 0x0400], // smallest normal
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], // a tie: to even (down)
      [1 + 3 * 2 ** -11, 0x3c02], // a tie: to even (up)
      [1e6, 0x7c00], // overflow: infinity
    ];
    for (const [x, h] of cases) assert.equal(toHalf(x), h, `toHalf(${x})`);
    assert.equal(fromHalf(0x3c00), 1);
    assert.equal(fromHalf(0x0001), 2 ** -24);
    assert.equal(fromHalf(0x7bff), 65504);
  });

  it('matches NumPy astype(float16) on 2000 random values', { skip: hasNumpy ? false : 'no NumPy' }, () => {
    const rng = createRng(7);
    const xs = Array.from({ length: 2000 }, (_, i) => Math.fround(rng.normal() * 10 ** ((i % 12) - 6)));
    const py = spawnSync(
      PY,
      [
        '-c',
        'import sys,json,numpy as np; x=np.array(json.load(sys.stdin),dtype=np.float32); print(json.dumps(x.astype(np.float16).view(np.uint16).tolist()))',
      ],
      { input: JSON.stringify(xs), encoding: 'utf8' },
    );
    assert.equal(py.status, 0, py.stderr);
    const want = JSON.parse(py.stdout) as number[];
    const got = xs.map(toHalf);
    assert.deepEqual(got, want);
  });

  it('round-trips within half an ulp (2^-11 relative), monotone', () => {
    const rng = createRng(3);
    let prev = -Infinity;
    const xs = Array.from({ length: 5000 }, () => rng.normal() * 100).sort((a, b) => a - b);
    for (const x of xs) {
      const y = fromHalf(toHalf(x));
      assert.ok(Math.abs(y - x) <= 2 ** -11 * Math.abs(x) + 2 ** -25, `${x} -> ${y}`);
      assert.ok(y >= prev, 'rounding keeps the order');
      prev = y;
    }
  });

  it('row encoding keeps every argmax and errs by at most 2^-11 of the distance to the row max', () => {
    const { logits } = problem(11, 400, 37);
    const { offsets, halves } = encodeRows(logits, 400, 37);
    const back = decodeRows(offsets, halves, 400, 37);
    for (let i = 0; i < 400; i++) {
      const row = Array.from(logits.subarray(i * 37, (i + 1) * 37));
      const m = Math.max(...row);
      const am = row.indexOf(m);
      let bm = 0;
      for (let c = 0; c < 37; c++) {
        if (back[i * 37 + c]! > back[i * 37 + bm]!) bm = c;
        const err = Math.abs(back[i * 37 + c]! - row[c]!);
        // half an ulp of the residual, plus float32 rounding of offset + residual
        assert.ok(
          err <= 2 ** -11 * (m - row[c]!) + 2 ** -23 * Math.abs(row[c]!) + 1e-30,
          `row ${i} class ${c}: ${err}`,
        );
      }
      assert.equal(bm, am, `row ${i}`);
    }
  });
});

describe('live math: evaluation', () => {
  it('with weights 1/n equals eval/metrics.ts (overall, splits, per class, macro-F1, ECE) over 20 seeds', () => {
    for (let seed = 0; seed < 20; seed++) {
      const n = 300 + seed * 7;
      const C = 5 + (seed % 9);
      const { logits, labels, trainCounts } = problem(seed, n, C);
      const want = evaluateLogits(logits, labels, C, trainCounts, T);
      const counts = countLabels(labels, C);
      const prior = Array.from(counts, (v) => v / n);
      const got = evaluateLive(logits, labels, C, classWeights(prior, counts), classSplits(trainCounts, T), {
        confusion: true,
      });
      const close = (a: number | null, b: number | null, what: string) =>
        a === null || b === null
          ? assert.equal(a, b, what)
          : assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
      close(got.overall, want.overall, 'overall');
      close(got.many, want.many, 'many');
      close(got.medium, want.medium, 'medium');
      close(got.few, want.few, 'few');
      close(got.macroF1, want.macroF1, 'macroF1');
      close(got.ece, want.ece, 'ece');
      want.perClass.forEach((v, c) => {
        close(got.perClass[c]!, v, `class ${c}`);
      });
      want.confusion.forEach((row, t) => {
        row.forEach((v, p) => {
          close(got.confusion![t * C + p]! * n, v, `confusion ${t},${p}`);
        });
      });
      assert.equal(pctText(got.overall), (Math.round(want.overall * 10000) / 100).toFixed(1));
    }
  });

  it('ECE by hand: 4 rows, two bins', () => {
    // Two classes; logits (l, 0): confidence = max(sigmoid). Rows 0,1 confidence 0.5 (bin 7 of 15),
    // rows 2,3 confidence e^2/(1+e^2) = 0.8808 (bin 13). Labels: row 0 right, 1 wrong, 2 right, 3 wrong.
    const logits = Float32Array.from([0, 0, 0, 0, 2, 0, 2, 0]);
    const labels = Int32Array.from([0, 1, 0, 1]);
    const w = Float64Array.from([0.25 / 2, 0.25 / 2]); // q = (1/2, 1/2), 2 rows each
    const e = evaluateLive(logits, labels, 2, w, ['few', 'few']);
    const c2 = Math.exp(2) / (1 + Math.exp(2));
    // bin of 0.5: accuracy 1/2 (row 0 right: argmax of a tie is class 0), confidence 0.5: gap 0.
    // bin of c2: accuracy 1/2, confidence c2: gap (c2 - 0.5) * 2 rows / 4 rows.
    assert.ok(Math.abs(e.ece - (c2 - 0.5) / 2) < 1e-12, String(e.ece));
    assert.equal(e.overall, 0.5);
  });

  it('under a target prior, overall is sum_c q_c acc_c, and rows subsampled per class need no other change', () => {
    const C = 10;
    const { logits, labels, trainCounts } = problem(5, 2000, C);
    const counts = countLabels(labels, C);
    const testCounts = Array.from(counts);
    const q = sliderPrior(trainCounts, testCounts, { ratio: 50, direction: 'forward' });
    // By hand: ranks by training count (here class c has rank c), sizes floor(m 50^(-c/9)).
    const m = Math.min(...testCounts);
    const sizes = Array.from({ length: C }, (_, c) => Math.max(1, Math.floor(m * 50 ** (-c / 9))));
    const total = sizes.reduce((a, b) => a + b, 0);
    sizes.forEach((s, c) => {
      assert.ok(Math.abs(q[c]! - s / total) < 1e-15);
    });
    const e = evaluateLive(logits, labels, C, classWeights(q, counts), classSplits(trainCounts, T));
    const full = evaluateLogits(logits, labels, C, trainCounts, T);
    const expected = full.perClass.reduce((a: number, acc, c) => a + q[c]! * acc!, 0);
    assert.ok(Math.abs(e.overall - expected) < 1e-12);
    assert.ok(
      Math.abs(e.few! - full.few!) < 1e-12,
      'splits are per-class means: the prior does not move them',
    );
  });

  it('the known-prior shift equals evaluating the shifted float32 logits', () => {
    const C = 8;
    const { logits, labels, trainCounts } = problem(9, 500, C);
    const counts = countLabels(labels, C);
    const q = sliderPrior(trainCounts, Array.from(counts), { ratio: 10, direction: 'backward' });
    const shift = Float64Array.from(q, Math.log);
    const shifted = Float32Array.from(logits, (v, i) => v + shift[i % C]!);
    const prior = Array.from(counts, (v) => v / 500);
    const got = evaluateLive(logits, labels, C, classWeights(prior, counts), classSplits(trainCounts, T), {
      shift,
    });
    const want = evaluateLogits(shifted, labels, C, trainCounts, T);
    assert.ok(Math.abs(got.overall - want.overall) < 1e-12);
    assert.ok(Math.abs(got.ece - want.ece) < 1e-12);
    assert.ok(Math.abs(got.macroF1 - want.macroF1) < 1e-12);
  });

  it('macro-F1 under a prior is the F1 of the prior-weighted confusion (by hand)', () => {
    // 2 classes, 2 rows each: class 0 both right; class 1 one right, one predicted 0.
    const logits = Float32Array.from([1, 0, 1, 0, 0, 1, 1, 0]);
    const labels = Int32Array.from([0, 0, 1, 1]);
    const q = [0.8, 0.2];
    const e = evaluateLive(logits, labels, 2, classWeights(q, [2, 2]), ['many', 'few']);
    // weighted confusion: [[0.8, 0], [0.1, 0.1]]; F1_0 = 2*0.8/(0.9+0.8), F1_1 = 2*0.1/(0.1+0.2)
    const f0 = (2 * 0.8) / (0.9 + 0.8);
    const f1 = (2 * 0.1) / (0.1 + 0.2);
    assert.ok(Math.abs(e.macroF1 - (f0 + f1) / 2) < 1e-12);
    assert.ok(Math.abs(e.overall - 0.9) < 1e-12);
    const plain = evaluatePredictions([0, 0, 1, 0], labels, 2, [200, 5]);
    assert.notEqual(plain.macroF1, e.macroF1);
  });
});

/**
 * A head-biased classifier (Bayes logits plus a per-class offset growing with the training count,
 * as a head trained on a long tail leans), BCTS fitted on a balanced validation draw, and a
 * balanced test draw stored as the page stores it (float16 residuals).
 */
function estimationCase(seed: number) {
  const C = 6;
  const prob = gaussianProblem(C, 5, seed);
  const rng = createRng(seed, 0x1ce);
  const trainCounts = tail(C, 500, 50);
  const lean = (d: { logits: Float32Array; labels: Int32Array; n: number }) => {
    for (let i = 0; i < d.n; i++)
      for (let c = 0; c < C; c++)
        d.logits[i * C + c]! += 0.6 * Math.log(trainCounts[c]! / trainCounts[C - 1]!);
    return d;
  };
  const val = lean(prob.draw(new Array(C).fill(40), rng, 1.5));
  const test = lean(prob.draw(new Array(C).fill(50), rng, 1.5));
  const fit = fitBcts(arrayBlocks(val.logits, val.n, C), val.labels, C);
  const cal: LiveCalibration = { temperature: fit.temperature, bias: fit.bias, valConfusion: null };
  const valPred = livePredictions(val.logits, val.n, C, cal);
  const valCounts = validationConfusion(valPred, val.labels, C);
  const enc = encodeRows(test.logits, test.n, C);
  const rows = decodeRows(enc.offsets, enc.halves, test.n, C);
  return {
    C,
    trainCounts,
    val,
    valPred,
    valCounts,
    cal,
    rows,
    labels: test.labels,
    k: test.n,
    source: labelPrior(val.labels, C),
  };
}

describe('live math: the estimated-prior correction is the library on the same rows', () => {
  it('weighted rows equal the rows repeated: EM, BBSE and the adjusted accuracy of eval/label-shift.ts', () => {
    for (const seed of [1, 2, 3, 4]) {
      const { C, trainCounts, val, valPred, valCounts, cal, rows, labels, k, source } = estimationCase(seed);
      const counts = countLabels(labels, C);
      // Integer repeats m_t per class: the page's weights q_t / k_t with q_t = m_t k_t / sum are
      // then the rows of the repeated set, which the library reads unweighted.
      const reps = [1, 2, 3, 5, 8, 13];
      const total = reps.reduce((a, m, c) => a + m * counts[c]!, 0);
      const q = reps.map((m, c) => (m * counts[c]!) / total);
      const w = classWeights(q, counts);
      const probs = livePosteriors(rows, k, C, cal);
      const pred = livePredictions(rows, k, C, cal);
      // The page reads back the pairs the pipeline stores (stage 2's sparseConfusion) as the counts.
      const pairs = sparseConfusion(valPred, val.labels, C).pairs;
      assert.deepEqual(confusionCounts(pairs, C), valCounts);
      const idx: number[] = [];
      for (let i = 0; i < k; i++) for (let r = 0; r < reps[labels[i]!]!; r++) idx.push(i);
      const dup = new Float32Array(idx.length * C);
      idx.forEach((i, j) => {
        dup.set(rows.subarray(i * C, (i + 1) * C), j * C);
      });
      const dupLabels = Int32Array.from(idx, (i) => labels[i]!);
      for (const how of ['em', 'bbse'] as const) {
        const est = estimateLivePrior(how, { probs, pred }, k, C, rowWeights(labels, w), source, valCounts);
        const ref =
          how === 'em'
            ? emPrior(softmaxRows(dup, idx.length, C, cal.temperature, cal.bias), idx.length, C, source).prior
            : bbsePriorFromCounts(valCounts, livePredictions(dup, idx.length, C, cal), C).prior;
        for (let c = 0; c < C; c++)
          assert.ok(
            Math.abs(est[c]! - ref[c]!) < 1e-9,
            `seed ${seed} ${how} class ${c}: ${est[c]} vs ${ref[c]}`,
          );
        const adj = adjustedPredictions(dup, idx.length, C, cal.temperature, est, source, cal.bias);
        let hits = 0;
        for (let j = 0; j < idx.length; j++) if (adj[j] === dupLabels[j]) hits++;
        const e = evaluateLive(rows, labels, C, w, classSplits(trainCounts, T), {
          shift: correctionShift(est, source, cal),
          temperature: cal.temperature,
        });
        assert.ok(Math.abs(e.overall - hits / idx.length) < 1e-12, `seed ${seed} ${how}: ${e.overall}`);
        // The estimate is about the truth, and the correction pays: this shift is strong (no shift is
        // 0.32 from it). On seed 2 the classifier is weak (49 % uncorrected) and BBSE's ridge keeps
        // its estimate near no shift (TV 0.31); EM stays within 0.09 on every seed.
        const plain = evaluateLive(rows, labels, C, w, classSplits(trainCounts, T));
        const tv = tvDistance(est, q);
        const far = tvDistance(source, q);
        assert.ok(how === 'em' ? tv < far / 2 : tv < far, `seed ${seed} ${how}: TV ${tv}, no shift ${far}`);
        assert.ok(e.overall > plain.overall, `seed ${seed} ${how}: ${e.overall} <= ${plain.overall}`);
      }
    }
  });

  it('match NumPy on a backward-50 prior (fractional weights, BCTS biases)', {
    skip: hasNumpy ? false : 'no NumPy',
  }, () => {
    const { C, trainCounts, val, valPred, valCounts, cal, rows, labels, k, source } = estimationCase(4);
    const counts = countLabels(labels, C);
    const q = sliderPrior(trainCounts, Array.from(counts), { ratio: 50, direction: 'backward' });
    const w = classWeights(q, counts);
    const rw = rowWeights(labels, w);
    const py = spawnSync(PY, [join(import.meta.dirname, '..', '..', 'eval', 'label-shift.numpy.py')], {
      input: JSON.stringify({
        n: val.n,
        C,
        logits: Array.from(val.logits),
        labels: Array.from(val.labels),
        fitTemperature: false,
        T: cal.temperature,
        bias: cal.bias,
        source,
        target: Array.from(rows),
        weights: Array.from(rw),
        valPred: Array.from(valPred),
        valLabels: Array.from(val.labels),
      }),
      encoding: 'utf8',
    });
    assert.equal(py.status, 0, py.stderr);
    const ref = JSON.parse(py.stdout) as {
      em: number[];
      emPred: number[];
      bbse: number[];
      bbsePred: number[];
    };
    const probs = livePosteriors(rows, k, C, cal);
    const pred = livePredictions(rows, k, C, cal);
    for (const how of ['em', 'bbse'] as const) {
      const est = estimateLivePrior(how, { probs, pred }, k, C, rw, source, valCounts);
      for (let c = 0; c < C; c++)
        assert.ok(Math.abs(est[c]! - ref[how][c]!) < 1e-6, `${how} ${c}: ${est[c]} vs ${ref[how][c]}`);
      // The page's accuracy is the weighted share of NumPy's adjusted predictions that are right.
      const refPred = how === 'em' ? ref.emPred : ref.bbsePred;
      let want = 0;
      for (let i = 0; i < k; i++) if (refPred[i] === labels[i]) want += rw[i]!;
      const e = evaluateLive(rows, labels, C, w, classSplits(trainCounts, T), {
        shift: correctionShift(est, source, cal),
        temperature: cal.temperature,
      });
      assert.ok(Math.abs(e.overall - want) < 1e-12, `${how}: ${e.overall} vs ${want}`);
    }
  });
});
