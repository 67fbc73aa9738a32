import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const BENCH = join(import.meta.dirname, '..', 'bin', 'bench.js');

describe('npm run bench (harness, on a tiny setting)', () => {
  it('runs cases to completion and prints one JSON document with medians, spreads and memory', () => {
    for (const c of ['train resnet8 1x28x28', 'stage2 tau-norm', 'conv filter']) {
      const r = spawnSync(process.execPath, [BENCH, '--quick', '--json', '--no-torch', '--case', c], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.ok(doc.cases.length >= 1);
      for (const k of doc.cases) {
        assert.ok(k.case.startsWith(c));
        assert.ok(k.median > 0 && k.min <= k.median && k.median <= k.max, JSON.stringify(k));
        assert.ok(k.peakRssMiB > 50);
        assert.ok(['images/s', 's', 'GFLOP/s'].includes(k.unit));
        assert.equal(k.ratio, null);
        assert.ok(['native', 'wasm'].includes(k.kernels), k.kernels);
      }
    }
  });
});
