/**
 * ONNX-backbone runs that survive a move (issue 26, item 4): backbone.json keeps the model's path
 * relative to the run and its SHA-256; a moved run (with its model) still predicts and exports, a
 * moved model is given with --backbone-file, a changed one is refused, old records still work.
 * The `longtail` calls run inside this process (runInProcess, test/helpers/cli.ts): a process start
 * costs about 1.2 s of CPU, and the command line's own process is tested elsewhere.
 */
import assert from 'node:assert/strict';
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { makeContract } from '../src/data/preprocess.ts';
import { runInProcess } from './helpers/cli.ts';
import { matmulModel } from './helpers/onnx-models.ts';
import { tempDir } from './helpers/tmp.ts';

const TINY = ['--max-per-class', '20', '--imbalance', '2', '--batch-size', '32', '--threads', '1'];
const S2 = ['--method', 'ncm', '--threads', '1'];

function expectUserError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, pattern);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('longtail:'));
  assert.equal(lines.length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\.ts:\d+/);
}

describe('ONNX-backbone runs that survive a move', () => {
  const dir = tempDir();
  const a = join(dir, 'a');
  const img = join(dir, 'img.png');
  let trainOutput = '';
  before(async () => {
    mkdirSync(join(a, 'models'), { recursive: true });
    matmulModel(join(a, 'models', 'm.onnx'));
    const t = await runInProcess([
      'train',
      ...TINY,
      '--backbone',
      `onnx:${join(a, 'models', 'm.onnx')}`,
      '--out',
      join(a, 'run'),
    ]);
    assert.equal(t.code, 0, t.stderr);
    trainOutput = t.stdout + t.stderr;
    const r = await runInProcess(['retrain', '--run', join(a, 'run'), ...S2]);
    assert.equal(r.code, 0, r.stderr);
    const px = Buffer.alloc(28 * 28);
    for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
    const { default: sharp } = await import('sharp');
    await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(img);
  });

  const predict = (run: string, ...extra: string[]) =>
    runInProcess(['predict', img, '--run', run, '--method', 'ncm', '--json', ...extra]);
  const top = (r: { stdout: string }) => JSON.parse(r.stdout).predictions[0].top;

  it('records the path relative to the run, the absolute one, the SHA-256 and the preprocessing contract', () => {
    const rec = JSON.parse(readFileSync(join(a, 'run', 'backbone.json'), 'utf8'));
    assert.deepEqual(
      rec.preprocessing,
      makeContract({ size: 28, colour: 'grey', mean: [0, 0, 0], std: [1, 1, 1], layout: 'nchw' }),
    );
    assert.equal(rec.relativeFile, '../models/m.onnx');
    assert.equal(rec.file, join(a, 'models', 'm.onnx'));
    assert.match(rec.sha256, /^[0-9a-f]{64}$/);
  });

  it('a moved run (with its model) predicts and exports; a moved model is given with --backbone-file', async () => {
    const expected = await predict(join(a, 'run'));
    assert.equal(expected.code, 0, expected.stderr);
    const b = join(dir, 'b');
    renameSync(a, b);
    try {
      const p = await predict(join(b, 'run'));
      assert.equal(p.code, 0, p.stderr);
      assert.deepEqual(top(p), top(expected));
      const e = await runInProcess([
        'export',
        '--run',
        join(b, 'run'),
        '--method',
        'ncm',
        '--format',
        'onnx',
        '--out',
        join(dir, 'exp1'),
      ]);
      assert.equal(e.code, 0, e.stderr);

      // The model alone moves: both places it was are named, and the flag.
      const moved = join(dir, 'elsewhere.onnx');
      renameSync(join(b, 'models', 'm.onnx'), moved);
      expectUserError(
        await predict(join(b, 'run')),
        new RegExp(
          `its backbone \\(sha256 [0-9a-f]{12}\\) is not where the run recorded it: looked for ${join(b, 'models', 'm.onnx')} \\(missing\\), ${join(a, 'models', 'm.onnx')} \\(missing\\); give its new place with --backbone-file PATH`,
        ),
      );
      const q = await predict(join(b, 'run'), '--backbone-file', moved);
      assert.equal(q.code, 0, q.stderr);
      assert.deepEqual(top(q), top(expected));
      const e2 = await runInProcess([
        'export',
        '--run',
        join(b, 'run'),
        '--method',
        'ncm',
        '--format',
        'onnx',
        '--out',
        join(dir, 'exp2'),
        '--backbone-file',
        moved,
      ]);
      assert.equal(e2.code, 0, e2.stderr);
      const r = await runInProcess([
        'retrain',
        '--run',
        join(b, 'run'),
        ...S2,
        '--out',
        join(dir, 're'),
        '--backbone-file',
        moved,
      ]);
      assert.equal(r.code, 0, r.stderr);
      expectUserError(
        await runInProcess(['retrain', '--run', join(b, 'run'), ...S2, '--out', join(dir, 're2')]),
        /--backbone-file PATH/,
      );

      // A changed model is refused, at the flag's place and at the recorded one.
      const changed = join(dir, 'changed.onnx');
      copyFileSync(moved, changed);
      appendFileSync(changed, Buffer.from([0]));
      expectUserError(
        await predict(join(b, 'run'), '--backbone-file', changed),
        /--backbone-file .*changed\.onnx: is not the run's backbone \(sha256 [0-9a-f]{12}, .* was made with [0-9a-f]{12}\)/,
      );
      expectUserError(
        await predict(join(b, 'run'), '--backbone-file', join(dir, 'nope.onnx')),
        /nope\.onnx: no such file/,
      );
      copyFileSync(changed, join(b, 'models', 'm.onnx'));
      expectUserError(await predict(join(b, 'run')), /models\/m\.onnx \(changed: sha256 [0-9a-f]{12}\)/);
      copyFileSync(moved, join(b, 'models', 'm.onnx'));

      // A copied run folder (model left behind) finds it at the recorded absolute path, by hash.
      const c = join(dir, 'c');
      mkdirSync(c);
      cpSync(join(b, 'run'), join(c, 'run'), { recursive: true });
      const rec = JSON.parse(readFileSync(join(c, 'run', 'backbone.json'), 'utf8'));
      writeFileSync(
        join(c, 'run', 'backbone.json'),
        JSON.stringify({ ...rec, file: join(b, 'models', 'm.onnx') }),
      );
      const cp = await predict(join(c, 'run'));
      assert.equal(cp.code, 0, cp.stderr);

      // An old record (absolute path only, no preprocessing contract) still works.
      const {
        relativeFile: _,
        preprocessing: __,
        ...old
      } = JSON.parse(readFileSync(join(b, 'run', 'backbone.json'), 'utf8'));
      writeFileSync(join(b, 'run', 'backbone.json'), JSON.stringify({ ...old, file: moved }));
      const o = await predict(join(b, 'run'));
      assert.equal(o.code, 0, o.stderr);
      assert.deepEqual(top(o), top(expected));
    } finally {
      renameSync(b, a);
    }
  });

  it('backbone.json records the preprocessing contract; predict and export refuse an unknown or edited one', async () => {
    const path = join(a, 'run', 'backbone.json');
    const original = readFileSync(path, 'utf8');
    const rec = JSON.parse(original);
    // Written by the run of the first test (this one's copy may be an old record by now).
    assert.ok(rec.preprocessing === undefined || rec.preprocessing.version === 1);
    const contract = makeContract({
      size: 28,
      colour: 'grey',
      mean: [0, 0, 0],
      std: [1, 1, 1],
      layout: 'nchw',
    });
    const edit = (preprocessing: unknown) => writeFileSync(path, JSON.stringify({ ...rec, preprocessing }));
    try {
      edit(contract);
      const ok = await predict(join(a, 'run'));
      assert.equal(ok.code, 0, ok.stderr);
      edit({ ...contract, gamma: 2.2 });
      expectUserError(
        await predict(join(a, 'run')),
        /backbone\.json: preprocessing has unknown field gamma \(version 1 has /,
      );
      expectUserError(
        await runInProcess([
          'export',
          '--run',
          join(a, 'run'),
          '--method',
          'ncm',
          '--format',
          'onnx',
          '--out',
          join(dir, 'exp3'),
        ]),
        /preprocessing has unknown field gamma/,
      );
      edit({ ...contract, version: 2 });
      expectUserError(
        await predict(join(a, 'run')),
        /backbone\.json: preprocessing version must be 1, got 2/,
      );
      edit({ ...contract, mean: [0.5, 0.5, 0.5] });
      expectUserError(
        await predict(join(a, 'run')),
        /backbone\.json: preprocessing mean is \[0\.5,0\.5,0\.5\], but the run's images and backbone have \[0\]/,
      );
      edit({ ...contract, size: 32 });
      expectUserError(
        await predict(join(a, 'run')),
        /preprocessing size is 32, but the run's images and backbone have 28/,
      );
    } finally {
      writeFileSync(path, original);
    }
  });

  it('an ONNX-backbone run prints no best epoch and records no stage-1 training settings', () => {
    assert.doesNotMatch(trainOutput, /best epoch/);
    assert.match(trainOutput, /features saved|joint classifier/);
    const cfg = JSON.parse(readFileSync(join(a, 'run', 'config.json'), 'utf8'));
    for (const k of ['epochs', 'warmupEpochs', 'sampler', 'loss']) assert.equal(k in cfg, false, k);
    // What retrain --run starts cRT and LWS from stays.
    for (const k of ['lr', 'weightDecay', 'seed', 'batchSize']) assert.equal(k in cfg, true, k);
  });
});
