/**
 * examples/pytorch/export_backbone.py end to end, where PyTorch is installed (skipped cleanly
 * elsewhere). The same 64 PNGs (list files, varied sizes, so every image is resized down or up
 * and cropped) go through
 *   (a) the exporter's feature path: longtail_preprocess.py (the contract in NumPy) + PyTorch,
 *       a seeded torchvision ResNet-18;
 *   (b) longtail's own extraction through that ONNX export (`longtail train --config OUT.json`:
 *       sharp decode, the contract's resize in TypeScript, onnxruntime-node);
 *   (c) the deployable model (`longtail export --format onnx`) served by onnxruntime-node with the
 *       serving recipe of docs/deploy.md (decode, the contract's resize, feed), against `predict`.
 * (a) and (b) agree within 1e-4 relative L2 (7.8 % apart before the contract: PIL bilinear vs
 * sharp's lanczos3); (c)'s probabilities are predict's. The exporter's feature file also runs
 * every stage-2 method. The `longtail` calls run inside this process (runInProcess,
 * test/helpers/cli.ts); the command line's own process is tested elsewhere.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { decodeAndResize } from 'longtail';
import sharp from 'sharp';
import { methodNames } from '../src/classifiers/registry.ts';
import { readNpz } from '../src/io/npy.ts';
import { runInProcess } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const PYTHON = process.env.LONGTAIL_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'examples', 'pytorch', 'export_backbone.py');
const hasTorch =
  spawnSync(PYTHON, ['-c', 'import torch, torchvision, PIL'], { encoding: 'utf8' }).status === 0;
const hasOrt = await import('onnxruntime-node').then(
  () => true,
  () => false,
);
const S = 64;
const SPLITS = ['train', 'val', 'test'] as const;
const THRESHOLDS = ['--few-threshold', '6', '--many-threshold', '10', '--threads', '1'];

/** Relative L2 difference |a - b| / |b| and the largest absolute difference. */
function difference(a: ArrayLike<number>, b: ArrayLike<number>): { rel: number; maxAbs: number } {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(a[i]! - b[i]!));
  }
  return { rel: Math.sqrt(num / den), maxAbs };
}

