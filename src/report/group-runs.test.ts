import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { groupingConfig } from './group-runs.ts';
import type { RunResults } from './results.ts';

// Only the fields groupingConfig reads.
const run = (config: Record<string, unknown>) =>
  ({ config, dataset: { name: 'fashion-mnist-lt' } }) as unknown as RunResults;

describe('report: the configuration that groups runs', () => {
  it("groups a run written with stage 2's old samplesPerClass with one written with classAwarePerClass", () => {
    const old = groupingConfig(run({ epochs: 3, samplesPerClass: 4 }));
    const now = groupingConfig(run({ epochs: 3, classAwarePerClass: 4 }));
    assert.deepEqual(old, now);
    assert.equal('samplesPerClass' in old, false);
    // A value under the new name wins over the old one.
    assert.equal(groupingConfig(run({ samplesPerClass: 2, classAwarePerClass: 5 })).classAwarePerClass, 5);
    // Different values still split the groups.
    assert.notDeepEqual(groupingConfig(run({ samplesPerClass: 2 })), now);
  });

  it('leaves out the keys that do not decide a group and adds the data set', () => {
    const g = groupingConfig(run({ epochs: 3, seed: 7, threads: 2 }));
    assert.equal(g.epochs, 3);
    assert.equal('seed' in g, false);
    assert.equal(g.dataset, 'fashion-mnist-lt');
  });
});
