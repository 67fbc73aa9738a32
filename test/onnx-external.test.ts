/**
 * ONNX models whose weights live in external data files (issue 25 section 3, issue 26 item 6):
 * they load with the files resolved in the model's folder (not the working folder), give the same
 * features as the same model with embedded weights, are part of the model's identity (a changed
 * weight file is refused by predict like a changed model), and every unsafe or broken entry (a
 * missing file, a short one, a path leaving the folder, an absolute path, a symlink out, a FIFO, a
 * wrong length) is refused in one line naming the model, the tensor and the file, exit 2, before
 * anything is written.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { initBackend } from '../src/backend/backend.ts';
import { exportModel } from '../src/deploy/export.ts';
import { UserError } from '../src/errors.ts';
import { createOnnxBackbone } from '../src/models/onnx-backbone.ts';
import { onnx, readOnnxFile } from '../src/models/onnx-file.ts';
import { BIN } from './helpers/cli.ts';
import {
  MATMUL_BYTES,
  MATMUL_IN,
  MATMUL_OUT,
  matmulModel,
  matmulWeight,
  matmulWeightFile,
} from './helpers/onnx-models.ts';
import { tempDir } from './helpers/tmp.ts';

const TINY = ['--max-per-class', '30', '--imbalance', '3', '--batch-size', '32', '--threads', '1'];
const S2 = ['--crt-epochs', '1', '--lws-epochs', '1', '--threads', '1'];
const D = MATMUL_IN;
const K = MATMUL_OUT;
const BYTES = MATMUL_BYTES;
const weight = matmulWeight;
const weightFile = matmulWeightFile;

function expectUserError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('longtail:')).length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\.ts:\d+/);
}

/**
 * The CLI started in `cwd`: from the model's own folder, onnxruntime found the weights even before
 * this change (bytes resolved against the working folder), which is how a changed weight file went
 * unnoticed; from elsewhere it could not load them at all.
 */
