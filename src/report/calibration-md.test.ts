import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calibrationMarkdown } from './calibration-md.ts';
import type { RunResults } from './results.ts';

/** A run with one method and the given calibration (only what calibrationMarkdown reads). */
const run = (method: 'none' | 'temperature' | 'bcts', accuracyAfter?: number) =>
  ({
    methods: [
      {
        method: 'joint',
        label: 'Joint',
        overall: 66.4,
        shifted: [],
        recall: { worstClass: 0.25, hmeanRecall: 0.6, gmeanRecall: 0.62, nll: 0.8 },
        calibration: {
          method,
          temperature: 0.796,
          valNllBefore: 1,
          valNllAfter: 0.7,
          eceBefore: 0.11,
          eceAfter: 0.021,
          nllBefore: 1.1,
          nllAfter: 0.8,
          sourcePrior: 'validation',
          notApplicable: null,
          note: null,
          ...(accuracyAfter === undefined ? {} : { accuracyAfter }),
        },
      },
    ],
  }) as unknown as RunResults;

describe('results.md calibration section', () => {
  it('names the mode in use, and shows the calibrated top-1 (BCTS can move the argmax)', () => {
    const b = calibrationMarkdown(run('bcts', 0.7471));
    assert.match(b[0]!, /^Calibration: bias-corrected temperature scaling \(BCTS\), softmax\(z \/ T \+ b\)/);
    assert.equal(
      b[4],
      '| Joint | 0.796 | 0.1100 | 0.0210 | 1.100 | 0.800 | 74.71 | 0.250 | 0.600 | 0.620 |  |',
    );
    assert.match(calibrationMarkdown(run('temperature'))[0]!, /^Calibration: a temperature T per method/);
    assert.match(calibrationMarkdown(run('none'))[0]!, /^Calibration: none/);
    // Older results without accuracyAfter: a dash, not a number.
    assert.match(calibrationMarkdown(run('temperature'))[4]!, /\| 0\.800 \| - \| 0\.250 \|/);
  });
});
