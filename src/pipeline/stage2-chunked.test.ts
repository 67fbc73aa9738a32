import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { longTailedFeatures } from '../../test/helpers/features.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { initBackend } from '../backend/backend.ts';
import { packedLinearSize } from '../classifiers/linear-ops.ts';
import { ncm } from '../classifiers/ncm.ts';
import { createClassifier, methodNames } from '../classifiers/registry.ts';
import { EVAL_SPLIT, logitThreads, rowJobsPosted } from '../classifiers/sharded/logit-threads.ts';
import { columnSweep, UNIT_GRID_0_2 } from '../classifiers/tuning.ts';
import {
  CONFUSION_MAX_CLASSES,
  evaluateLogitBlocks,
  evaluateLogits,
  evaluatePredictions,
  LogitRows,
} from '../eval/metrics.ts';
import { type FeatureSet, loadFeatureFile, saveFeatureFile } from '../features/feature-set.ts';
import { createRng } from '../random/rng.ts';
import {
  ClassifierPark,
  evaluateClassifier,
  evaluateShifted,
  type MethodResult,
  PARKING,
  parkClassifier,
  runStage2,
  ShiftedEvaluator,
  VALIDATION_CACHE,
} from './stage2.ts';

/** A long-tailed problem with val and test sets and a joint classifier biased to the head. */
const features = (seed: number, C: number, d: number, testPer = 6): FeatureSet =>
  longTailedFeatures({
    seed,
    C,
    d,
    head: 60,
    decay: 0.7,
    min: 3,
    noise: 1.5,
    valPer: 3,
    testPer,
    growth: 0.1,
    biasStep: 0.05,
  });

const CHUNKS = [1, 2, 7, 13, 50, 1_000_000];
const withoutTime = (r: MethodResult) => ({ ...r, seconds: 0 });

