import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gaussianProblem, tail } from '../../test/helpers/gaussian-logits.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { arrayBlocks, fitBcts } from '../eval/calibration.ts';
import {
  adjustedPredictions,
  bbsePriorFromCounts,
  emPrior,
  labelPrior,
  softmaxRows,
  tvDistance,
  validationConfusion,
} from '../eval/label-shift.ts';
import { createRng } from '../random/rng.ts';
import { adaptedFromLogits, adaptPrior, foldPrior, readPriorFile, resolveTargetPrior } from './prior.ts';

const NAMES = ['a', 'b', 'c'];

describe('target priors for a deployed head', () => {
  const dir = tempDir();
  const file = (name: string, body: unknown) => {
    const f = join(dir, name);
    writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
    return f;
  };

  it('reads an array in label order or an object by class name', () => {
    assert.deepEqual(readPriorFile(file('a.json', [0.5, 0.25, 0.25]), NAMES), [0.5, 0.25, 0.25]);
    assert.deepEqual(readPriorFile(file('o.json', { c: 0.25, a: 0.5, b: 0.25 }), NAMES), [0.5, 0.25, 0.25]);
    assert.deepEqual(readPriorFile(file('s.json', [2, 1, 1]), NAMES, { normalize: true }), [0.5, 0.25, 0.25]);
    assert.deepEqual(resolveTargetPrior('uniform', NAMES, undefined), [1 / 3, 1 / 3, 1 / 3]);
    assert.deepEqual(resolveTargetPrior('train', NAMES, [6, 3, 1]), [0.6, 0.3, 0.1]);
  });

  it('refuses bad files naming the file and what is wrong', () => {
    const bad: [string, unknown, RegExp][] = [
      ['neg.json', [0.5, -0.1, 0.6], /neg\.json: prior of class "b" is negative \(-0\.1\)/],
      ['sum.json', [0.5, 0.5, 0.5], /sum\.json: the prior sums to 1\.5, not 1 \(pass --normalize-prior/],
      ['len.json', [0.5, 0.5], /len\.json: 2 prior entries, the model has 3 classes/],
      ['name.json', { a: 0.5, b: 0.25, d: 0.25 }, /name\.json: class "d" is not one of the model's classes/],
      ['miss.json', { a: 0.5, b: 0.5 }, /miss\.json: no prior for class "c"/],
      ['nan.json', [0.5, 'x', 0.5], /nan\.json: prior of class "b" is not a number/],
      ['json.json', '{', /json\.json: not a readable JSON prior/],
    ];
    for (const [name, body, re] of bad) assert.throws(() => readPriorFile(file(name, body), NAMES), re, name);
    assert.throws(
      () => resolveTargetPrior('train', NAMES, undefined),
      /--target-prior train: this run does not record/,
    );
  });

  it('folds log q - log p into the bias: the folded argmax is the adjusted prediction', () => {
    const rng = createRng(4);
    const layer = {
      weight: Float32Array.from({ length: 3 * 2 }, () => rng.normal()),
      bias: Float32Array.from({ length: 3 }, () => rng.normal()),
      transform: { kind: 'none' as const },
    };
    const q = [0.7, 0.2, 0.1];
    const p = [0.3, 0.3, 0.4];
    const f = foldPrior(layer, q, p);
    for (let c = 0; c < 3; c++)
      assert.ok(Math.abs(f.bias[c]! - (layer.bias[c]! + Math.log(q[c]!) - Math.log(p[c]!))) < 1e-6);
  });

  it('adaptPrior equals the library estimators and refuses fewer images than classes or BBSE without counts', () => {
    const rng = createRng(9);
    const n = 50;
    const logits = Float32Array.from({ length: n * 3 }, () => 2 * rng.normal());
    const source = [0.3, 0.3, 0.4];
    const counts = Float32Array.from([8, 1, 1, 2, 7, 1, 0, 2, 8]);
    const cal = { temperature: 1, bias: null, sourcePrior: source, valConfusion: counts };
    const em = adaptPrior(logits, n, 3, cal, 'em');
    assert.deepEqual(em.prior, emPrior(softmaxRows(logits, n, 3), n, 3, source).prior);
    assert.deepEqual(em.pred, adjustedPredictions(logits, n, 3, 1, em.prior, source));
    const bb = adaptPrior(logits, n, 3, cal, 'bbse');
    assert.deepEqual(bb.prior, bbsePriorFromCounts(counts, bb.plainPred, 3).prior);
    assert.throws(
      () => adaptPrior(logits, 2, 3, cal, 'em'),
      /at least as many images as classes: 2 images for 3 classes/,
    );
    assert.throws(
      () => adaptPrior(logits, n, 3, { ...cal, valConfusion: null }, 'bbse'),
      /--adapt-prior bbse needs validation counts/,
    );
  });
});

describe("predict --adapt-prior on a head-biased model with BCTS folded in (the CLI's path after decoding)", () => {
  it('EM within TV 0.05 and BBSE within 0.1 of a backward long tail (ratio 30), and both beat the unadjusted predictions (seeds)', () => {
    for (const seed of [1, 2, 3]) {
      const C = 6;
      const prob = gaussianProblem(C, 8, 40 + seed);
      const scale = 2;
      // A head-biased head: logits lean towards the first (head) classes.
      const delta = [2, 1.4, 0.8, 0.2, -0.4, -1];
      const biased = (z: Float32Array) => z.map((v, k) => v + delta[k % C]!);
      const val = prob.draw(new Array(C).fill(100), createRng(seed, 1), scale);
      const zv = biased(val.logits);
      const fit = fitBcts(arrayBlocks(zv, val.n, C), val.labels, C);
      // What loadFolded gives: z / T + b_cal from the layer, the validation prior, the calibrated argmax's counts.
      const fold = (z: Float32Array) => z.map((v, k) => v / fit.temperature + fit.bias[k % C]!);
      const fv = fold(zv);
      const valPred = adjustedPredictions(fv, val.n, C, 1, new Array(C).fill(1), new Array(C).fill(1));
      const model = {
        classNames: Array.from({ length: C }, (_, c) => `class ${c}`),
        calibration: {
          temperature: fit.temperature,
          bias: fit.bias,
          sourcePrior: labelPrior(val.labels, C),
          valConfusion: Float32Array.from(validationConfusion(valPred, val.labels, C)),
        },
      };
      const target = prob.draw(tail(C, 300, 30, true), createRng(seed, 2), scale);
      const files = Array.from({ length: target.n }, (_, i) => `img-${i}.png`);
      const truth = labelPrior(target.labels, C);
      for (const how of ['em', 'bbse'] as const) {
        const r = adaptedFromLogits(model, files, fold(biased(target.logits)), how, 1);
        const est = r.prior.map((p) => p.probability);
        const tv = tvDistance(est, truth);
        // Measured: EM 0.016-0.030, BBSE 0.017-0.077 (its ridge pulls towards no shift).
        assert.ok(tv < (how === 'em' ? 0.05 : 0.1), `seed ${seed} ${how}: TV ${tv}`);
        let adjusted = 0;
        let plain = 0;
        r.predictions.forEach((p, i) => {
          if (p.top[0]!.index === target.labels[i]) adjusted++;
          if (p.unadjusted === model.classNames[target.labels[i]!]) plain++;
        });
        assert.ok(adjusted > plain, `seed ${seed} ${how}: ${adjusted} vs ${plain} of ${target.n} right`);
      }
    }
  });
});
