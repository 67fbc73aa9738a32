/**
 * examples/pytorch/export_backbone.py, where PyTorch is installed (skipped cleanly elsewhere): a
 * torchvision ResNet-18 with seeded random weights, exported to ONNX, gives through longtail's
 * ONNX backbone the features PyTorch computes on the same images; its feature file feeds
 * `longtail retrain --features` with every method.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { initBackend } from '../src/backend/backend.ts';
import { methodNames } from '../src/classifiers/registry.ts';
import { decodeImage } from '../src/data/image-list.ts';
import { readNpy, readNpz } from '../src/io/npy.ts';
import { createBackbone } from '../src/models/registry.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const PYTHON = process.env.LONGTAIL_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '..', 'examples', 'pytorch', 'export_backbone.py');
const EXAMPLES = join(import.meta.dirname, '..', 'examples', 'pytorch');

/**
 * Python: a seeded torchvision resnet18 (its fc split off), exported to ONNX with a dynamic batch,
 * and its features on the given PNGs preprocessed by longtail_preprocess.py (the contract).
 */
const TORCH_SIDE = `
import sys, numpy as np, torch, torchvision
sys.path.insert(0, sys.argv[1])
import longtail_preprocess as lp
onnx_path, out, paths = sys.argv[2], sys.argv[3], sys.argv[4:]
torch.manual_seed(0)
m = torchvision.models.resnet18(weights=None, num_classes=10)
m.fc = torch.nn.Identity()
m.eval()
c = lp.default_contract(size=64)
x = torch.from_numpy(np.stack([lp.load_image(p, c) for p in paths]))
with torch.no_grad():
    f = m(x).numpy()
torch.onnx.export(m, x[:1], onnx_path, input_names=['input'], output_names=['features'],
                  dynamic_axes={'input': {0: 'n'}, 'features': {0: 'n'}}, opset_version=13)
np.save(out, f.astype(np.float32))
`;
const hasTorch =
  spawnSync(PYTHON, ['-c', 'import torch, torchvision, PIL'], { encoding: 'utf8' }).status === 0;