describe('stage 2 a block of rows at a time equals the whole at once, to the bit', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('evaluation of logits: any block size, many seeds', () => {
    for (let seed = 0; seed < 20; seed++) {
      const rng = createRng(100 + seed);
      const C = 2 + rng.int(9);
      const n = 1 + rng.int(60);
      const logits = Float32Array.from({ length: n * C }, () => 3 * rng.normal()); // [n, C]
      // Ties too: whole rows of one value and repeated maxima.
      for (let i = 0; i < n; i += 5) logits.fill(0.5, i * C, (i + 1) * C);
      const labels = Int32Array.from({ length: n }, () => rng.int(C));
      const counts = Array.from({ length: C }, () => 1 + rng.int(300));
      const whole = evaluateLogits(logits, labels, C, counts);
      for (const chunk of [...CHUNKS, 1 + rng.int(n)]) {
        const seen: number[] = [];
        const { evaluation } = evaluateLogitBlocks(
          (s, m) => logits.slice(s * C, (s + m) * C),
          labels,
          C,
          counts,
          { chunkRows: chunk, onBlock: (_z, s, m) => seen.push(s, m) },
        );
        assert.deepEqual(evaluation, whole, `seed ${seed}, chunk ${chunk}`);
        assert.equal(seen.length / 2, Math.ceil(n / Math.min(chunk, n)));
      }
    }
  });

  it('shifted test priors: index lists fed block by block give the same results', () => {
    for (let seed = 0; seed < 10; seed++) {
      const rng = createRng(200 + seed);
      const C = 3 + rng.int(6);
      const per = 4 + rng.int(10);
      const labels = Int32Array.from({ length: C * per }, (_, i) => i % C);
      const n = labels.length;
      const logits = Float32Array.from({ length: n * C }, () => rng.normal());
      const trainCounts = Array.from({ length: C }, () => 1 + rng.int(500));
      const fs = {
        numClasses: C,
        trainCounts,
        test: { labels, features: new Float32Array(0) },
      } as unknown as FeatureSet;
      const whole = evaluateShifted(logits, fs, seed);
      assert.equal(whole.length, 6);
      for (const chunk of [1, 3, 11, n]) {
        const rows = new LogitRows(n, C);
        const sh = new ShiftedEvaluator(fs, seed);
        for (let s = 0; s < n; s += chunk) {
          const m = Math.min(chunk, n - s);
          const z = logits.slice(s * C, (s + m) * C);
          rows.add(z, m);
          sh.add(z, s, m);
        }
        assert.deepEqual(sh.results(rows), whole, `seed ${seed}, chunk ${chunk}`);
      }
    }
  });

  it('every method evaluated with blocks of 1, 7, 13 and all rows gives the same result', () => {
    const fs = features(3, 9, 24);
    const ctx = { features: fs, seed: 1, head: { batchSize: 16, epochs: 1 } };
    for (const m of methodNames()) {
      const clf = createClassifier(m, ctx, { crtEpochs: 1, lwsEpochs: 1, bsEpochs: 1, wbEpochs: 1 });
      const whole = withoutTime(evaluateClassifier(clf, ctx, 0, undefined, 1_000_000));
      assert.ok(whole.shifted.length > 0);
      for (const chunk of [1, 7, 13]) {
        assert.deepEqual(
          withoutTime(evaluateClassifier(clf, ctx, 0, undefined, chunk)),
          whole,
          `${m}, ${chunk}`,
        );
      }
    }
  });

  it('every method evaluated on 1 and 2 threads (logits split by rows) gives the same result', () => {
    const fs = features(6, 9, 24);
    const ctx = { features: fs, seed: 1, head: { batchSize: 16, epochs: 1 } };
    const settings = { crtEpochs: 1, lwsEpochs: 1, bsEpochs: 1, wbEpochs: 1 };
    const jobs = rowJobsPosted();
    const saved = { ...EVAL_SPLIT };
    EVAL_SPLIT.keepWorkers = true; // one worker for the 9 tiny evaluations
    try {
      for (const m of methodNames()) {
        const clf = createClassifier(m, ctx, settings);
        assert.ok(clf.linear, `${m} gives its logits as data`);
        const one = withoutTime(evaluateClassifier(clf, ctx, 0, undefined, 7));
        EVAL_SPLIT.minWeights = 0; // this tiny head (9 x 24) split anyway
        assert.deepEqual(
          withoutTime(evaluateClassifier(clf, { ...ctx, threads: 2 }, 0, undefined, 7)),
          one,
          m,
        );
        EVAL_SPLIT.minWeights = saved.minWeights;
        // And through the method's own logits (no session): the same again.
        const { linear: _, ...plain } = clf;
        assert.deepEqual(
          withoutTime(evaluateClassifier(plain, ctx, 0, undefined, 7)),
          one,
          `${m}, own logits`,
        );
      }
    } finally {
      Object.assign(EVAL_SPLIT, saved);
      logitThreads(2)?.dispose();
    }
    // The second thread did its share of the blocks (where the packed product runs).
    if (packedLinearSize(1, 1) > 0)
      assert.ok(rowJobsPosted() - jobs >= methodNames().length * 2, `${rowJobsPosted() - jobs} blocks`);
  });

  it('every method with validation and test left in the file (evalInFile), any block size, equals them in memory', () => {
    const fs = features(5, 9, 24);
    const path = join(tempDir(), 'f.npz');
    saveFeatureFile(path, fs);
    const inFile = loadFeatureFile(path, undefined, { evalInFile: true });
    assert.ok(inFile.test.inFile && inFile.val?.inFile);
    const settings = { crtEpochs: 1, lwsEpochs: 1, bsEpochs: 1, wbEpochs: 1 };
    const head = { batchSize: 16, epochs: 1 };
    for (const m of methodNames()) {
      const ctx = { features: fs, seed: 1, head };
      const whole = withoutTime(
        evaluateClassifier(createClassifier(m, ctx, settings), ctx, 0, undefined, 1_000_000),
      );
      // Built on the file-backed set too: the tau sweeps read validation and test from the file.
      const fctx = { features: inFile, seed: 1, head };
      const clf = createClassifier(m, fctx, settings);
      for (const chunk of [1, 7, 1_000_000])
        assert.deepEqual(
          withoutTime(evaluateClassifier(clf, fctx, 0, undefined, chunk)),
          whole,
          `${m}, ${chunk}`,
        );
      // The validation logits spilled to a temporary file for the temperature search, or recomputed
      // when no file can be made: the same numbers, and no file left behind.
      const saved = { floats: VALIDATION_CACHE.floats, tmp: process.env.TMPDIR };
      const tmp = tempDir();
      try {
        VALIDATION_CACHE.floats = 0;
        process.env.TMPDIR = tmp;
        assert.deepEqual(withoutTime(evaluateClassifier(clf, fctx, 0, undefined, 7)), whole, `${m}, spilled`);
        assert.deepEqual(readdirSync(tmp), []);
        process.env.TMPDIR = join(tmp, 'missing');
        assert.deepEqual(
          withoutTime(evaluateClassifier(clf, fctx, 0, undefined, 7)),
          whole,
          `${m}, recomputed`,
        );
      } finally {
        VALIDATION_CACHE.floats = saved.floats;
        if (saved.tmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = saved.tmp;
      }
    }
  });

  it('NCM class means and logits: any block size, every feature kind', () => {
    for (const seed of [1, 2, 3]) {
      const fs = features(seed, 7, 33);
      for (const featureType of ['cl2n', 'l2n', 'raw'] as const) {
        const whole = ncm(fs, { featureType, chunkRows: 1_000_000 });
        const n = fs.test.labels.length;
        const z = whole.logits(fs.test.features, n);
        for (const chunkRows of [1, 4, 29]) {
          const c = ncm(fs, { featureType, chunkRows });
          assert.deepEqual(c.folded(), whole.folded(), `${featureType} ${chunkRows}`);
          assert.deepEqual(c.weightNorms(), whole.weightNorms());
          assert.deepEqual(c.logits(fs.test.features, n), z);
        }
      }
    }
  });

  it('the column sweep (tau-norm, logit adjustment): any block size', () => {
    for (const seed of [4, 5]) {
      const fs = features(seed, 8, 20, 9);
      const { weight, bias } = fs.classifier!;
      const map = (t: number) => ({
        scale: Float32Array.from({ length: 8 }, (_, c) => (1 + c) ** -t),
        shift: Float32Array.from({ length: 8 }, (_, c) => -t * Math.log(fs.trainCounts[c]! / 100)),
      });
      const whole = columnSweep(fs, { weight, bias }, UNIT_GRID_0_2, map, undefined, 1_000_000);
      for (const chunk of [1, 5, 17]) {
        assert.deepEqual(
          columnSweep(fs, { weight, bias }, UNIT_GRID_0_2, map, undefined, chunk),
          whole,
          String(chunk),
        );
      }
    }
  });
});