describe('examples/pytorch/export_backbone.py: 64 images through PyTorch, longtail and the served model', {
  skip: hasTorch ? false : `no PyTorch at ${PYTHON}`,
}, () => {
  const dir = tempDir();
  const root = join(dir, 'data');
  const files: string[] = []; // the 64 images, in split order (train, val, test)
  const torchFeatures = join(dir, 'r18.npz');
  const run = join(dir, 'run');

  before(async () => {
    // 32 train images (18 / 9 / 5 by class: many, medium, few), 16 val, 16 test.
    const lists: Record<string, string[]> = { train: [], val: [], test: [] };
    for (const s of SPLITS) mkdirSync(join(root, s), { recursive: true });
    for (let i = 0; i < 64; i++) {
      const split = i < 32 ? 'train' : i < 48 ? 'val' : 'test';
      const label = i < 32 ? (i < 18 ? 0 : i < 27 ? 1 : 2) : i % 3;
      // Different sizes and aspect ratios (40-159 x 40-139): every image is resized and cropped.
      const w = 40 + ((i * 37) % 120);
      const h = 40 + ((i * 53) % 100);
      const px = Buffer.alloc(w * h * 3);
      for (let k = 0; k < px.length; k++)
        px[k] = (((k * (i + 3)) >> 2) + ((k / (w * 3)) | 0) * 5 + 60 * label) % 256;
      const rel = `${split}/${i}.png`;
      await sharp(px, { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toFile(join(root, rel));
      files.push(join(root, rel));
      lists[split]!.push(`${rel} ${label}`);
    }
    for (const s of SPLITS) writeFileSync(join(root, `${s}.txt`), `${lists[s]!.join('\n')}\n`);

    // (a) One Python process: the ONNX export, OUT.json, and the features of the three splits.
    const out = join(dir, 'r18');
    const lf = (s: string) => join(root, `${s}.txt`);
    const r = spawnSync(
      PYTHON,
      [
        SCRIPT,
        ...['--model', 'resnet18', '--seed', '0', '--num-classes', '3', '--image-size', String(S)],
        ...['--out', out, '--data-root', root, '--train-list', lf('train'), '--val-list', lf('val')],
        ...['--test-list', lf('test'), '--features', torchFeatures],
      ],
      { encoding: 'utf8', timeout: 600_000, env: { ...process.env, OMP_NUM_THREADS: '1' } },
    );
    assert.equal(r.status, 0, r.stderr);
    // (b) longtail's extraction: a run folder from the exporter's config file, as it is.
    const t = await runInProcess(['train', '--config', `${out}.json`, '--out', run, ...THRESHOLDS]);
    assert.equal(t.code, 0, t.stderr);
  });

  it('(a) PyTorch features = (b) longtail ONNX-backbone features within 1e-4 relative L2', (t) => {
    const a = readNpz(torchFeatures);
    const b = readNpz(join(run, 'features.npz'));
    for (const s of SPLITS) {
      const fa = a.get(`${s}_features`)!;
      const fb = b.get(`${s}_features`)!;
      assert.deepEqual(fb.shape, fa.shape);
      assert.deepEqual(Array.from(b.get(`${s}_labels`)!.data), Array.from(a.get(`${s}_labels`)!.data));
      const d = difference(fb.data as Float32Array, fa.data as Float32Array);
      t.diagnostic(
        `${s} (${fa.shape[0]} images, ${fa.shape[1]}-d): relative L2 ${d.rel.toExponential(2)}, max abs ${d.maxAbs.toExponential(2)}`,
      );
      assert.ok(d.rel <= 1e-4, `${s}: relative L2 difference ${d.rel}`);
    }
  });

  it("(c) the exported model, served by onnxruntime-node with the documented recipe, gives predict's probabilities", {
    skip: hasOrt ? false : 'onnxruntime-node is not installed',
  }, async (t) => {
    const rr = await runInProcess([
      'retrain',
      '--run',
      run,
      '--method',
      'crt',
      '--crt-epochs',
      '1',
      '--mode',
      'features',
      '--stage2-batch-size',
      '8',
      ...THRESHOLDS,
    ]);
    assert.equal(rr.code, 0, rr.stderr);
    const deploy = join(dir, 'deploy');
    const e = await runInProcess([
      'export',
      '--run',
      run,
      '--method',
      'crt',
      '--format',
      'onnx',
      '--out',
      deploy,
    ]);
    assert.equal(e.code, 0, e.stderr);
    const p = await runInProcess([
      'predict',
      ...files,
      '--run',
      run,
      '--method',
      'crt',
      '--top-k',
      '3',
      '--json',
    ]);
    assert.equal(p.code, 0, p.stderr);
    const predicted: { file: string; top: { name: string; probability: number }[] }[] = JSON.parse(
      p.stdout,
    ).predictions;
    assert.equal(predicted.length, files.length);

    // The recipe of docs/deploy.md ("Serving the ONNX model from Node"), step by step.
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(join(deploy, 'model.onnx'));
    const labels: string[] = JSON.parse(readFileSync(join(deploy, 'labels.json'), 'utf8'));
    const input = session.inputMetadata[0]!;
    assert.ok(input.isTensor);
    // [n, H, W, C]: the contract's size is the model's side.
    const [, size, , channels] = input.shape as readonly number[];
    assert.equal(size, S);
    let maxAbs = 0;
    let agree = 0;
    for (const [i, f] of files.entries()) {
      const px = await decodeAndResize(readFileSync(f), size!, channels as 1 | 3);
      const x = new ort.Tensor(
        'float32',
        Float32Array.from(px, (v) => v / 255),
        [1, size!, size!, channels!],
      );
      const { probabilities } = await session.run({ [input.name]: x });
      const served = probabilities!.data as Float32Array;
      assert.equal(predicted[i]!.file, f);
      for (const { name, probability } of predicted[i]!.top) {
        maxAbs = Math.max(maxAbs, Math.abs(served[labels.indexOf(name)]! - probability));
      }
      const best = served.indexOf(Math.max(...served));
      if (labels[best] === predicted[i]!.top[0]!.name) agree++;
    }
    t.diagnostic(
      `served vs predict on ${files.length} images: max |p - p'| ${maxAbs.toExponential(2)}, same top-1 ${agree}/${files.length}`,
    );
    // Two runtimes (tfjs for predict's head, onnxruntime for the Gemm): float32 rounding only.
    assert.ok(maxAbs <= 1e-5, `probabilities differ by ${maxAbs}`);
    assert.equal(agree, files.length);
  });

  it('its feature file (three splits, class names and the classifier) runs every stage-2 method', async () => {
    const rt = await runInProcess([
      'retrain',
      '--features',
      torchFeatures,
      '--method',
      'all',
      '--crt-epochs',
      '1',
      '--lws-epochs',
      '1',
      '--stage2-batch-size',
      '8',
      ...THRESHOLDS,
      '--out',
      join(dir, 'retrain'),
      '--json',
    ]);
    assert.equal(rt.code, 0, rt.stderr);
    assert.deepEqual(
      JSON.parse(rt.stdout)
        .methods.map((m: { method: string }) => m.method)
        .sort(),
      [...methodNames()].sort(),
    );
  });
});