function runCli(args: string[], cwd = process.cwd()) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ONNX models with external data', () => {
  before(async () => {
    await initBackend('wasm');
  });
  const dir = tempDir();
  const embedded = join(dir, 'embedded.onnx');
  const extDir = join(dir, 'ext');
  mkdirSync(extDir);
  const ext = join(extDir, 'model.onnx');
  matmulModel(embedded);
  matmulModel(ext, { location: 'weights/w.bin', offset: '64', length: BYTES });
  mkdirSync(join(extDir, 'weights'));
  weightFile(join(extDir, 'weights', 'w.bin'), 64);

  it('loads with the file resolved in the model folder (not the working folder): the same features as embedded weights', () => {
    assert.notEqual(process.cwd(), extDir);
    const n = 5;
    const data = new Float32Array(n * D);
    for (let i = 0; i < data.length; i++) data[i] = ((i * 31) % 97) / 97;
    const feats = (path: string) => {
      const b = createOnnxBackbone({ path }, [28, 28, 1]);
      try {
        const x = tf.tensor4d(data, [n, 28, 28, 1]);
        const f = b.features(x, false);
        const v = Array.from(f.dataSync());
        f.dispose();
        x.dispose();
        return v;
      } finally {
        b.dispose();
      }
    };
    const a = feats(embedded);
    const b = feats(ext);
    assert.equal(b.length, n * K);
    assert.ok(a.some((v) => Math.abs(v) > 1e-3));
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${i}: ${a[i]} vs ${b[i]}`);
  });

  it('through the CLI (started in the model folder): train and predict; a changed external file is refused like a changed model', async () => {
    const run = join(dir, 'run');
    const t = runCli(['train', ...TINY, '--backbone', `onnx:${ext}`, '--out', run, '--json'], extDir);
    assert.equal(t.code, 0, t.stderr);
    const r = runCli(['retrain', '--run', run, '--method', 'ncm', ...S2, '--json'], extDir);
    assert.equal(r.code, 0, r.stderr);
    const w = join(extDir, 'weights', 'w.bin');
    const img = join(dir, 'img.png');
    await sharp(Buffer.alloc(784, 90), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(img);
    const p1 = runCli(['predict', img, '--run', run, '--method', 'ncm', '--json'], extDir);
    assert.equal(p1.code, 0, p1.stderr);
    // export --format onnx writes one self-contained model: the external weights read in.
    const exp = join(dir, 'exported');
    const e = runCli(['export', '--run', run, '--format', 'onnx', '--method', 'ncm', '--out', exp], dir);
    assert.equal(e.code, 0, e.stderr);
    const em = onnx.ModelProto.decode(readFileSync(join(exp, 'model.onnx')));
    const ew = em.graph!.initializer!.find((x) => x.name === 'W')!;
    assert.notEqual(ew.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL);
    assert.deepEqual(new Float32Array(new Uint8Array(ew.rawData!).buffer), weight());
    // The .onnx is untouched; only its external weight file changes (same size).
    const bytes = readFileSync(w);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(w, bytes);
    const p2 = runCli(['predict', img, '--run', run, '--method', 'ncm'], extDir);
    assert.notEqual(p2.code, 0, 'a changed external weight file must be refused');
    assert.equal(p2.code, 2, p2.stderr);
    assert.match(p2.stderr, /model\.onnx/);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(w, bytes);
    // Restored, it predicts again (from another working folder).
    const p3 = runCli(['predict', img, '--run', run, '--method', 'ncm', '--json'], dir);
    assert.equal(p3.code, 0, p3.stderr);
    assert.deepEqual(JSON.parse(p3.stdout).predictions, JSON.parse(p1.stdout).predictions);
  });

  it('export --format onnx past the size limit (lowered here to 1000 bytes): weights in model.onnx.data, loaded back by onnxruntime-node and by longtail', async (t) => {
    const run = join(dir, 'run'); // from the test above
    const out = join(dir, 'exported-external');
    const r = exportModel(run, 'ncm', out, 'onnx', { externalDataAbove: 1000 });
    assert.deepEqual(r.files, ['model.onnx', 'model.onnx.data', 'labels.json']);
    const model = join(out, 'model.onnx');
    const m = onnx.ModelProto.decode(readFileSync(model));
    const w = m.graph!.initializer!.find((x) => x.name === 'W')!;
    assert.equal(w.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL);
    const entry = Object.fromEntries(w.externalData!.map((e) => [e.key, e.value]));
    assert.equal(entry.location, 'model.onnx.data'); // relative: the folder can move
    assert.equal(entry.length, BYTES);
    const data = readFileSync(join(out, 'model.onnx.data'));
    const off = Number(entry.offset);
    assert.deepEqual(new Float32Array(new Uint8Array(data.subarray(off, off + D * K * 4)).buffer), weight());
    // longtail's own checks read it (paths confined to the folder, sizes).
    const info = readOnnxFile(model);
    assert.ok(info.external.some((e) => e.tensor === 'W'));
    // onnxruntime-node, from another working folder: the same outputs as the one-file export.
    const ort = await import('onnxruntime-node');
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: D }, (_, i) => (i % 17) / 17),
      [1, 28, 28, 1],
    );
    const run1 = async (path: string) => {
      const s = await ort.InferenceSession.create(path);
      try {
        return (await s.run({ images: x })).probabilities!.data as Float32Array;
      } finally {
        await s.release();
      }
    };
    const one = await run1(join(dir, 'exported', 'model.onnx'));
    const ext = await run1(model);
    t.diagnostic(
      `probabilities ${Array.from(ext)
        .map((v) => v.toFixed(4))
        .join(' ')}`,
    );
    assert.deepEqual(Array.from(ext), Array.from(one));
  });

  describe('refused in one line naming the model, the tensor and the file; exit 2; nothing written', () => {
    const cases: [string, (d: string) => Record<string, string>, RegExp][] = [
      [
        'a missing file',
        () => ({ location: 'nope.bin' }),
        /initializer W: external data file nope\.bin is missing/,
      ],
      [
        'a file too short',
        (d) => {
          weightFile(join(d, 'short.bin'), 0, 4);
          return { location: 'short.bin' };
        },
        /initializer W: external data short\.bin is too short \(25084 bytes; the tensor needs bytes 0 to 25088\)/,
      ],
      [
        'an offset past the end',
        (d) => {
          weightFile(join(d, 'w.bin'), 0);
          return { location: 'w.bin', offset: '8', length: BYTES };
        },
        /initializer W: external data w\.bin is too short/,
      ],
      [
        'a length that is not the tensor size',
        (d) => {
          weightFile(join(d, 'w.bin'), 0);
          return { location: 'w.bin', length: '100' };
        },
        /initializer W: external data w\.bin holds 100 bytes; its shape \[784, 8\] needs 25088/,
      ],
      [
        'a path leaving the folder (..)',
        (d) => {
          weightFile(join(d, '..', 'outside.bin'), 0);
          return { location: '../outside.bin' };
        },
        /initializer W: external data \.\.\/outside\.bin leaves the model's folder/,
      ],
      [
        'an absolute path',
        (d) => {
          weightFile(join(d, 'abs.bin'), 0);
          return { location: join(d, 'abs.bin') };
        },
        /initializer W: external data \/.*abs\.bin is an absolute path/,
      ],
      [
        'a symlink leading out of the folder',
        (d) => {
          weightFile(join(d, '..', 'target.bin'), 0);
          symlinkSync(join(d, '..', 'target.bin'), join(d, 'link.bin'));
          return { location: 'link.bin' };
        },
        /initializer W: external data link\.bin resolves to .*target\.bin, outside the model's folder/,
      ],
      [
        'a FIFO',
        (d) => {
          assert.equal(spawnSync('mkfifo', [join(d, 'pipe.bin')]).status, 0);
          return { location: 'pipe.bin' };
        },
        /initializer W: external data pipe\.bin is not a regular file/,
      ],
    ];
    // Each entry is checked where longtail reads the model (readOnnxFile, as train, retrain,
    // predict and export do); one case goes through the CLI for the exit code, the single line
    // and nothing written (the CLI's handling of these errors is the same for every case).
    const root = tempDir();
    for (const [k, [name, make, pattern]] of cases.entries()) {
      const viaCli = k === 0;
      it(viaCli ? `${name} (through the CLI: exit 2, one line, nothing written)` : name, () => {
        const d = join(root, `case${k}`, 'model');
        mkdirSync(d, { recursive: true });
        const entry = make(d);
        const model = join(d, 'bad.onnx');
        matmulModel(model, entry as { location: string });
        const expected = new RegExp(`bad\\.onnx: ${pattern.source}`);
        assert.throws(
          () => readOnnxFile(model),
          (e: Error) => e instanceof UserError && expected.test(e.message) && !e.message.includes('\n'),
        );
        if (!viaCli) return;
        const out = join(root, `out${k}`);
        const r = runCli(['train', ...TINY, '--backbone', `onnx:${model}`, '--out', out]);
        expectUserError(r, expected);
        assert.equal(existsSync(out), false, 'nothing written');
      });
    }
  });

  it('a model saved by torch.onnx with external data', (t) => {
    // torch 1.13 (here) writes external data only for models over 2 GB, and the Python `onnx`
    // package (onnx.save_model(save_as_external_data=True)) is not installed: skipped unless both work.
    const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip('torch with the onnx package is not available');
      return;
    }
    const tdir = join(dir, 'torch');
    mkdirSync(tdir);
    const py = `
import torch, onnx
m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 8, bias=False))
torch.onnx.export(m, torch.zeros(1, 1, 28, 28), ${JSON.stringify(join(tdir, 'tmp.onnx'))}, input_names=['x'], output_names=['y'], dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}})
mo = onnx.load(${JSON.stringify(join(tdir, 'tmp.onnx'))})
onnx.save_model(mo, ${JSON.stringify(join(tdir, 'model.onnx'))}, save_as_external_data=True, all_tensors_to_one_file=True, location='model.data', size_threshold=0)
`;
    const s = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
    assert.equal(s.status, 0, s.stderr);
    const b = createOnnxBackbone({ path: join(tdir, 'model.onnx') }, [28, 28, 1]);
    try {
      assert.equal(b.featureDim, K);
    } finally {
      b.dispose();
    }
  });
});
