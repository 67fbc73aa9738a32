/**
 * NCM's deployed head: the folded record computes the run's own calibrated scores
 * -||x - c|| / T + b (checked against a direct double-precision computation), and heads written
 * by older versions (squared distances; the linear half-squared score) load as what their run
 * calibrated, or refuse a score they do not know.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { tempDir } from '../../test/helpers/tmp.ts';
import { initBackend } from '../backend/backend.ts';
import { foldedLogits } from '../classifiers/linear-ops.ts';
import { ncm } from '../classifiers/ncm.ts';
import type { MethodName } from '../classifiers/registry.ts';
import type { Stage2Classifier } from '../classifiers/types.ts';
import { DataError } from '../errors.ts';
import type { FeatureSet } from '../features/feature-set.ts';
import { writeNpz } from '../io/npy.ts';
import { createRng } from '../random/rng.ts';
import { loadFolded, readOldNcm, saveFolded } from './folded.ts';
import { GraphBuilder } from './graph.ts';
import { type OnnxSink, resnetToOnnx } from './onnx-export.ts';

const C = 4;
const d = 5;

function features(seed: number): { fs: FeatureSet; x: Float32Array; n: number } {
  const rng = createRng(seed);
  const n = 40;
  const f = Float32Array.from({ length: n * d }, () => rng.next() * 2 - 1 + 0.3);
  const labels = Int32Array.from({ length: n }, (_, i) => i % C);
  const fs = {
    dim: d,
    numClasses: C,
    classNames: ['a', 'b', 'c', 'd'],
    trainCounts: [10, 10, 10, 10],
    train: { features: f, labels },
    val: null,
    test: { features: f.subarray(0, 2 * d), labels: labels.subarray(0, 2) },
    classifier: null,
  } as unknown as FeatureSet;
  const m = 7;
  return { fs, x: Float32Array.from({ length: m * d }, () => rng.next() * 3 - 1), n: m };
}

/** cl2n features and class means, then -||x - c|| / T + b, all in doubles (the definition). */
function reference(fs: FeatureSet, x: Float32Array, m: number, T: number, b: number[]): number[] {
  const tr = fs.train.features;
  const n = fs.train.labels.length;
  const mu = Array.from({ length: d }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += tr[i * d + j]!;
    return s / n;
  });
  const t = (row: ArrayLike<number>) => {
    const c = Array.from(row, (v, j) => v - mu[j]!);
    const norm = Math.hypot(...c);
    return c.map((v) => v / norm);
  };
  const cent = Array.from({ length: C }, () => new Array<number>(d).fill(0));
  for (let i = 0; i < n; i++) {
    const r = t(tr.subarray(i * d, (i + 1) * d));
    for (let j = 0; j < d; j++) cent[fs.train.labels[i]!]![j]! += r[j]! / (n / C);
  }
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    const r = t(x.subarray(i * d, (i + 1) * d));
    for (let c = 0; c < C; c++) out.push(-Math.hypot(...r.map((v, j) => v - cent[c]![j]!)) / T + b[c]!);
  }
  return out;
}

