import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadMnistLt } from '../src/data/fashion-mnist.ts';
import { loadFolded } from '../src/deploy/folded.ts';
import { readPriorFile } from '../src/deploy/prior.ts';
import { labelPrior, tvDistance } from '../src/eval/label-shift.ts';
import { shiftedTestIndices } from '../src/eval/shifted-priors.ts';
import type { RunResults } from '../src/report/results.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';
import { FIXTURE_DATA, trainedRun } from './helpers/trained-run.ts';

/**
 * Largest total-variation distance of the estimated prior to the folder's true one. Measured on the
 * shared run (cRT about 65 % top-1): EM 0.21, BBSE 0.15; assuming no shift is 0.43 away.
 */
const TV_TOLERANCE = { em: 0.3, bbse: 0.3 } as const;

describe('deployment under an unknown class prior', () => {
  let out = '';
  const data = loadMnistLt('fashion-mnist-lt', FIXTURE_DATA);
  const folder = join(tempDir(), 'backward50');
  const labelOf = new Map<string, number>();
  before(async () => {
    out = (await trainedRun()).dir;
    // The test set re-sampled to a backward long tail (ratio 50): the training tail is the test head.
    const labels = data.test.labels;
    const idx = shiftedTestIndices(labels, data.trainCounts, { ratio: 50, direction: 'backward' }, 3).filter(
      (_, k) => k % 4 === 0, // about 700 images is plenty
    );
    mkdirSync(folder, { recursive: true });
    for (const i of idx) {
      const f = join(folder, `img-${i}.png`);
      await sharp(Buffer.from(data.test.pixels.subarray(i * 784, (i + 1) * 784)), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .png()
        .toFile(f);
      labelOf.set(f, labels[i]!);
    }
  });

  it('records each method calibration in results.json and folds T into the deployed head', () => {
    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
    for (const m of r.methods) {
      const c = m.calibration!;
      assert.equal(c.method, 'bcts');
      assert.ok(c.valNllAfter! <= c.valNllBefore!, m.method);
      const f = loadFolded(out, m.method);
      assert.equal(f.calibration.temperature, c.temperature);
      assert.ok(f.calibration.valConfusion !== null);
      assert.ok(m.shifted.every((s) => typeof s.em === 'number' && typeof s.bbse === 'number'));
    }
    assert.match(
      readFileSync(join(out, 'results.md'), 'utf8'),
      /\| method \| prior \| none \| EM \| BBSE \| known \|/,
    );
  });

  it('predict --adapt-prior on a backward-50 folder: the prior within a stated TV of the truth, written to --out as printed', () => {
    const outDir = tempDir();
    const truth = labelPrior([...labelOf.values()], 10);
    const noShift = loadFolded(out, 'crt').calibration.sourcePrior;
    const seen: { how: 'em' | 'bbse'; tv: number }[] = [];
    for (const how of ['bbse', 'em'] as const) {
      const file = join(outDir, how === 'em' ? 'em.json' : 'bbse.csv');
      const r = runCli([
        'predict',
        '--run',
        out,
        '--method',
        'crt',
        '--adapt-prior',
        how,
        '--top-k',
        '1',
        '--json',
        '--out',
        file,
        folder,
      ]);
      assert.equal(r.code, 0, r.stderr);
      // --out holds what --json printed: the JSON file with the prior, the CSV one row per image.
      const written = readFileSync(file, 'utf8');
      if (how === 'em') {
        const doc = JSON.parse(written);
        const printed = JSON.parse(r.stdout);
        assert.equal(doc.adaptPrior, 'em');
        assert.deepEqual(doc.prior, printed.prior);
        assert.deepEqual(doc.predictions, printed.predictions);
      } else {
        const lines = written.trim().split('\r\n');
        assert.equal(lines[0], 'file,top1_name,top1_probability,unadjusted');
        assert.equal(lines.length, labelOf.size + 1);
      }
      const doc = JSON.parse(r.stdout) as {
        prior: { name: string; probability: number }[];
        predictions: { file: string; top: { index: number }[]; unadjusted: string }[];
      };
      const est = doc.prior.map((p) => p.probability);
      assert.equal(est.length, 10);
      assert.ok(Math.abs(est.reduce((x, y) => x + y, 0) - 1) < 1e-9 && est.every((v) => v >= 0));
      assert.equal(doc.predictions.length, labelOf.size);
      // Close to the folder's class mix, and top-1 better than the unadjusted predictions'.
      const tv = tvDistance(est, truth);
      const names = doc.prior.map((p) => p.name);
      let adjusted = 0;
      let plain = 0;
      for (const p of doc.predictions) {
        const y = labelOf.get(p.file)!;
        if (p.top[0]!.index === y) adjusted++;
        if (names.indexOf(p.unadjusted) === y) plain++;
      }
      const n = doc.predictions.length;
      process.stdout.write(
        `# ${how}: TV ${tv.toFixed(3)} (no shift: ${tvDistance(noShift, truth).toFixed(3)}), top-1 ${((100 * adjusted) / n).toFixed(1)} % adjusted, ${((100 * plain) / n).toFixed(1)} % unadjusted, ${n} images\n`,
      );
      seen.push({ how, tv });
    }
    // Asserted after both ran, so a failure shows both estimators' figures. Top-1 is printed, not
    // asserted: the deployed head carries BCTS biases fitted on the balanced validation split, so
    // its unadjusted predictions are already balanced, and at this run's accuracy the adjustment
    // moved top-1 by under a point either way (BBSE +0.4, EM -0.3 to -0.7).
    for (const { how, tv } of seen) assert.ok(tv < TV_TOLERANCE[how], `${how}: TV ${tv}`);
  });

  it('refuses bad priors and too few images, one line naming the file or flag, exit 2, nothing written', () => {
    const dir = tempDir();
    const classes = JSON.parse(JSON.stringify(loadFolded(out, 'crt').record.classNames)) as string[];
    const cases: [string, unknown, RegExp][] = [
      [
        'neg.json',
        [-0.1, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
        /neg\.json: prior of class "T-shirt\/top" is negative/,
      ],
      [
        'sum.json',
        new Array(10).fill(0.25),
        /sum\.json: the prior sums to 2\.5, not 1 \(pass --normalize-prior/,
      ],
      ['short.json', [0.5, 0.5], /short\.json: 2 prior entries, the model has 10 classes/],
      [
        'names.json',
        Object.fromEntries(classes.map((c, i) => [i === 3 ? 'Cat' : c, 0.1])),
        /names\.json: class "Cat" is not one of the model's classes/,
      ],
    ];
    for (const [name, body, re] of cases) {
      const f = join(dir, name);
      writeFileSync(f, JSON.stringify(body));
      const target = join(dir, `out-${name}`);
      const r = runCli(['export', '--run', out, '--method', 'crt', '--out', target, '--target-prior', f]);
      assert.equal(r.code, 2, name);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!existsSync(join(target, 'model.json')), `${name}: nothing written`);
    }
    // --normalize-prior accepts the one that sums to 2.
    assert.deepEqual(
      readPriorFile(join(dir, 'sum.json'), classes, { normalize: true }),
      new Array(10).fill(0.1),
    );
    const few = runCli(['predict', '--run', out, '--adapt-prior', 'em', [...labelOf.keys()][0]!]);
    assert.equal(few.code, 2);
    assert.match(
      few.stderr,
      /--adapt-prior needs at least as many images as classes: 1 readable images for 10 classes/,
    );
  });

  it('export --target-prior records the prior in the model metadata and shifts the bias by log q - log p', () => {
    const dir = join(tempDir(), 'm');
    const r = runCli(['export', '--run', out, '--method', 'crt', '--out', dir, '--target-prior', 'train']);
    assert.equal(r.code, 0, r.stderr);
    const meta = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).userDefinedMetadata;
    assert.equal(meta.targetPrior, 'train');
    assert.equal(meta.temperature, loadFolded(out, 'crt').calibration.temperature);
    const counts = JSON.parse(readFileSync(join(out, 'classifiers.json'), 'utf8')).trainCounts as number[];
    const n = counts.reduce((a, b) => a + b, 0);
    for (const [c, q] of (meta.prior as number[]).entries()) assert.ok(Math.abs(q - counts[c]! / n) < 1e-12);
  });
});
