import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tfAll from '@tensorflow/tfjs';
import sharp from 'sharp';
import { loadMnistLt } from '../src/data/fashion-mnist.ts';
import { exportModel } from '../src/deploy/export.ts';
import { loadModel } from '../src/deploy/predict.ts';
import { makeBatch } from '../src/train/augment.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';
import { FIXTURE_DATA, trainedRun } from './helpers/trained-run.ts';

describe('predict and export on a trained run', () => {
  let out = '';
  const data = loadMnistLt('fashion-mnist-lt', FIXTURE_DATA);
  const idx = Array.from({ length: 24 }, (_, i) => i * 401); // test images across classes
  before(async () => {
    out = (await trainedRun()).dir;
  });

  it('exports a graph model that plain tfjs loads and that predicts the same classes as predict', async () => {
    const x = makeBatch(data.test, idx, 'none', null);
    for (const method of ['crt', 'ncm', 'tau-norm']) {
      const dir = join(tempDir(), 'model');
      exportModel(out, method, dir);
      const m = loadModel(out, { method });
      const mine = m.predict(x, idx.length, 1).map((p) => p.top[0]!.index);
      const logits = m.logits(x, idx.length);
      m.dispose();
      const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
      const w = readFileSync(join(dir, 'weights.bin'));
      const g = await tfAll.loadGraphModel(
        tfAll.io.fromMemory({
          ...json,
          weightSpecs: json.weightsManifest[0].weights,
          weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength),
        }),
      );
      const probs = g.predict(tfAll.tensor4d(x, [idx.length, 28, 28, 1])) as tfAll.Tensor;
      const theirs = Array.from((await tfAll.argMax(probs, 1).data()) as Int32Array);
      assert.deepEqual(theirs, mine, method);
      // The probabilities too (NCM's distance head is not a plain dense layer).
      const p = (await probs.data()) as Float32Array;
      const want = await tfAll.softmax(tfAll.tensor2d(logits, [idx.length, 10])).data();
      for (let i = 0; i < p.length; i++)
        assert.ok(Math.abs(p[i]! - want[i]!) < 1e-5, `${method} probability ${i}: ${p[i]} vs ${want[i]}`);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8'))[9], 'Ankle boot');
    }
  });

  it('predict on PNG files written from test images returns the in-process class, from the CLI too', async () => {
    const dir = join(tempDir(), 'imgs');
    mkdirSync(dir);
    const files: string[] = [];
    for (const i of idx.slice(0, 6)) {
      const f = join(dir, `test-${i}.png`);
      await sharp(Buffer.from(data.test.pixels.subarray(i * 784, (i + 1) * 784)), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .png()
        .toFile(f);
      files.push(f);
    }
    const m = loadModel(out, { method: 'crt' });
    const predictions = await m.predictFiles(files, 3);
    assert.deepEqual(
      predictions.map((p) => p.file),
      files,
    ); // each result names its file
    const fromFiles = predictions.map((p) => p.top[0]!.index);
    const inProcess = m
      .predict(makeBatch(data.test, idx.slice(0, 6), 'none', null), 6, 3)
      .map((p) => p.top[0]!.index);
    m.dispose();
    assert.deepEqual(fromFiles, inProcess);
    const r = runCli(['predict', '--run', out, '--method', 'crt', '--top-k', '3', '--json', dir]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    // The folder is read in name order; compare file by file.
    const byFile = new Map<string, number>(
      j.predictions.map((p: { file: string; top: { index: number }[] }) => [p.file, p.top[0]!.index]),
    );
    assert.deepEqual(
      files.map((f) => byFile.get(f)),
      inProcess,
    );
    assert.equal(j.predictions[0].top.length, 3);
  });

  it('predict --out writes CSV or JSON (file, top-k names, probabilities) and refuses a bad --out first', () => {
    const dir = tempDir();
    const img = join(dir, 'a, "quoted" name.png');
    writeFileSync(img, readFileSync(join(out, 'charts', 'class-counts.png')));
    const j = runCli(['predict', '--run', out, '--top-k', '2', '--json', img]);
    assert.equal(j.code, 0, j.stderr);
    const want = JSON.parse(j.stdout).predictions as {
      file: string;
      top: { name: string; probability: number }[];
    }[];
    const json = join(dir, 'p.json');
    const csv = join(dir, 'p.csv');
    for (const f of [json, csv]) {
      const r = runCli(['predict', '--run', out, '--top-k', '2', '--out', f, img]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /predictions written to/);
    }
    assert.deepEqual(JSON.parse(readFileSync(json, 'utf8')).predictions, want);
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        'import csv,json,sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline="")))))',
        csv,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(py.status, 0, py.stderr);
    const [row] = JSON.parse(py.stdout) as Record<string, string>[];
    assert.equal(row!.file, img);
    assert.equal(row!.top1_name, want[0]!.top[0]!.name);
    assert.equal(Number(row!.top2_probability), want[0]!.top[1]!.probability);
    const before = readFileSync(csv, 'utf8');
    const exists = runCli(['predict', '--run', out, '--out', csv, img]);
    assert.equal(exists.code, 2);
    assert.match(exists.stderr, /--out .*p\.csv: the file exists; --force replaces it/);
    assert.equal(readFileSync(csv, 'utf8'), before);
    const ext = runCli(['predict', '--run', out, '--out', join(dir, 'p.txt'), img]);
    assert.equal(ext.code, 2);
    assert.match(ext.stderr, /--out .*p\.txt: expected a file name ending in \.csv or \.json/);
    assert.equal(runCli(['predict', '--run', out, '--out', csv, '--force', img]).code, 0);
  });

  it('reports every bad file, predicts the good ones, and exits non-zero', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'notes.txt.png'), 'not an image at all');
    const good = join(dir, 'good.png');
    writeFileSync(good, readFileSync(join(out, 'charts', 'class-counts.png')));
    const r = runCli([
      'predict',
      '--run',
      out,
      '--json',
      good,
      join(dir, 'notes.txt.png'),
      join(dir, 'missing.png'),
    ]);
    assert.equal(r.code, 2);
    const j = JSON.parse(r.stdout);
    assert.equal(j.predictions.length, 1);
    assert.equal(j.errors.length, 2);
    assert.match(j.errors.join('\n'), /notes.txt.png: not a readable image/);
    assert.match(j.errors.join('\n'), /missing.png: no such file/);
    const empty = tempDir();
    const e = runCli(['predict', '--run', out, empty]);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /folder holds no images/);
    const bad = runCli(['predict', '--run', out, '--method', 'svm', good]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /has no 'svm' classifier; this run has: joint, ncm, crt, tau-norm, lws/);
    const noRun = runCli(['export', '--run', empty, '--out', join(empty, 'x')]);
    assert.equal(noRun.code, 2);
    assert.match(noRun.stderr, /no stage-2 classifiers here/);
  });
});