function closeAll(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what} [${i}]: ${a[i]} vs ${b[i]}`);
}

describe("NCM's deployed head", () => {
  before(async () => {
    await initBackend('wasm');
  });

  const T = 0.37;
  const cb = [0.2, -0.1, 0.05, -0.15];

  function saved(seed: number) {
    const { fs, x, n } = features(seed);
    const clf = ncm(fs);
    const dir = tempDir();
    saveFolded(dir, new Map<MethodName, Stage2Classifier>([['ncm', clf]]), {
      stage1Run: null,
      backboneSha256: null,
      classNames: fs.classNames,
      dim: d,
      calibrations: new Map([['ncm', { temperature: T, bias: cb, sourcePrior: null, valConfusion: null }]]),
    });
    return { fs, x, n, clf, dir };
  }

  /** A saved run whose classifiers.json `edit` changed (a hand-edited or newer record). */
  function editedRecord(
    seed: number,
    edit: (r: { version?: unknown; methods: { ncm: { score?: unknown } } }) => void,
  ) {
    const { dir } = saved(seed);
    const json = join(dir, 'classifiers.json');
    const r = JSON.parse(readFileSync(json, 'utf8'));
    edit(r);
    writeFileSync(json, JSON.stringify(r));
    return { dir, json };
  }

  it('computes -||x - c|| / T + b, the scores the run calibrated (5 seeds, against doubles)', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { fs, x, n, clf, dir } = saved(seed);
      const rec = JSON.parse(readFileSync(join(dir, 'classifiers.json'), 'utf8'));
      assert.equal(rec.methods.ncm.score, 'distance');
      const loaded = loadFolded(dir, 'ncm');
      assert.equal(loaded.warning, null);
      const got = foldedLogits(loaded.layer, x, n, d, C);
      closeAll(got, reference(fs, x, n, T, cb), 2e-5, `seed ${seed}`);
      // The run's calibrated scores z / T + b from the classifier's own logits.
      const z = clf.logits(x, n);
      closeAll(
        got,
        Array.from(z, (v, i) => v / T + cb[i % C]!),
        2e-6,
        `seed ${seed} run`,
      );
    }
  });

  it('reads a squared-distance NCM head (W = 2c, b = -||c||^2, calibrated on -||x - c||) as that distance', () => {
    const { fs, x, n, clf, dir } = saved(11);
    const npz = join(dir, 'classifiers.npz');
    const json = join(dir, 'classifiers.json');
    const c = clf.folded().weight;
    const sq = Array.from({ length: C }, (_, k) =>
      c.subarray(k * d, (k + 1) * d).reduce((a, v) => a + v * v, 0),
    );
    writeNpz(npz, {
      'ncm/weight': { data: c.map((v) => 2 * v), shape: [C, d] },
      'ncm/bias': { data: Float32Array.from(sq, (v) => -v), shape: [C] },
      'ncm/mean': { data: (clf.folded().transform as { mean: Float32Array }).mean, shape: [d] },
    });
    const r = JSON.parse(readFileSync(json, 'utf8'));
    delete r.methods.ncm.score;
    delete r.version; // written before classifiers.json had a version
    writeFileSync(json, JSON.stringify(r));
    const loaded = loadFolded(dir, 'ncm');
    assert.equal(loaded.warning, null);
    closeAll(foldedLogits(loaded.layer, x, n, d, C), reference(fs, x, n, T, cb), 2e-5, 'squared');
  });

  it('keeps a half-squared NCM head linear (its calibration was fitted on it), with a one-line warning to retrain', () => {
    const { x, n, clf, dir } = saved(12);
    const npz = join(dir, 'classifiers.npz');
    const json = join(dir, 'classifiers.json');
    const c = clf.folded().weight;
    const mean = (clf.folded().transform as { mean: Float32Array }).mean;
    const sq = Array.from({ length: C }, (_, k) =>
      c.subarray(k * d, (k + 1) * d).reduce((a, v) => a + v * v, 0),
    );
    writeNpz(npz, {
      'ncm/weight': { data: c, shape: [C, d] },
      'ncm/bias': { data: Float32Array.from(sq, (v) => -v / 2), shape: [C] },
      'ncm/mean': { data: mean, shape: [d] },
    });
    const r = JSON.parse(readFileSync(json, 'utf8'));
    delete r.methods.ncm.score;
    delete r.version; // written before classifiers.json had a version
    writeFileSync(json, JSON.stringify(r));
    const loaded = loadFolded(dir, 'ncm');
    assert.equal(
      loaded.warning,
      `${dir}: this NCM head scores x.c - ||c||^2/2 (longtail before the distance score), whose calibration is worse; run \`longtail retrain --features\` on its feature file again for the distance score`,
    );
    assert.equal(loaded.layer.distance, undefined);
    // (x.c - ||c||^2 / 2) / T + b on the transformed features.
    const xt = Array.from({ length: n }, (_, i) => {
      const v = Array.from(x.subarray(i * d, (i + 1) * d), (u, j) => u - mean[j]!);
      const norm = Math.hypot(...v);
      return v.map((u) => u / norm);
    });
    const want = xt.flatMap((v) =>
      Array.from(
        { length: C },
        (_, k) => (v.reduce((a, u, j) => a + u * c[k * d + j]!, 0) - sq[k]! / 2) / T + cb[k]!,
      ),
    );
    closeAll(foldedLogits(loaded.layer, x, n, d, C), want, 2e-5, 'half-squared');
  });

  it("the ONNX and tfjs distance heads give the folded head's logits (features in, cl2n, T and biases)", async () => {
    const { x, n, dir } = saved(21);
    const { layer } = loadFolded(dir, 'ncm');
    const want = foldedLogits(layer, x, n, d, C);
    // ONNX: images [n, 1, d, 1] flattened into the features, then the exported head.
    const bytes = resnetToOnnx(
      (g, img) => (g as OnnxSink).node('Flatten', [img]),
      [1, d, 1],
      d,
      {
        ...layer,
        classNames: ['a', 'b', 'c', 'd'],
        method: 'ncm',
        meta: {},
      },
      'test',
    );
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ images: new ort.Tensor('float32', x, [n, 1, d, 1]) });
    closeAll(out.logits!.data as Float32Array, want, 1e-5, 'onnx');
    await session.release();
    // tfjs: the graph the export writes after the backbone.
    const g = new GraphBuilder();
    const t = layer.transform as { mean: Float32Array };
    const f = g.l2normalize(g.subConst(g.placeholder('images', [-1, d]), t.mean));
    const logits = g.distance(
      f,
      layer.weight,
      layer.distance!.sqNorms,
      layer.distance!.scale,
      layer.bias,
      C,
      d,
      'logits',
    );
    g.softmax(logits, 'probabilities');
    const { modelJson, weights } = g.build(
      { input: 'images', inputShape: [-1, d], output: 'probabilities', outputShape: [-1, C] },
      {},
    );
    const model = await tf.loadGraphModel(
      tf.io.fromMemory({
        ...modelJson,
        weightSpecs: modelJson.weightsManifest[0]!.weights,
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      } as unknown as tf.io.ModelJSON),
    );
    const z = model.execute(tf.tensor2d(x, [n, d]), 'logits') as tf.Tensor;
    closeAll(z.dataSync(), want, 1e-5, 'tfjs');
    tf.dispose(z);
    model.dispose();
  });

  it('tells old heads by their numbers only: other layers, and a cosine NCM head, are neither', () => {
    const w = Float32Array.from([0.6, 0.8, 1, 0, 0, -1]);
    assert.equal(readOldNcm(w, Float32Array.from([-0.25, -0.25, -0.25]), 3, 2), 'squared');
    assert.equal(readOldNcm(w, Float32Array.from([-0.5, -0.5, -0.5]), 3, 2), 'half-squared');
    assert.equal(readOldNcm(w, new Float32Array(3), 3, 2), null);
    assert.equal(readOldNcm(w, Float32Array.from([-0.25, -0.25, -0.3]), 3, 2), null);
    assert.equal(readOldNcm(new Float32Array(6), new Float32Array(3), 3, 2), null);
  });

  it('reads a versioned record by its fields alone: numbers that look like an old NCM head stay a linear layer', () => {
    const { x, n, clf, dir } = saved(14);
    const json = join(dir, 'classifiers.json');
    const r = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(r.version, 1);
    const c = clf.folded().weight;
    const sq = Array.from({ length: C }, (_, k) =>
      c.subarray(k * d, (k + 1) * d).reduce((a, v) => a + v * v, 0),
    );
    writeNpz(join(dir, 'classifiers.npz'), {
      'ncm/weight': { data: c.map((v) => 2 * v), shape: [C, d] },
      'ncm/bias': { data: Float32Array.from(sq, (v) => -v), shape: [C] },
      'ncm/mean': { data: (clf.folded().transform as { mean: Float32Array }).mean, shape: [d] },
    });
    delete r.methods.ncm.score;
    writeFileSync(json, JSON.stringify(r));
    const loaded = loadFolded(dir, 'ncm');
    assert.equal(loaded.warning, null);
    assert.equal(loaded.layer.distance, undefined);
    assert.equal(foldedLogits(loaded.layer, x, n, d, C).length, n * C);
  });

  it('refuses a version it does not know, naming the file', () => {
    const { dir, json } = editedRecord(15, (r) => {
      r.version = 2;
    });
    assert.throws(
      () => loadFolded(dir, 'ncm'),
      (e: Error) =>
        e instanceof DataError &&
        e.message ===
          `${json}: version is 2; this longtail reads version 1 (or none: an older record); a newer longtail wrote it?`,
    );
  });

  it('refuses a score it does not know, naming the file and field', () => {
    const { dir, json } = editedRecord(13, (r) => {
      r.methods.ncm.score = 'mahalanobis';
    });
    assert.throws(
      () => loadFolded(dir, 'ncm'),
      (e: Error) =>
        e instanceof DataError &&
        e.message ===
          `${json}: methods.ncm.score is "mahalanobis"; expected "distance" or no field (a linear layer); a newer longtail wrote it?`,
    );
  });
});
