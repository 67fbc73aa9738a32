/**
 * per-class.csv against an independent computation: NumPy reads the run's folded classifiers
 * (classifiers.npz, the saved logits' weights) and the feature file's test split, computes the
 * logits, argmax and per-class accuracy / precision / recall / F1 itself, and compares every cell.
 * Class names that CSV, Markdown and HTML would interpret are read back intact by Python's csv.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadFeatureFile } from '../src/features/feature-set.ts';
import { csvField } from '../src/io/display.ts';
import { mdText, perClassCsv, worstClassesMarkdown } from '../src/report/per-class.ts';
import { RunResultsSchema } from '../src/report/results.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const NAMES = ['plain', 'comma, inside', 'quote " inside', 'line\nbreak', '<b>bold</b> | pipe'];

const CHECK = `
import csv, json, sys
import numpy as np
run, feats = sys.argv[1], sys.argv[2]
z = np.load(feats)
x, y = z['test_features'].astype(np.float64), z['test_labels'].astype(np.int64)
clf = np.load(run + '/classifiers.npz')
record = json.load(open(run + '/classifiers.json'))
rows = list(csv.DictReader(open(run + '/per-class.csv', newline='')))
C = len(rows)
out = {'names': [r['name'] for r in rows], 'max_err': 0.0, 'cells': 0, 'empty_ok': 0}
for method, info in record['methods'].items():
    assert info['transform'] == 'none', info
    W = clf[method + '/weight'].astype(np.float64); b = clf[method + '/bias'].astype(np.float64)
    pred = np.argmax(x @ W.T + b, axis=1)
    for c in range(C):
        support = (y == c).sum(); predicted = (pred == c).sum(); tp = ((y == c) & (pred == c)).sum()
        rec = tp / support if support else None
        prec = tp / predicted if predicted else None
        f1 = None if rec is None else (0.0 if (prec or 0) + rec == 0 else 2 * (prec or 0) * rec / ((prec or 0) + rec))
        for key, want in (('accuracy', rec), ('recall', rec), ('precision', prec), ('f1', f1)):
            got = rows[c][method + '_' + key]
            if want is None:
                assert got == '', (method, c, key, got); out['empty_ok'] += 1
            else:
                out['max_err'] = max(out['max_err'], abs(float(got) - want)); out['cells'] += 1
    assert [r['train_count'] for r in rows] == [str((z['train_labels'] == c).sum()) for c in range(C)]
print(json.dumps(out))
`;

describe('per-class.csv', () => {
  it('matches a NumPy per-class computation from the saved classifiers, names intact', () => {
    const dir = tempDir();
    const fixture = join(import.meta.dirname, 'fixtures', 'features_golden.npz');
    const feats = fixture;
    const fs = loadFeatureFile(fixture);
    const out = join(dir, 'run');
    const r = runCli([
      'retrain',
      '--features',
      feats,
      '-m',
      'joint,crt,tau-norm,lws',
      '--out',
      out,
      '--live-mib',
      '0',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const py = spawnSync('/usr/bin/python3', ['-c', CHECK, out, feats], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const j = JSON.parse(py.stdout) as { names: string[]; max_err: number; cells: number };
    assert.deepEqual(j.names, ['0', '1', '2', '3', '4']); // a feature file carries no names
    assert.ok(j.cells >= fs.numClasses * 4 * 3, `compared ${j.cells} cells`);
    assert.ok(j.max_err < 1e-5, `largest difference ${j.max_err}`);
    assert.match(readFileSync(join(out, 'results.md'), 'utf8'), /## Per class, worst first \(5 of 5/);

    // Names CSV, Markdown and HTML would interpret (from an image folder, say): read back intact by
    // Python's csv, one Markdown table row each, no markup.
    const run = RunResultsSchema.parse(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')));
    run.dataset.classNames = NAMES;
    const csvPath = join(dir, 'named.csv');
    writeFileSync(csvPath, perClassCsv(run));
    const names = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        'import csv,json,sys; print(json.dumps([r["name"] for r in csv.DictReader(open(sys.argv[1], newline=""))]))',
        csvPath,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(names.status, 0, names.stderr);
    assert.deepEqual(JSON.parse(names.stdout), NAMES);
    const rows = worstClassesMarkdown(run, 5).filter((l) => l.startsWith('| ') && !l.startsWith('| class'));
    assert.equal(rows.length, 5);
    for (const row of rows) assert.equal(row.replaceAll('\\|', '').split('|').length, 3 + 4 + 2, row);
    const md = rows.join('\n');
    assert.match(md, /&lt;b&gt;bold&lt;\/b&gt; \\\| pipe/);
    assert.match(md, /line break/);
    assert.doesNotMatch(md, /<b>/);
  });

  it('quotes CSV fields and escapes Markdown as RFC 4180 and CommonMark need', () => {
    assert.equal(csvField('cat'), 'cat');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('two\nlines'), '"two\nlines"');
    assert.equal(csvField(' padded'), '" padded"');
    assert.equal(mdText('a|b *c* <x>'), 'a\\|b \\*c\\* &lt;x&gt;');
  });
});