describe('classifiers parked in a temporary file until the report (runStage2 park)', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('every method: the same results, logits, folded layer and weight norms to the bit; the file goes with release()', () => {
    const fs = features(11, 9, 24);
    const ctx = { features: fs, seed: 2, head: { batchSize: 16, epochs: 1 } };
    const nt = fs.test.labels.length;
    const saved = { min: PARKING.minFloats, tmp: process.env.TMPDIR };
    const dir = tempDir();
    PARKING.minFloats = 1; // park every array, the small ones of this problem too
    process.env.TMPDIR = dir; // where the park's folder goes (os.tmpdir() reads it)
    try {
      for (const ncmDistance of ['l2', 'cos']) {
        const settings = { crtEpochs: 1, lwsEpochs: 1, bsEpochs: 1, wbEpochs: 1, ncmDistance };
        const plain = runStage2(ctx, methodNames(), { settings });
        const parked = runStage2(ctx, methodNames(), { settings, park: true });
        assert.equal(readdirSync(dir).filter((f) => f.startsWith('longtail-classifiers-')).length, 1);
        assert.deepEqual(parked.results.map(withoutTime), plain.results.map(withoutTime));
        assert.deepEqual(parked.calibrations, plain.calibrations);
        for (const m of methodNames()) {
          const a = plain.classifiers.get(m)!;
          const b = parked.classifiers.get(m)!;
          assert.notEqual(a, b, `${m}: parked`);
          assert.deepEqual(b.logits(fs.test.features, nt), a.logits(fs.test.features, nt), `${m} logits`);
          assert.deepEqual(b.folded(), a.folded(), `${m} folded`);
          assert.deepEqual(b.linear, a.linear, `${m} linear`);
          assert.deepEqual(b.weightNorms(), a.weightNorms(), `${m} norms`);
          assert.deepEqual(
            [b.method, b.numClasses, b.dim, b.tuned, b.details],
            [a.method, a.numClasses, a.dim, a.tuned, a.details],
          );
        }
        parked.release();
        plain.release(); // a no-op without parking
        assert.deepEqual(readdirSync(dir), [], 'the park folder is removed');
        assert.throws(
          () => parked.classifiers.get('crt')!.folded(),
          /^Error: stage 2: a parked classifier was read after its release$/,
        );
      }
    } finally {
      PARKING.minFloats = saved.min;
      if (saved.tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved.tmp;
    }
    assert.notEqual(tmpdir(), dir);
  });
});

