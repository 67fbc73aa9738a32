/**
 * The live report's data: a budget that bounds the page, a stratified subsample (the same rows for
 * every method), and logits that decode to what the CLI evaluates, so the page's numbers at the
 * run's settings are results.json's.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend } from '../backend/backend.ts';
import { createClassifier, type MethodName } from '../classifiers/registry.ts';
import type { Stage2Classifier } from '../classifiers/types.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { gaussianClasses } from '../features/synthetic.ts';
import { createRng } from '../random/rng.ts';
import { type LiveArray, MIN_LIVE_ROWS_PER_CLASS } from '../report/live/data.ts';
import {
  classSplits,
  classWeights,
  columnMap,
  countLabels,
  decodeRows,
  evaluateLive,
  pctText,
  tauScale,
} from '../report/live/math.ts';
import { liveReportData, stratifiedRows } from './live-report-data.ts';
import { evaluateClassifier } from './stage2.ts';

const T = { many: 100, few: 20 };
const METHODS: MethodName[] = ['joint', 'ncm', 'tau-norm', 'logit-adjust'];

function features(C: number, d: number, testPer: number): FeatureSet {
  const rng = createRng(1);
  const means = Float32Array.from({ length: C * d }, () => rng.normal());
  const trainCounts = Array.from({ length: C }, (_, c) =>
    Math.max(2, Math.floor(200 * 0.02 ** (c / (C - 1)))),
  );
  const train = gaussianClasses(means, d, trainCounts, 1.5, rng);
  // A stage-1 classifier biased to the head: weights scaled with the class's count.
  const weight = Float32Array.from(
    means,
    (v, i) => v * (0.3 + Math.log(trainCounts[Math.floor(i / d)]!) / 5),
  );
  const bias = Float32Array.from(trainCounts, (n) => Math.log(n) / 2);
  return {
    dim: d,
    numClasses: C,
    classNames: Array.from({ length: C }, (_, c) => `class <${c}>`),
    trainCounts,
    train,
    val: gaussianClasses(means, d, new Array(C).fill(5), 1.5, rng),
    test: gaussianClasses(means, d, new Array(C).fill(testPer), 1.5, rng),
    classifier: { weight, bias },
  };
}

const b64 = (s: string) => Buffer.from(s, 'base64');
const decode = (a: LiveArray, k: number, C: number) => {
  const o = b64(a.offsets);
  const h = b64(a.halves);
  return decodeRows(
    new Float32Array(o.buffer, o.byteOffset, o.length / 4),
    new Uint16Array(h.buffer, h.byteOffset, h.length / 2),
    k,
    C,
  );
};

describe('live report data', () => {
  let fs: FeatureSet;
  let clfs: Map<MethodName, Stage2Classifier>;
  before(async () => {
    await initBackend('wasm');
    fs = features(12, 16, 50);
    clfs = new Map(METHODS.map((m) => [m, createClassifier(m, { features: fs, thresholds: T })]));
  });
  const results = () =>
    METHODS.map((m) => {
      const clf = clfs.get(m)!;
      return { ...evaluateClassifier(clf, { features: fs }, 0, T), label: m };
    });

  it('embeds every row under a large budget; at the run settings the numbers are the CLI evaluation', () => {
    const res = results();
    const live = liveReportData(fs, clfs, res, T)!;
    const C = fs.numClasses;
    assert.equal(live.k, fs.test.labels.length);
    assert.deepEqual(
      live.methods.map((m) => m.kind),
      ['joint', 'stored', 'tau-norm', 'logit-adjust'],
    );
    const k = live.k;
    const lb = b64(live.labels);
    const labels = new Int32Array(lb.buffer, lb.byteOffset, k);
    assert.deepEqual([...labels], [...fs.test.labels]);
    const z = decode(live.base!.z, k, C);
    const counts = countLabels(labels, C);
    const w = classWeights(
      Array.from(counts, (v) => v / k),
      counts,
    );
    const logitsOf = (m: (typeof live.methods)[number]) => {
      if (m.kind === 'stored') return decode(m.logits!, k, C);
      if (m.kind === 'joint') return columnMap(z, k, C, null, live.base!.bias);
      if (m.kind === 'tau-norm') return columnMap(z, k, C, tauScale(live.base!.norms, m.tau!), null);
      const lp = live.base!.logPrior!;
      return columnMap(
        z,
        k,
        C,
        null,
        Float32Array.from(live.base!.bias, (b, c) => b + Math.fround(-m.tau! * lp[c]!)),
      );
    };
    live.methods.forEach((m, i) => {
      const want = res[i]!;
      // The decoded logits are the classifier's, to float16 precision.
      const exact = clfs.get(m.method)!.logits(fs.test.features, k);
      const got = logitsOf(m);
      // float16 residuals under the row's max: the error is a 2^-11 share of the row's scale.
      let err = 0;
      for (let r = 0; r < k; r++) {
        let scale = 1;
        for (let c = 0; c < C; c++) scale = Math.max(scale, Math.abs(exact[r * C + c]!));
        for (let c = 0; c < C; c++)
          err = Math.max(err, Math.abs(got[r * C + c]! - exact[r * C + c]!) / scale);
      }
      assert.ok(err < 2e-3, `${m.method}: ${err}`);
      const e = evaluateLive(got, labels, C, w, classSplits(fs.trainCounts, T));
      assert.equal(pctText(e.overall), want.overall.toFixed(1), m.method);
      assert.equal(pctText(e.few), want.few === null ? '-' : want.few.toFixed(1), m.method);
      assert.ok(Math.abs(e.ece - want.ece) < 2e-3, `${m.method} ECE ${e.ece} vs ${want.ece}`);
    });
    assert.equal(live.classNames[3], 'class <3>');
  });

  it('under a small budget: a stratified subsample that fits, the same rows for every method', () => {
    const C = fs.numClasses;
    const arrays = 2; // z and NCM's logits
    const perRow = arrays * (2 * C + 4) + 4;
    const budget = perRow * 100 + 7;
    const live = liveReportData(fs, clfs, results(), T, { budgetBytes: budget, chunkRows: 33 })!;
    assert.equal(live.k, 100);
    const bytes =
      b64(live.labels).length +
      b64(live.base!.z.offsets).length +
      b64(live.base!.z.halves).length +
      live.methods
        .filter((m) => m.logits)
        .reduce((a, m) => a + b64(m.logits!.offsets).length + b64(m.logits!.halves).length, 0);
    assert.ok(bytes <= budget, `${bytes} > ${budget}`);
    // 600 rows, 50 a class, 100 kept: 8 or 9 of each class (100 * 50 / 600 = 8.33).
    const lb = b64(live.labels);
    const per = countLabels(new Int32Array(lb.buffer, lb.byteOffset, 100), C);
    for (const v of per) assert.ok(v === 8 || v === 9, String(v));
    // The stored rows are the classifier's on exactly those rows (chunks of 33 included).
    const rows = stratifiedRows(fs.test.labels, C, 100, 0);
    const sub = new Float32Array(100 * fs.dim);
    rows.forEach((r, j) => {
      sub.set(fs.test.features.subarray(r * fs.dim, (r + 1) * fs.dim), j * fs.dim);
    });
    const exact = clfs.get('ncm')!.logits(sub, 100);
    const got = decode(live.methods.find((m) => m.method === 'ncm')!.logits!, 100, C);
    for (let j = 0; j < exact.length; j++)
      assert.ok(Math.abs(got[j]! - exact[j]!) <= 2e-3 * (1 + Math.abs(exact[j]!)));
    assert.equal(liveReportData(fs, clfs, results(), T, { budgetBytes: perRow - 1 }), null);
  });

  it('with too few rows a class for the per-class views, only the rows the table needs', () => {
    const C = fs.numClasses;
    const perRow = 2 * (2 * C + 4) + 4;
    // 100 rows fit (8.3 a class, under MIN_LIVE_ROWS_PER_CLASS): the cap applies.
    const capped = liveReportData(fs, clfs, results(), T, {
      budgetBytes: perRow * 100,
      rowsWithoutPerClass: 40,
    })!;
    assert.equal(capped.k, 40);
    assert.equal(b64(capped.base!.z.halves).length, 40 * C * 2);
    // All 600 rows fit (50 a class): the per-class views are shown and nothing is cut.
    const whole = liveReportData(fs, clfs, results(), T, {
      budgetBytes: perRow * 600,
      rowsWithoutPerClass: 40,
    })!;
    assert.equal(whole.k, 600);
    assert.ok(whole.k / C >= MIN_LIVE_ROWS_PER_CLASS);
  });

  it('stratifiedRows: proportional quotas (largest remainder), sorted, distinct, seeded', () => {
    const labels = Int32Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 2]); // 6 / 3 / 1
    const r = stratifiedRows(labels, 3, 5, 4);
    // exact 3, 1.5, 0.5: floors 3, 1, 0; one left, to class 1 or 2 (remainders .5 and .5, a seeded tie).
    const got = JSON.stringify([
      ...countLabels(
        Int32Array.from(r, (i) => labels[i]!),
        3,
      ),
    ]);
    assert.ok(got === '[3,2,0]' || got === '[3,1,1]', got);
    // k < C: one row for 40 of 100 classes, spread over the classes (not the first 40 by index).
    const many = Int32Array.from({ length: 300 }, (_, i) => i % 100);
    const picked = new Set(Array.from(stratifiedRows(many, 100, 40, 0), (i) => many[i]!));
    assert.equal(picked.size, 40);
    assert.ok([...picked].some((c) => c >= 70) && [...picked].some((c) => c < 30));
    assert.deepEqual(
      [...r],
      [...r].sort((a, b) => a - b),
    );
    assert.equal(new Set(r).size, 5);
    assert.deepEqual([...stratifiedRows(labels, 3, 5, 4)], [...r]);
    assert.deepEqual([...stratifiedRows(labels, 3, 10)], [...labels.keys()]);
  });
});
