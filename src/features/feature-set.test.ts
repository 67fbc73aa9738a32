import assert from 'node:assert/strict';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import { runIsolated } from '../../test/helpers/isolated.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { deflatedZeros, makeZip, npyHeader, zerosCrc } from '../../test/helpers/zip.ts';
import { initBackend } from '../backend/backend.ts';
import { joint } from '../classifiers/joint.ts';
import { ncm } from '../classifiers/ncm.ts';
import { tauNorm } from '../classifiers/tau-norm.ts';
import { argmaxRows } from '../eval/metrics.ts';
import { encodeNpy, readArrays, writeNpyDir, writeNpz } from '../io/npy.ts';
import { featureRows, loadFeatureFile, saveFeatureFile } from './feature-set.ts';

const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures');
// Written by NumPy, with predictions computed there independently (float64):
// NCM 'cl2n' + Euclidean, tau-norm with tau chosen on validation over 0..2.0, and joint.
const golden = JSON.parse(readFileSync(join(FIX, 'features_golden.json'), 'utf8'));

describe('feature files (docs/formats.md)', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('give the same tau-norm, NCM and joint predictions as an independent NumPy implementation', () => {
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    // Features come in SharedArrayBuffers by default: the classifiers (tfjs tensors included) take them as they are.
    assert.ok(fs.train.features.buffer instanceof SharedArrayBuffer);
    assert.ok(fs.test.features.buffer instanceof SharedArrayBuffer);
    assert.deepEqual(fs.trainCounts, [200, 80, 30, 10, 4]);
    const n = fs.test.labels.length;
    const preds = (clf: { logits: (f: Float32Array, n: number) => Float32Array }) => [
      ...argmaxRows(clf.logits(fs.test.features, n), n, 5),
    ];
    const t = tauNorm(fs);
    assert.equal(t.tuned!.value, golden.tau);
    const sweep = t.tuned!.sweep as { val: { overall: number } }[];
    assert.deepEqual(
      sweep.map((p) => Math.round(p.val.overall * 100) / 100),
      golden.val_acc_by_tau,
    );
    assert.deepEqual(preds(t), golden.tau_test_pred);
    assert.deepEqual(preds(ncm(fs)), golden.ncm_test_pred);
    assert.deepEqual(preds(joint(fs)), golden.joint_test_pred);
  });

  it('round-trip through our writer as .npz and as a folder of .npy', () => {
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    const dir = tempDir();
    for (const p of [join(dir, 'f.npz'), join(dir, 'f-dir')]) {
      saveFeatureFile(p, fs);
      const back = loadFeatureFile(p);
      assert.deepEqual(back.train.features, fs.train.features);
      assert.deepEqual(back.test.labels, fs.test.labels);
      assert.deepEqual(back.classifier!.weight, fs.classifier!.weight);
    }
  });

  it('refuse NaN, shape mismatches, out-of-range labels and missing arrays, naming the file and array', () => {
    const dir = tempDir();
    const ok = {
      train_features: { data: Float32Array.from([1, 2, 3, 4]), shape: [2, 2] },
      train_labels: { data: Int32Array.from([0, 1]), shape: [2] },
      test_features: { data: Float32Array.from([1, 2]), shape: [1, 2] },
      test_labels: { data: Int32Array.from([1]), shape: [1] },
    };
    const bad = (name: string, patch: Record<string, unknown>, re: RegExp) => {
      const p = join(dir, `${name}.npz`);
      writeNpz(p, { ...ok, ...patch } as typeof ok);
      assert.throws(
        () => loadFeatureFile(p),
        (e: Error) => e.message.includes(p) && re.test(e.message),
        name,
      );
    };
    bad(
      'nan',
      { train_features: { data: Float32Array.from([1, Number.NaN, 3, 4]), shape: [2, 2] } },
      /train_features: value NaN at flat index 1 is not finite/,
    );
    bad(
      'inf',
      { test_features: { data: Float32Array.from([Number.POSITIVE_INFINITY, 2]), shape: [1, 2] } },
      /test_features: value Infinity/,
    );
    bad(
      'rows',
      { train_labels: { data: Int32Array.from([0, 1, 1]), shape: [3] } },
      /train_labels has 3 entries but train_features has 2 rows/,
    );
    bad(
      'cols',
      { test_features: { data: Float32Array.from([1, 2, 3]), shape: [1, 3] } },
      /test_features has 3 columns, train_features has 2/,
    );
    bad(
      'label',
      { test_labels: { data: Int32Array.from([-1]), shape: [1] } },
      /test_labels\[0\] = -1 is outside 0..1/,
    );
    bad(
      'clf',
      { classifier_weight: { data: Float32Array.from([1, 2, 3]), shape: [1, 3] } },
      /classifier_weight must be \[C, 2\]/,
    );
    bad(
      'small-clf',
      { classifier_weight: { data: Float32Array.from([1, 2]), shape: [1, 2] } },
      /classifier_weight has 1 rows but labels go up to 1/,
    );
    const p = join(dir, 'missing');
    writeNpyDir(p, { train_features: ok.train_features, train_labels: ok.train_labels });
    assert.throws(
      () => loadFeatureFile(p),
      /missing: missing 'test_features' \(found: train_features, train_labels\)/,
    );
    for (const split of ['train', 'test', 'val']) {
      bad(
        `no-${split}`,
        {
          [`${split}_features`]: { data: new Float32Array(0), shape: [0, 2] },
          [`${split}_labels`]: { data: new Int32Array(0), shape: [0] },
        },
        new RegExp(`: ${split}_features has 0 rows; the ${split} split must hold at least one example$`),
      );
    }
    bad(
      'int-feats',
      { train_features: { data: Int32Array.from([1, 2, 3, 4]), shape: [2, 2] } },
      /expected float features/,
    );
  });

  it('refuse feature dimension 0 in the reader, naming the file and array', () => {
    const dir = tempDir();
    for (const container of ['npz', 'dir']) {
      const p = join(dir, container === 'npz' ? 'zero.npz' : 'zero');
      const arrays = {
        train_features: { data: new Float32Array(0), shape: [2, 0] },
        train_labels: { data: Int32Array.from([0, 1]), shape: [2] },
        test_features: { data: new Float32Array(0), shape: [1, 0] },
        test_labels: { data: Int32Array.from([1]), shape: [1] },
      };
      if (container === 'npz') writeNpz(p, arrays);
      else writeNpyDir(p, arrays);
      assert.throws(
        () => loadFeatureFile(p),
        (e: Error) =>
          e.message ===
          `${p}: train_features has 0 columns (shape (2, 0)); features need at least one dimension`,
      );
    }
  });

  it('refuse arrays that do not fit together from their headers, before inflating any (RSS measured)', () => {
    const dir = tempDir();
    // train_features honestly declares 1 GiB (2^18 x 1024 float32, ~1 MB of DEFLATE, within its
    // ratio); train_labels has 528 rows. The headers alone say they cannot go together.
    const rows = 2 ** 18;
    const head = npyHeader('<f4', [rows, 1024]);
    const labels = npyHeader('<i4', [528]);
    const small = (descr: string, shape: number[], bytes: number) =>
      Buffer.concat([npyHeader(descr, shape), Buffer.alloc(bytes)]);
    const entries = [
      {
        name: 'train_features.npy',
        method: 8 as const,
        data: deflatedZeros(head, 1024),
        crc: zerosCrc(head, 1024),
        declared: head.length + 2 ** 30,
      },
      {
        name: 'train_labels.npy',
        method: 0 as const,
        data: Buffer.concat([labels, Buffer.alloc(528 * 4)]),
        declared: labels.length + 528 * 4,
      },
      { name: 'test_features.npy', method: 0 as const, data: small('<f4', [1, 1024], 4096), declared: 0 },
      { name: 'test_labels.npy', method: 0 as const, data: small('<i4', [1], 4), declared: 0 },
    ].map((e) => ({ ...e, declared: e.declared || e.data.length }));
    const p = join(dir, 'lying-rows.npz');
    writeFileSync(p, makeZip(entries));
    const fs = join(import.meta.dirname, 'feature-set.ts');
    const r = runIsolated(`
      import { loadFeatureFile } from ${JSON.stringify(fs)};
      const base = process.resourceUsage().maxRSS;
      let message = null;
      try { loadFeatureFile(${JSON.stringify(p)}); } catch (e) { message = e.name + ': ' + e.message; }
      console.log(JSON.stringify({ message, growthMiB: (process.resourceUsage().maxRSS - base) / 1024 }));`);
    assert.equal(r.timedOut, false);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(
      out.message,
      `DataError: ${p}: train_labels has 528 entries but train_features has ${rows} rows`,
    );
    assert.ok(out.growthMiB < 64, `peak RSS grew by ${out.growthMiB} MiB`);
    console.log(
      `feature file declaring 1 GiB, refused from headers: peak RSS growth ${out.growthMiB.toFixed(1)} MiB`,
    );
  });

  it('leave validation and test in the file (evalInFile): the rows read equal the arrays in memory', () => {
    const dir = tempDir();
    const fs = loadFeatureFile(join(FIX, 'features_golden.npz'));
    const d = fs.dim;
    const npz = join(dir, 'f.npz');
    const folder = join(dir, 'f');
    saveFeatureFile(npz, fs);
    saveFeatureFile(folder, fs);
    // float64 test features in a folder: converted by blocks as read.
    const f8 = join(dir, 'f8');
    saveFeatureFile(f8, fs);
    writeFileSync(
      join(f8, 'test_features.npy'),
      encodeNpy(Float64Array.from(fs.test.features), [fs.test.labels.length, d]),
    );
    for (const path of [npz, folder, f8]) {
      const f = loadFeatureFile(path, undefined, { evalInFile: true, chunkBytes: 100 });
      assert.ok(f.test.inFile && f.val?.inFile, path);
      assert.equal(f.train.inFile, undefined);
      assert.deepEqual(f.train.features, fs.train.features);
      assert.deepEqual(f.test.labels, fs.test.labels);
      assert.throws(() => f.test.features, /left in the file; read them with featureRows\(\)/);
      for (const [sp, whole] of [
        [f.test, fs.test],
        [f.val!, fs.val!],
      ] as const) {
        const n = whole.labels.length;
        assert.deepEqual(featureRows(sp, d, 0, n), whole.features, path);
        for (const [s, m] of [
          [0, 1],
          [n - 1, 1],
          [3, 7],
          [n, 0],
        ] as const)
          assert.deepEqual(
            featureRows(sp, d, s, m),
            whole.features.subarray(s * d, (s + m) * d),
            `${path} ${s}`,
          );
      }
      assert.throws(() => featureRows(f.test, d, 1, f.test.labels.length), /outside 0\.\./);
    }
    // A deflated entry cannot be read by offset: it is read whole, as without the option.
    const m = readArrays(npz);
    const entry = (name: string, data: Uint8Array, deflate: boolean) => ({
      name: `${name}.npy`,
      method: (deflate ? 8 : 0) as 0 | 8,
      data: deflate ? deflateRawSync(data) : data,
      declared: data.length,
    });
    const names = [
      'train_features',
      'train_labels',
      'val_features',
      'val_labels',
      'test_features',
      'test_labels',
    ];
    const zipped = join(dir, 'z.npz');
    writeFileSync(
      zipped,
      makeZip(
        names.map((n) =>
          entry(n, encodeNpy(m.get(n)!.data as Float32Array, m.get(n)!.shape), n === 'test_features'),
        ),
      ),
    );
    const z = loadFeatureFile(zipped, undefined, { evalInFile: true });
    assert.equal(z.test.inFile, undefined);
    assert.deepEqual(z.test.features, fs.test.features);
    assert.ok(z.val!.inFile);
    // A non-finite value is refused at load, named as the in-memory reader names it.
    const bad = Float32Array.from(fs.test.features);
    bad[2 * d + 5] = Number.NaN;
    writeFileSync(join(folder, 'test_features.npy'), encodeNpy(bad, [fs.test.labels.length, d]));
    assert.throws(
      () => loadFeatureFile(folder, undefined, { evalInFile: true, chunkBytes: 64 }),
      (e: Error) =>
        e.message ===
        `${folder}: test_features: value NaN at flat index ${2 * d + 5} is not finite (NaN or Inf)`,
    );
    // The file changed after it was read: its rows are refused, not read from the new bytes.
    const g = loadFeatureFile(npz, undefined, { evalInFile: true });
    utimesSync(npz, new Date(), new Date(Date.now() + 5000));
    assert.throws(
      () => featureRows(g.test, d, 0, 1),
      /f\.npz:test_features\.npy: the file changed since it was read; read it again/,
    );
  });

  it('load float16 and float64 files as float32 (chunk by chunk), shared with worker threads without a copy', async () => {
    const dir = tempDir();
    const half = (descr: string, shape: number[], data: Uint8Array) => {
      const h = Buffer.from(encodeNpy(new Float32Array(shape[0]! * shape[1]!), shape));
      const len = h.readUInt16LE(8);
      const text = h.toString('latin1', 10, 10 + len).replace("'<f4'", `'${descr}'`);
      return Buffer.concat([h.subarray(0, 10), Buffer.from(text, 'latin1'), data]);
    };
    const f16 = join(dir, 'f16');
    writeNpyDir(f16, {
      train_labels: { data: Int32Array.from([0, 1, 1]), shape: [3] },
      test_labels: { data: Int32Array.from([1]), shape: [1] },
      test_features: { data: Float64Array.from([0.1, -2.5]), shape: [1, 2] },
    });
    // 1, -2, 2^-24 (subnormal), 65504, 0.5, -0
    const bits = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x7bff, 0x3800, 0x8000]);
    writeFileSync(join(f16, 'train_features.npy'), half('<f2', [3, 2], new Uint8Array(bits.buffer)));
    for (const chunkBytes of [3, undefined]) {
      const fs = loadFeatureFile(f16, undefined, { chunkBytes });
      assert.deepEqual([...fs.train.features], [1, -2, 2 ** -24, 65504, 0.5, -0]);
      assert.ok(fs.test.features instanceof Float32Array);
      assert.deepEqual([...fs.test.features], [Math.fround(0.1), -2.5]);
    }
    assert.ok(
      !(
        loadFeatureFile(f16, undefined, { sharedFeatures: false }).train.features.buffer instanceof
        SharedArrayBuffer
      ),
    );
    // An infinity in float16 is refused as in float32.
    bits[3] = 0x7c00;
    writeFileSync(join(f16, 'train_features.npy'), half('<f2', [3, 2], new Uint8Array(bits.buffer)));
    assert.throws(
      () => loadFeatureFile(f16),
      (e: Error) =>
        e.message === `${f16}: train_features: value Infinity at flat index 3 is not finite (NaN or Inf)`,
    );
    // A worker thread sees the very memory: what it writes, the loader's array holds.
    bits[3] = 0x7bff;
    writeFileSync(join(f16, 'train_features.npy'), half('<f2', [3, 2], new Uint8Array(bits.buffer)));
    const fs = loadFeatureFile(f16);
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       let s = 0; for (const v of workerData) s += v;
       workerData[0] = 42; parentPort.postMessage(s);`,
      { eval: true, workerData: fs.train.features },
    );
    const sum = await new Promise((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    await w.terminate();
    assert.equal(sum, 1 - 2 + 2 ** -24 + 65504 + 0.5);
    assert.equal(fs.train.features[0], 42);
  });
});