describe('examples/pytorch/export_backbone.py', {
  skip: hasTorch ? false : `no PyTorch at ${PYTHON}`,
}, () => {
  const dir = tempDir();
  const S = 64;

  it('a seeded torchvision resnet18 through the ONNX backbone gives PyTorch features within 1e-4', async () => {
    const out = join(dir, 'r18');
    const ref = join(dir, 'ref.npz');
    const r = spawnSync(
      PYTHON,
      [
        SCRIPT,
        '--model',
        'resnet18',
        '--seed',
        '0',
        '--num-classes',
        '10',
        '--image-size',
        String(S),
        '--out',
        out,
        '--reference',
        ref,
      ],
      { encoding: 'utf8', timeout: 300_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const a = readNpz(ref);
    const images = a.get('images')!.data as Float32Array;
    const theirs = a.get('features')!.data as Float32Array;
    const n = images.length / (S * S * 3);
    await initBackend('cpu');
    const bb = createBackbone(
      {
        name: 'onnx',
        options: {
          path: `${out}.onnx`,
          output: 'features',
          mean: [0.485, 0.456, 0.406],
          std: [0.229, 0.224, 0.225],
          fcWeight: 'head.weight',
          fcBias: 'head.bias',
        },
      },
      [S, S, 3],
      0,
    );
    try {
      assert.equal(bb.featureDim, 512);
      assert.equal(bb.trainable, false);
      const mine = tf.tidy(() => bb.features(tf.tensor4d(images, [n, S, S, 3]), false)).dataSync();
      let err = 0;
      let scale = 0;
      for (let i = 0; i < mine.length; i++) {
        err = Math.max(err, Math.abs(mine[i]! - theirs[i]!));
        scale = Math.max(scale, Math.abs(theirs[i]!));
      }
      assert.ok(err <= 1e-4 * Math.max(1, scale), `max difference ${err} (scale ${scale})`);
    } finally {
      bb.dispose();
    }
  });

  it('64 PNGs: longtail decoding + the ONNX export agree with longtail_preprocess.py + PyTorch within 1e-4', async () => {
    const root = join(dir, 'contract');
    mkdirSync(root, { recursive: true });
    const paths: string[] = [];
    for (let i = 0; i < 64; i++) {
      // Different sizes and aspect ratios: every image is resized (down and up) and cropped.
      const w = 40 + ((i * 37) % 120);
      const h = 40 + ((i * 53) % 100);
      const px = Buffer.alloc(w * h * 3);
      for (let k = 0; k < px.length; k++) px[k] = (((k * (i + 3)) >> 2) + ((k / (w * 3)) | 0) * 5) % 256;
      const p = join(root, `${i}.png`);
      await sharp(px, { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toFile(p);
      paths.push(p);
    }
    const model = join(root, 'r18.onnx');
    const ref = join(root, 'torch.npy');
    const r = spawnSync(PYTHON, ['-c', TORCH_SIDE, EXAMPLES, model, ref, ...paths], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const theirs = readNpy(ref).data as Float32Array;
    const S = 64;
    const images = new Float32Array(paths.length * S * S * 3);
    for (const [i, p] of paths.entries()) {
      const u8 = await decodeImage(p, S);
      for (let k = 0; k < u8.length; k++) images[i * S * S * 3 + k] = u8[k]! / 255;
    }
    await initBackend('cpu');
    const bb = createBackbone(
      {
        name: 'onnx',
        options: { path: model, output: 'features', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      },
      [S, S, 3],
      0,
    );
    try {
      const mine = tf.tidy(() => bb.features(tf.tensor4d(images, [paths.length, S, S, 3]), false)).dataSync();
      assert.equal(mine.length, theirs.length);
      let num = 0;
      let den = 0;
      for (let i = 0; i < mine.length; i++) {
        num += (mine[i]! - theirs[i]!) ** 2;
        den += theirs[i]! ** 2;
      }
      const rel = Math.sqrt(num / den);
      assert.ok(rel <= 1e-4, `relative L2 difference ${rel}`);
    } finally {
      bb.dispose();
    }
  });

  it('its feature file (three splits and the classifier) runs every stage-2 method', async () => {
    const root = join(dir, 'data');
    const lists: Record<string, string[]> = { train: [], val: [], test: [] };
    for (const [split, per] of [
      ['train', [6, 3, 2]],
      ['val', [2, 2, 2]],
      ['test', [2, 2, 2]],
    ] as const) {
      mkdirSync(join(root, split), { recursive: true });
      for (const [c, count] of per.entries()) {
        for (let k = 0; k < count; k++) {
          const px = Buffer.alloc(40 * 48 * 3);
          for (let i = 0; i < px.length; i++) px[i] = (i * (c + 2) + k * 17) % 256;
          const p = `${split}/${c}_${k}.png`;
          await sharp(px, { raw: { width: 48, height: 40, channels: 3 } })
            .png()
            .toFile(join(root, p));
          lists[split]!.push(`${p} ${c}`);
        }
      }
      writeFileSync(join(root, `${split}.txt`), `${lists[split]!.join('\n')}\n`);
    }
    const npz = join(dir, 'features.npz');
    const r = spawnSync(
      PYTHON,
      [
        SCRIPT,
        '--model',
        'resnet18',
        '--num-classes',
        '3',
        '--image-size',
        '32',
        '--out',
        join(dir, 'small'),
        '--data-root',
        root,
        '--train-list',
        join(root, 'train.txt'),
        '--val-list',
        join(root, 'val.txt'),
        '--test-list',
        join(root, 'test.txt'),
        '--features',
        npz,
      ],
      { encoding: 'utf8', timeout: 300_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const rt = runCli([
      'retrain',
      '--features',
      npz,
      '--method',
      'all',
      '--crt-epochs',
      '1',
      '--lws-epochs',
      '1',
      '--threads',
      '1',
      '--stage2-batch-size',
      '4',
      '--few-threshold',
      '3',
      '--many-threshold',
      '5',
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
