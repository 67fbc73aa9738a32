import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from './helpers/tmp.ts';

const BENCH = join(import.meta.dirname, '..', 'bin', 'bench.js');

describe('npm run bench (harness, on a tiny setting)', () => {
  it('runs cases to completion and prints one JSON document with medians, spreads and memory', () => {
    const dir = tempDir();
    for (const [i, c] of ['train resnet8 1x28x28', 'stage2 tau-norm', 'conv filter'].entries()) {
      const out = join(dir, `bench-${i}.json`);
      const r = spawnSync(
        process.execPath,
        [BENCH, '--quick', '--json', '--no-torch', '--case', c, '--out', out],
        { encoding: 'utf8', timeout: 300_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      // The same document goes to --out (and not to bench/results/ in the repository).
      assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), doc);
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

  it('refuses --out without a path', () => {
    const r = spawnSync(
      process.execPath,
      [BENCH, '--quick', '--no-torch', '--case', 'conv filter', '--out'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--out expects a file path/);
  });
});
