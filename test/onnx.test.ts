/**
 * ONNX backbones and the ONNX export, end to end from the command line: a trained ResNet-8
 * exported as one ONNX model, loaded back as an `onnx:` backbone (same features, same NCM and
 * tau-norm results), the exported model run by onnxruntime-node (same predictions as `predict`),
 * and each bad input refused in one line with exit 2, leaving an existing run untouched.
 * The `longtail` calls run inside this process (runInProcess, test/helpers/cli.ts), but the one that
 * reads an environment variable at start; the command line's own process is tested elsewhere.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { decodeImage } from '../src/data/decode-images.ts';
import { loadModel } from '../src/deploy/predict.ts';
import { readNpz } from '../src/io/npy.ts';
import { onnx } from '../src/models/onnx-file.ts';
import { runCli, runInProcess } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const TINY = ['--max-per-class', '30', '--imbalance', '3', '--batch-size', '32', '--threads', '1'];
const S2 = ['--crt-epochs', '1', '--lws-epochs', '1', '--threads', '1'];

function expectUserError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, pattern);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('longtail:'));
  assert.equal(lines.length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\.ts:\d+/);
}

/** Every file of a folder (recursively) with its bytes, to show nothing changed. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(p, readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

/** A small ONNX model written with the same library the export uses. */
function tinyModel(
  path: string,
  inputs: { name: string; dims: (number | string)[] }[],
  nodes: { op: string; inputs: string[]; output: string; attrs?: Record<string, number> }[],
  outputs: string[],
  inits: { name: string; data: number[]; int64?: boolean }[] = [],
): void {
  const vi = (name: string, dims: (number | string)[]) => ({
    name,
    type: {
      tensorType: {
        elemType: 1,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
  const m = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny',
      input: inputs.map((i) => vi(i.name, i.dims)),
      output: outputs.map((o) => ({ name: o })),
      node: nodes.map((n) => ({
        opType: n.op,
        input: n.inputs,
        output: [n.output],
        attribute: Object.entries(n.attrs ?? {}).map(([name, i]) => ({ name, type: 2, i })),
      })),
      initializer: inits.map((t) =>
        t.int64
          ? { name: t.name, dims: [t.data.length], dataType: 7, int64Data: t.data }
          : { name: t.name, dims: [t.data.length], dataType: 1, floatData: t.data },
      ),
    },
  });
  writeFileSync(path, onnx.ModelProto.encode(m).finish());
}

describe('ONNX backbones and the ONNX export', () => {
  const dir = tempDir();
  const r8 = join(dir, 'r8');
  const exp = join(dir, 'exported');
  const ox = join(dir, 'ox');
  before(async () => {
    const t = await runInProcess(['train', ...TINY, '--epochs', '1', '--out', r8, '--json']);
    assert.equal(t.code, 0, t.stderr);
    const r = await runInProcess(['retrain', '--run', r8, '--method', 'joint,ncm,tau-norm', ...S2, '--json']);
    assert.equal(r.code, 0, r.stderr);
    // Joint: its folded layer is the stage-1 classifier itself, which the onnx: run then reads back.
    const e = await runInProcess([
      'export',
      '--run',
      r8,
      '--format',
      'onnx',
      '--method',
      'joint',
      '--out',
      exp,
    ]);
    assert.equal(e.code, 0, e.stderr);
  });

  it('round trip: the exported ResNet-8 as an onnx: backbone gives the same features, NCM and tau-norm results', async () => {
    const model = join(exp, 'model.onnx');
    const t = await runInProcess([
      'train',
      ...TINY,
      '--backbone',
      `onnx:${model}`,
      '--onnx-output',
      'features',
      '--onnx-fc-weight',
      'classifier.weight',
      '--onnx-fc-bias',
      'classifier.bias',
      '--out',
      ox,
      '--json',
    ]);
    assert.equal(t.code, 0, t.stderr);
    const backbone = JSON.parse(readFileSync(join(ox, 'backbone.json'), 'utf8'));
    assert.equal(backbone.file, model);
    assert.equal(backbone.relativeFile, '../exported/model.onnx');
    assert.match(backbone.sha256, /^[0-9a-f]{64}$/);
    // Features on the test images (the first 256, and all of them) within 1e-4 relative.
    const a = readNpz(join(r8, 'features.npz'));
    const b = readNpz(join(ox, 'features.npz'));
    for (const split of ['train', 'val', 'test']) {
      const x = a.get(`${split}_features`)!.data as Float32Array;
      const y = b.get(`${split}_features`)!.data as Float32Array;
      assert.equal(x.length, y.length);
      let err = 0;
      let scale = 0;
      for (let i = 0; i < x.length; i++) {
        err = Math.max(err, Math.abs(x[i]! - y[i]!));
        scale = Math.max(scale, Math.abs(x[i]!));
      }
      assert.ok(err <= 1e-4 * scale, `${split}: max difference ${err} (scale ${scale})`);
      if (split === 'test') assert.ok(x.length >= 256 * 64);
    }
    const r = await runInProcess(['retrain', '--run', ox, '--method', 'ncm,tau-norm', ...S2, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const mine = JSON.parse(readFileSync(join(r8, 'stage2', 'results.json'), 'utf8'));
    const theirs = JSON.parse(readFileSync(join(ox, 'stage2', 'results.json'), 'utf8'));
    for (const method of ['ncm', 'tau-norm']) {
      const pick = (res: { methods: { method: string }[] }) => res.methods.find((m) => m.method === method);
      const m1 = pick(mine) as Record<string, unknown>;
      const m2 = pick(theirs) as Record<string, unknown>;
      for (const k of ['overall', 'many', 'medium', 'few', 'tau', 'perClass', 'confusion'])
        assert.deepEqual(m2[k], m1[k], `${method}.${k}`);
    }
  });

  it('the exported model run by onnxruntime-node predicts as `predict` on the tfjs run', async () => {
    const imgs: string[] = [];
    for (let k = 0; k < 6; k++) {
      const px = Buffer.alloc(28 * 28);
      for (let i = 0; i < px.length; i++) px[i] = (i * (k + 3) * 37) % 251;
      const p = join(dir, `img${k}.png`);
      await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(p);
      imgs.push(p);
    }
    const pr = await runInProcess([
      'predict',
      ...imgs,
      '--run',
      r8,
      '--method',
      'joint',
      '--top-k',
      '10',
      '--json',
    ]);
    assert.equal(pr.code, 0, pr.stderr);
    const predicted = JSON.parse(pr.stdout).predictions as {
      top: { index: number; probability: number }[];
    }[];
    const x = new Float32Array(imgs.length * 28 * 28);
    for (const [i, p] of imgs.entries()) {
      const px = await decodeImage(p, 28, 1);
      for (let j = 0; j < 28 * 28; j++) x[i * 784 + j] = px[j]! / 255;
    }
    const session = await ort.InferenceSession.create(join(exp, 'model.onnx'));
    assert.deepEqual([...session.inputNames], ['images']);
    const out = await session.run({ images: new ort.Tensor('float32', x, [imgs.length, 28, 28, 1]) });
    const probs = out.probabilities!.data as Float32Array;
    for (let i = 0; i < imgs.length; i++) {
      const row = Array.from(probs.subarray(i * 10, (i + 1) * 10));
      const top = row.indexOf(Math.max(...row));
      assert.equal(top, predicted[i]!.top[0]!.index, `image ${i}`);
      for (const t of predicted[i]!.top) assert.ok(Math.abs(row[t.index]! - t.probability) < 1e-4);
    }
    const meta = onnx.ModelProto.decode(readFileSync(join(exp, 'model.onnx'))).metadataProps;
    assert.equal(JSON.parse(meta.find((p) => p.key === 'class_names')!.value ?? '[]').length, 10);
    await session.release();
  });

  it('an ONNX-backbone run exports one ONNX model and predicts', async () => {
    const out = join(dir, 'ox-export');
    const e = await runInProcess([
      'export',
      '--run',
      ox,
      '--format',
      'onnx',
      '--method',
      'ncm',
      '--out',
      out,
    ]);
    assert.equal(e.code, 0, e.stderr);
    const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
    const r = await session.run({
      images: new ort.Tensor('float32', new Float32Array(2 * 784).fill(0.5), [2, 28, 28, 1]),
    });
    assert.deepEqual([...r.probabilities!.dims], [2, 10]);
    // NCM's distance head in the graph gives the folded head's calibrated scores.
    const m = loadModel(ox, { method: 'ncm' });
    const mine = m.logits(new Float32Array(2 * 784).fill(0.5), 2);
    m.dispose();
    assert.ok(m.folded.distance, 'an NCM distance head');
    const theirs = r.logits!.data as Float32Array;
    for (let i = 0; i < mine.length; i++)
      assert.ok(
        Math.abs(theirs[i]! - mine[i]!) < 1e-4 * (1 + Math.abs(mine[i]!)),
        `logit ${i}: ${theirs[i]} vs ${mine[i]}`,
      );
    await session.release();
    // The model's own tensors named like ours (it is itself an export) were renamed, not duplicated.
    const names = onnx.ModelProto.decode(readFileSync(join(out, 'model.onnx'))).graph!.initializer!.map(
      (t) => t.name,
    );
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.includes('orig_classifier.weight') && names.includes('classifier.weight'));
    const p = join(dir, 'img0.png');
    const pr = await runInProcess(['predict', p, '--run', ox, '--method', 'ncm', '--json']);
    assert.equal(pr.code, 0, pr.stderr);
    expectUserError(
      await runInProcess(['export', '--run', ox, '--method', 'ncm', '--out', join(dir, 'tfjs')]),
      /--format onnx/,
    );
  });

  it('bad ONNX inputs: one line naming the file or option, exit 2, the existing run unchanged', async () => {
    const before = snapshot(r8);
    const model = join(exp, 'model.onnx');
    // In this process (test/helpers/cli.ts): a refusal needs no Node start of its own.
    const train = (backbone: string, ...extra: string[]) =>
      runInProcess(['train', ...TINY, '--backbone', `onnx:${backbone}`, ...extra, '--out', r8, '--force']);
    const text = join(dir, 'not.onnx');
    writeFileSync(text, 'this is not a model\n');
    expectUserError(await train(text), /not\.onnx: not an ONNX model/);
    const two = join(dir, 'two.onnx');
    tinyModel(
      two,
      [
        { name: 'a', dims: ['n', 1, 28, 28] },
        { name: 'b', dims: ['n', 1, 28, 28] },
      ],
      [{ op: 'Add', inputs: ['a', 'b'], output: 'y' }],
      ['y'],
    );
    expectUserError(await train(two), /two\.onnx: the model has 2 inputs \(a, b\)/);
    expectUserError(
      await train(model, '--onnx-input-size', '32'),
      /--onnx-input-size 32: .*model\.onnx takes 28x28/,
    );
    expectUserError(
      await train(model, '--onnx-output', 'nope'),
      /--onnx-output nope: .*model\.onnx has no tensor of that name/,
    );
    const threeD = join(dir, 'three-d.onnx');
    tinyModel(
      threeD,
      [{ name: 'x', dims: ['n', 1, 28, 28] }],
      [{ op: 'Squeeze', inputs: ['x', 'axes'], output: 'y' }],
      ['y'],
      [{ name: 'axes', data: [1], int64: true }],
    );
    expectUserError(await train(threeD), /three-d\.onnx: output y is 3-D/);
    const nan = join(dir, 'nan.onnx');
    tinyModel(
      nan,
      [{ name: 'x', dims: ['n', 1, 28, 28] }],
      [
        { op: 'Sub', inputs: ['x', 'two'], output: 'z' },
        { op: 'Log', inputs: ['z'], output: 'y' },
      ],
      ['y'],
      [{ name: 'two', data: [2] }],
    );
    expectUserError(await train(nan), /nan\.onnx: output y has NaN/);
    expectUserError(
      await train(model, '--onnx-fc-weight', 'nope', '--onnx-fc-bias', 'classifier.bias'),
      /--onnx-fc-weight nope: .*has no initializer/,
    );
    // onnxruntime-node absent (simulated by naming a module that does not exist).
    expectUserError(
      runCli(['train', ...TINY, '--backbone', `onnx:${model}`, '--out', r8, '--force'], {
        LONGTAIL_ONNXRUNTIME: 'onnxruntime-node-not-installed',
      }),
      /onnxruntime-node, which is not installed .*npm install onnxruntime-node/,
    );
    assert.deepEqual(snapshot(r8), before);
    // The .onnx an ONNX-backbone run was made with changes: its heads are refused, not misused.
    appendFileSync(model, Buffer.from([0]));
    expectUserError(
      await runInProcess(['predict', join(dir, 'img0.png'), '--run', ox, '--method', 'ncm']),
      /not where the run recorded it: looked for .*model\.onnx \(changed: sha256 [0-9a-f]+\); give its new place with --backbone-file PATH/,
    );
  });
});