/** Parks a cRT, tau-norm and NCM classifier; WeakRefs to their original arrays, and what a run keeps. */
function parkThree(
  ctx: { features: FeatureSet; seed: number; head: { batchSize: number; epochs: number } },
  park: ClassifierPark,
): { refs: [string, WeakRef<Float32Array>][]; kept: unknown[] } {
  const refs: [string, WeakRef<Float32Array>][] = [];
  const kept: unknown[] = [];
  for (const m of ['crt', 'tau-norm', 'ncm'] as const) {
    const clf = createClassifier(m, ctx, { crtEpochs: 1 });
    const lin = clf.linear!;
    const f = clf.folded();
    const arrays = { weight: lin.weight, foldedWeight: f.weight, foldedBias: f.bias };
    const t = lin.transform;
    if (t.kind === 'cl2n') Object.assign(arrays, { mean: t.mean });
    for (const [k, a] of Object.entries(arrays)) refs.push([`${m} ${k}`, new WeakRef(a)]);
    const p = parkClassifier(clf, park, new Set(), clf.weightNorms());
    kept.push(p, p.folded(), p.linear); // what a run keeps (and reads back) until its report
  }
  return { refs, kept };
}

describe('a parked classifier lets its arrays go', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('cRT, tau-norm and NCM: the original weight, mean and folded arrays are collected once parked', async () => {
    // A full collection on demand (the runner starts Node without --expose-gc).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const fs = features(12, 9, 24);
    const ctx = { features: fs, seed: 2, head: { batchSize: 16, epochs: 1 } };
    const saved = PARKING.minFloats;
    PARKING.minFloats = 1;
    const park = new ClassifierPark();
    try {
      // Made in a function of its own: nothing of it stays in this async function's frame.
      const { refs, kept } = parkThree(ctx, park);
      // WeakRefs hold their targets until the current job ends.
      await new Promise((r) => setImmediate(r));
      gc();
      const alive = refs.filter(([, r]) => r.deref() !== undefined).map(([k]) => k);
      assert.deepEqual(alive, [], 'arrays still reachable from the parked classifiers');
      assert.equal(kept.length, 9);
    } finally {
      park.close();
      PARKING.minFloats = saved;
    }
  });
});

describe('the confusion matrix is kept only up to a class count', () => {
  it(`keeps it up to ${CONFUSION_MAX_CLASSES} classes, [] above; every other number is unchanged`, () => {
    const rng = createRng(5);
    for (const C of [CONFUSION_MAX_CLASSES, CONFUSION_MAX_CLASSES + 1]) {
      const labels = Array.from({ length: 3000 }, () => rng.int(C));
      const pred = labels.map((l) => (rng.next() < 0.5 ? l : rng.int(C)));
      const counts = Array.from({ length: C }, (_, c) => 1 + ((c * 37) % 400));
      const e = evaluatePredictions(pred, labels, C, counts);
      const full = evaluatePredictions(pred, labels, C, counts, { confusionMaxClasses: Infinity });
      assert.equal(full.confusion.length, C);
      assert.deepEqual(e.confusion, C <= CONFUSION_MAX_CLASSES ? full.confusion : []);
      assert.deepEqual({ ...e, confusion: [] }, { ...full, confusion: [] });
      // The matrix's diagonal and margins agree with the per-class numbers.
      full.perClass.forEach((a, c) => {
        const row = full.confusion[c]!;
        const s = row.reduce((x, y) => x + y, 0);
        assert.equal(a, s === 0 ? null : row[c]! / s);
      });
    }
  });
});
