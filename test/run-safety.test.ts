/**
 * Hardening, as a user meets it from the command line: runs are never clobbered or mixed, a
 * stage-2 head is never used on another backbone, Ctrl-C leaves a resumable run, and mistakes
 * in saved files exit 2 with one line. (docs/reliability.md lists each case and its test.)
 *
 * Cost: a `longtail` process costs about 1.2 s of CPU to start, so the calls that check a message,
 * an exit code and the files run in this process (`lt`, test/helpers/cli.ts); `runCli` and `spawn`
 * start the real command where the process is the point (exit codes through process.exit, Ctrl-C,
 * kill -9, a lock held by another process) and once per command family. The tests that need a
 * trained run copy one tiny run trained once per file (`copyOfRun`); runs that go through stage 2
 * use a tiny image folder (`small`), since a stage 2 on Fashion-MNIST-LT evaluates 10,000 test images.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { BIN, type CliResult, runCli, runInProcess } from './helpers/cli.ts';
import { tinyFolderArgs, writeImageFolder } from './helpers/image-folder.ts';
import { tempDir } from './helpers/tmp.ts';

/** Fashion-MNIST-LT, small: where the data set is Fashion-MNIST's or an epoch must take a while. */
const TINY = ['--max-per-class', '30', '--imbalance', '3', '--batch-size', '32', '--threads', '1'];
const FEATURES = join(import.meta.dirname, 'fixtures', 'features_golden.npz');

const noStack = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at .*\.ts:\d+/);

/** `longtail ARGS` in this process (test/helpers/cli.ts). */
const lt = runInProcess;

/** Where the once-trained run and the tiny image folder live: removed when the file ends. */
const FIXTURE = tempDir('longtail-safety-');
let trained: string | undefined;
let folder: Promise<string> | undefined;

/**
 * The data flags of a run on a tiny image folder (test/helpers/image-folder.ts, written on first use):
 * every stage 2 on Fashion-MNIST-LT extracts and evaluates its 10,000 test images (several CPU
 * seconds each), and these tests check files, exit codes and bookkeeping, not accuracy.
 */
async function small(): Promise<string[]> {
  folder ??= writeImageFolder(join(FIXTURE, 'data'));
  return [...tinyFolderArgs(await folder), '--batch-size', '8', '--threads', '1'];
}

/**
 * A copy at `dest` of a run made by `train SMALL --epochs 1` (as a user would, in a child process),
 * trained on the first call of the file and copied after (a run folder holds no absolute path of
 * its own, so a copy is a run in its own right; its data folder stays where it was).
 */
async function copyOfRun(dest: string): Promise<string> {
  if (trained === undefined) {
    const run = join(FIXTURE, 'run');
    const r = runCli(['train', ...(await small()), '--epochs', '1', '--out', run, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).runDir, run);
    trained = run;
  }
  cpSync(trained, dest, { recursive: true });
  return dest;
}

function expectUserError(r: CliResult, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(
    r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('longtail:')).length,
    1,
    r.stderr,
  );
  noStack(r.stderr);
}

async function png(path: string) {
  const px = Buffer.alloc(28 * 28, 0);
  for (let i = 0; i < px.length; i += 3) px[i] = 200;
  await sharp(px, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toFile(path);
}

describe('run folders from the command line', () => {
  it('the normal flow works (train, retrain --run, export, predict on the run), nothing is clobbered, and a head never meets another backbone', async () => {
    const dir = tempDir();
    const x = join(dir, 'x');
    const img = join(dir, 'shirt.png');
    await png(img);
    await copyOfRun(x);
    const config = readFileSync(join(x, 'config.json'), 'utf8');

    // An existing run is never overwritten without --force, and a failing command changes nothing.
    // (A real process: exit code 2 through process.exit, one line, no stack trace.)
    expectUserError(
      runCli(['train', ...TINY, '--epochs', '1', '--out', x]),
      /--out .*x: the folder is not empty/,
    );
    const failing = await lt([
      'train',
      '--dataset',
      'list',
      '--train-list',
      join(dir, 'missing.txt'),
      '--test-list',
      join(dir, 'missing.txt'),
      '--out',
      x,
      '--force',
    ]);
    assert.equal(failing.code, 2, failing.stderr);
    assert.equal(readFileSync(join(x, 'config.json'), 'utf8'), config);
    assert.ok(existsSync(join(x, 'best.npz')));

    // retrain --run X keeps its classifiers with X: export and predict on X find them.
    const re = runCli(['retrain', '--run', x, '--method', 'ncm,tau-norm', '--mode', 'features', '--json']);
    assert.equal(re.code, 0, re.stderr);
    assert.equal(JSON.parse(re.stdout).runDir, join(x, 'stage2'));
    expectUserError(await lt(['retrain', '--run', x, '--method', 'ncm']), /stage2: the folder is not empty/);
    const ex = runCli(['export', '--run', x, '--method', 'ncm', '--out', join(dir, 'model'), '--json']);
    assert.equal(ex.code, 0, ex.stderr);
    const pr = runCli(['predict', '--run', x, '--method', 'tau-norm', img, '--json']);
    assert.equal(pr.code, 0, pr.stderr);
    assert.equal(JSON.parse(pr.stdout).predictions.length, 1);

    // A head retrained elsewhere, then its backbone replaced: refused, not silently mixed.
    const b = join(dir, 'b');
    assert.equal(
      (await lt(['retrain', '--run', x, '--method', 'ncm', '--mode', 'features', '--out', b])).code,
      0,
    );
    assert.equal((await lt(['predict', '--run', b, '--method', 'ncm', img])).code, 0);
    const again = runCli([
      'train',
      ...(await small()),
      '--epochs',
      '1',
      '--seed',
      '5',
      '--out',
      x,
      '--force',
    ]);
    assert.equal(again.code, 0, again.stderr);
    expectUserError(
      await lt(['predict', '--run', b, '--method', 'ncm', img]),
      /its classifiers were trained on the backbone .*best\.npz had then \(sha256 [0-9a-f]{12}\), which has since changed/,
    );
    // --force replaced the whole run, its stage2/ included.
    expectUserError(
      await lt(['export', '--run', x, '--out', join(dir, 'm2')]),
      /no stage-2 classifiers here or in/,
    );
  });

  it('a second writer is refused while a run trains; Ctrl-C leaves a resumable run and says how to resume it', async () => {
    const y = join(tempDir(), 'y');
    const child = spawn(process.execPath, [BIN, 'train', ...TINY, '--epochs', '300', '--out', y], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    // Wait for a completed epoch (epochs.jsonl has a line); up to 5 minutes, for a loaded machine.
    for (let i = 0; i < 3000 && child.exitCode === null; i++) {
      const log = join(y, 'epochs.jsonl');
      if (existsSync(log) && readFileSync(log, 'utf8').trim().length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expectUserError(
      await lt(['train', '--resume', y]),
      new RegExp(`y is in use by another longtail process \\(train, pid ${child.pid}`),
    );
    expectUserError(await lt(['retrain', '--run', y]), /in use by another longtail process/);
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    const m =
      /interrupted: epoch (\d+) of 300 is saved in .*y; continue with: longtail train --resume .*y/.exec(
        stderr,
      );
    assert.ok(m, stderr);
    assert.equal(existsSync(join(y, '.longtail.lock')), false);
    const done = Number(m[1]);
    // A partial run is not silently used for stage 2.
    expectUserError(
      await lt(['retrain', '--run', y]),
      new RegExp(
        `stage 1 stopped after epoch ${done} of 300; finish it with \`longtail train --resume .*y\``,
      ),
    );
    const resumed = runCli(['train', '--resume', y, '--epochs', String(done + 1), '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const epochs = readFileSync(join(y, 'epochs.jsonl'), 'utf8').trim().split('\n');
    assert.equal(epochs.length, done + 1);
  });

  it('damaged run files and impossible outputs are one-line errors with exit code 2', async () => {
    const dir = tempDir();
    const z = await copyOfRun(join(dir, 'z'));
    const cfgPath = join(z, 'config.json');
    const good = readFileSync(cfgPath, 'utf8');
    writeFileSync(cfgPath, '{"command": "train", "epochs": ');
    expectUserError(await lt(['retrain', '--run', z]), /z\/config\.json: not valid JSON/);
    expectUserError(await lt(['train', '--resume', z]), /z\/config\.json: not valid JSON/);
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(good), epochs: -1 }));
    expectUserError(await lt(['retrain', '--run', z]), /epochs: .*\(got -1 from .*z\/config\.json\)/);
    writeFileSync(cfgPath, good);
    assert.equal((await lt(['retrain', '--run', z, '--method', 'ncm', '--mode', 'features'])).code, 0);
    writeFileSync(join(z, 'stage2', 'classifiers.json'), '[1, 2');
    expectUserError(
      await lt(['predict', '--run', z, join(dir, 'none.png')]),
      /classifiers\.json: not valid JSON/,
    );

    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    expectUserError(await lt(['retrain', '--features', FEATURES, '--out', join(file, 'sub')]), /a-file/);
    expectUserError(
      await lt(['export', '--run', z, '--out', file]),
      /--out .*a-file: is a file, expected a folder/,
    );
    // The flag parser refuses it (commander's own one-line message, exit 2).
    const topK = await lt(['predict', '--run', z, '--top-k', '0', file]);
    assert.equal(topK.code, 2);
    assert.match(topK.stderr, /--top-k must be at least 1, got 0/);
    mkdirSync(join(dir, 'study'));
    expectUserError(
      await lt(['study', 'samplers', '--samplers', 'square-root,bogus', '--out', join(dir, 'study', 's')]),
      /unknown sampler 'bogus'/,
    );
    assert.equal(existsSync(join(dir, 'study', 's')), false);
  });

  it('retrain --config takes the stage-1 settings cRT follows, and an unknown key names its file and the likely key', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'r.yaml');
    writeFileSync(cfg, 'lr: 0.05\nmethod: crt\ncrtEpochs: 1\n');
    const ok = await lt([
      'retrain',
      '--features',
      FEATURES,
      '--config',
      cfg,
      '--out',
      join(dir, 'a'),
      '--json',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const saved = JSON.parse(readFileSync(join(dir, 'a', 'config.json'), 'utf8'));
    assert.equal(saved.lr, 0.05);
    writeFileSync(cfg, 'lrr: 0.05\n');
    expectUserError(
      await lt(['retrain', '--features', FEATURES, '--config', cfg]),
      new RegExp(`${cfg}: unknown setting\\(s\\) lrr \\(did you mean lr\\?\\)`),
    );
  });
});

describe('train --resume of a damaged checkpoint (issue 25 audit)', () => {
  it('is refused before config.json, the manifest or any other file of the run is rewritten', async () => {
    const dir = tempDir();
    const x = await copyOfRun(join(dir, 'x'));
    const ck = join(x, 'checkpoint.npz');
    const bytes = readFileSync(ck);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x10; // one flipped bit in the middle of the archive
    writeFileSync(ck, bytes);
    const snapshot = () =>
      new Map(
        readdirSync(x, { recursive: true, encoding: 'utf8' })
          .filter((f) => statSync(join(x, f)).isFile())
          .map((f) => [f, readFileSync(join(x, f)).toString('base64')]),
      );
    const before = snapshot();
    assert.ok(
      before.has('config.json') && before.has('.longtail-manifest.json'),
      [...before.keys()].join(' '),
    );
    expectUserError(await lt(['train', '--resume', x, '--epochs', '2']), /checkpoint\.npz/);
    const after = snapshot();
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    for (const [f, b] of before) assert.equal(after.get(f), b, `${f} was rewritten`);
  });
});

describe('demo --seeds', () => {
  it('runs the pipeline per seed into seed-<n>/ and reports the mean ± std of their results', async () => {
    const out = join(tempDir(), 'seeds');
    const r = runCli([
      'demo',
      ...(await small()),
      '--epochs',
      '1',
      '--method',
      'ncm,tau-norm',
      '--seeds',
      '0,1',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    const per = [0, 1].map((s) => JSON.parse(readFileSync(join(out, `seed-${s}`, 'results.json'), 'utf8')));
    for (const [i, m] of summary.methods.entries()) {
      const v = per.map((p) => p.methods[i].overall);
      assert.ok(Math.abs(m.overall.mean - (v[0] + v[1]) / 2) < 1e-9);
      assert.ok(Math.abs(m.overall.std - Math.abs(v[0] - v[1]) / Math.SQRT2) < 1e-9);
    }
    assert.notDeepEqual(per[0].methods, per[1].methods, 'the seeds trained different models');
    assert.ok(existsSync(join(out, 'summary.md')));
    expectUserError(await lt(['demo', '--seeds', '0,x']), /--seeds expects integers >= 0/);
  });
});

describe('study over a partial grid, seeds and losses', () => {
  it('runs every cell per seed, tabulates the means, and judges only the findings the grid supports', async () => {
    const out = join(tempDir(), 'study');
    const grid = ['--method', 'joint,ncm,tau-norm', '--epochs', '1', ...(await small())];
    const r = runCli([
      'study',
      'samplers',
      ...grid,
      '--samplers',
      'instance-balanced,class-balanced',
      '--seeds',
      '0,1',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    // Finding 1 compares square-root and progressively-balanced sampling, which this grid lacks.
    assert.deepEqual(
      j.findings.map((f: { reproduced: boolean | null }) => f.reproduced === null),
      [true, false, false, false, false],
    );
    assert.match(j.findings[0].evidence, /not judged: the study has no joint on square-root features/);
    const ib = [0, 1].map((s) =>
      JSON.parse(readFileSync(join(out, 'instance-balanced', `seed-${s}`, 'results.json'), 'utf8')),
    );
    const mean = (ib[0].methods[0].overall + ib[1].methods[0].overall) / 2;
    const row = j.rows.find((x: string[]) => x[0] === 'instance-balanced' && x[1] === 'Joint');
    assert.equal(row[2].split(' ± ')[0], mean.toFixed(1));
    const study = JSON.parse(readFileSync(join(out, 'study.json'), 'utf8'));
    assert.equal(study.cells.length, 2);

    const l = await lt([
      'study',
      'samplers',
      ...grid,
      '--samplers',
      'instance-balanced',
      '--losses',
      'ce,balanced-softmax',
      '--out',
      join(tempDir(), 'losses'),
      '--json',
    ]);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(
      [...new Set(JSON.parse(l.stdout).rows.map((x: string[]) => x[0]))],
      ['instance-balanced+ce', 'instance-balanced+balanced-softmax'],
    );
  });
});

/** Byte-equal files. */
const same = (a: string, b: string) => readFileSync(a).equals(readFileSync(b));

describe('--force and half-written outputs (issue 25)', () => {
  it('a --force that fails on its settings changes nothing; files longtail did not record are never removed', async () => {
    const dir = tempDir();
    const x = await copyOfRun(join(dir, 'x'));
    const config = readFileSync(join(x, 'config.json'), 'utf8');
    const before = readdirSync(x).sort();
    // Impossible settings: refused before the old run is touched.
    expectUserError(
      await lt([
        'train',
        ...TINY.slice(0, -4),
        '--batch-size',
        '100000',
        '--epochs',
        '1',
        '--out',
        x,
        '--force',
      ]),
      /--batch-size 100000 is larger than the \d+ training images/,
    );
    expectUserError(
      await lt(['train', ...TINY, '--many-threshold', '5', '--few-threshold', '50', '--out', x, '--force']),
      /--few-threshold 50 and --many-threshold 5 contradict each other/,
    );
    assert.deepEqual(readdirSync(x).sort(), before);
    assert.equal(readFileSync(join(x, 'config.json'), 'utf8'), config);
    const r = join(dir, 'r');
    assert.equal((await lt(['retrain', '--features', FEATURES, '--method', 'ncm', '--out', r])).code, 0);
    const rBefore = readdirSync(r).sort();
    expectUserError(
      await lt([
        'retrain',
        '--features',
        FEATURES,
        '--method',
        'crt',
        '--stage2-batch-size',
        '1000000',
        '--out',
        r,
        '--force',
      ]),
      /crt: batch size 1000000 is larger than the \d+ training images/,
    );
    assert.deepEqual(readdirSync(r).sort(), rBefore);

    // A user's own files with a run's names (or an older longtail's run without a manifest) are refused by name.
    const mine = join(dir, 'mine');
    mkdirSync(join(mine, 'charts'), { recursive: true });
    writeFileSync(join(mine, 'config.json'), '{"mine": true}');
    writeFileSync(join(mine, 'results.md'), '# my notes');
    writeFileSync(join(mine, 'data.1.2.tmp'), 'mine');
    expectUserError(
      await lt(['train', ...TINY, '--epochs', '1', '--out', mine, '--force']),
      /--force removes only what longtail recorded writing, and .*config\.json.* are not recorded \(the folder has no \.longtail-manifest\.json/,
    );
    assert.deepEqual(readdirSync(mine).sort(), ['charts', 'config.json', 'data.1.2.tmp', 'results.md']);
    assert.equal(readFileSync(join(mine, 'config.json'), 'utf8'), '{"mine": true}');
  });

  it('shot thresholds that contradict each other are refused up front by train, data summary and demo', async () => {
    const dir = tempDir();
    const bad = ['--many-threshold', '5', '--few-threshold', '50'];
    for (const [cmd, out] of [
      [['train', ...TINY, '--epochs', '1'], 't'],
      [['data', 'summary', '--max-per-class', '30'], 'd'],
      [['demo', ...TINY, '--epochs', '1'], 'm'],
    ] as const) {
      const r = await lt([...cmd, ...bad, '--out', join(dir, out)]);
      expectUserError(r, /--few-threshold 50 and --many-threshold 5 contradict each other/);
      assert.doesNotMatch(r.stderr, /stage 1/, 'refused before stage 1');
      assert.equal(existsSync(join(dir, out)), false);
    }
  });

  it('a kill -9 during export --force leaves the old export or the new one, whole, never a mix; the next export cleans up', async () => {
    const dir = tempDir();
    const x = await copyOfRun(join(dir, 'x'));
    assert.equal(
      (await lt(['retrain', '--run', x, '--method', 'ncm,tau-norm', '--mode', 'features'])).code,
      0,
    );
    const out = join(dir, 'model');
    const oldRef = join(dir, 'old-ref');
    const newRef = join(dir, 'new-ref');
    for (const [method, o] of [
      ['ncm', oldRef],
      ['tau-norm', newRef],
    ] as const)
      assert.equal((await lt(['export', '--run', x, '--method', method, '--out', o])).code, 0);
    assert.equal(same(join(oldRef, 'weights.bin'), join(newRef, 'weights.bin')), false);
    const pairIs = (ref: string) =>
      same(join(out, 'model.json'), join(ref, 'model.json')) &&
      same(join(out, 'weights.bin'), join(ref, 'weights.bin'));
    const inode = (p: string) => {
      try {
        return statSync(p).ino;
      } catch {
        return -1;
      }
    };
    const outcomes: string[] = [];
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (const delayMs of [0, 0, 1, 3, 10]) {
      rmSync(out, { recursive: true, force: true });
      assert.equal((await lt(['export', '--run', x, '--method', 'ncm', '--out', out])).code, 0);
      const before = [inode(out), inode(join(out, 'weights.bin'))];
      const child = spawn(
        process.execPath,
        [BIN, 'export', '--run', x, '--method', 'tau-norm', '--out', out, '--force'],
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise((res) => child.on('exit', res));
      // Poll without yielding to the event loop: kill at the first sign of new weights being written
      // (in --out or beside it). Between polls the thread sleeps 0.1 ms (Atomics.wait) instead of
      // spinning, so the child's start (about a CPU second) does not share its core with this loop.
      const deadline = Date.now() + 120_000;
      let seen = false;
      while (!seen && Date.now() < deadline && child.exitCode === null) {
        seen =
          inode(out) !== before[0] ||
          inode(join(out, 'weights.bin')) !== before[1] ||
          readdirSync(dir).some((n) => n.startsWith('.model.') && existsSync(join(dir, n, 'weights.bin')));
        if (child.exitCode !== null) break;
        if (!seen) Atomics.wait(nap, 0, 0, 0.1);
      }
      const until = Date.now() + delayMs;
      while (Date.now() < until) {}
      child.kill('SIGKILL');
      await exited;
      assert.ok(seen, 'the export started writing before it was killed');
      // Whole or not at all: the old pair, the new pair, or (killed between the two renames) no folder yet.
      const state = !existsSync(out) ? 'absent' : pairIs(oldRef) ? 'old' : pairIs(newRef) ? 'new' : 'MIXED';
      outcomes.push(state);
      assert.notEqual(
        state,
        'MIXED',
        `kill after ${delayMs} ms: model.json and weights.bin from different exports`,
      );
      assert.deepEqual(
        readdirSync(out).filter((n) => n.endsWith('.tmp')),
        [],
      );
      // The next export finishes the job and leaves nothing beside the folder.
      const again = await lt(['export', '--run', x, '--method', 'tau-norm', '--out', out, '--force']);
      assert.equal(again.code, 0, again.stderr);
      assert.ok(pairIs(newRef));
      assert.deepEqual(
        readdirSync(dir).filter((n) => n.startsWith('.model.')),
        [],
      );
    }
    // An export folder is replaced only when it holds an export alone.
    writeFileSync(join(out, 'index.html'), '<p>my app</p>');
    expectUserError(
      await lt(['export', '--run', x, '--method', 'ncm', '--out', out, '--force']),
      /--out .*model: holds files an export does not write \(index\.html\)/,
    );
    assert.ok(pairIs(newRef), outcomes.join(','));
  });

  it('--out under a read-only mount is a one-line error (EROFS), for train and export', async (t) => {
    const dir = tempDir();
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], { encoding: 'utf8' });
    if (m.status !== 0) {
      t.skip(`cannot mount a read-only tmpfs here (${(m.stderr || m.error?.message || '').trim()})`);
      return;
    }
    try {
      const x = await copyOfRun(join(dir, 'x'));
      assert.equal((await lt(['retrain', '--run', x, '--method', 'ncm', '--mode', 'features'])).code, 0);
      expectUserError(
        await lt(['train', ...TINY, '--epochs', '1', '--out', join(ro, 'a', 'b')]),
        /cannot write .*ro\/a: the file system is read-only \(EROFS\)/,
      );
      expectUserError(
        await lt(['export', '--run', x, '--method', 'ncm', '--out', join(ro, 'm', 'n')]),
        /cannot write .*ro\/m: the file system is read-only \(EROFS\)/,
      );
      expectUserError(
        await lt(['data', 'summary', '--max-per-class', '30', '--imbalance', '3', '--out', join(ro, 'd')]),
        /the file system is read-only \(EROFS\)/,
      );
    } finally {
      spawnSync('umount', [ro]);
    }
  });
});

describe('a demo killed in stage 1 (issue 25)', () => {
  it('resumed with train --resume, says how to finish its stage 2 with the settings it was started with', async () => {
    const y = join(tempDir(), 'y');
    const child = spawn(
      process.execPath,
      [
        BIN,
        'demo',
        ...(await small()),
        '--epochs',
        '2000',
        '--method',
        'ncm,crt',
        '--stage2-batch-size',
        '16',
        '--crt-epochs',
        '2',
        '--out',
        y,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    for (let i = 0; i < 3000 && child.exitCode === null; i++) {
      const log = join(y, 'epochs.jsonl');
      if (existsSync(log) && readFileSync(log, 'utf8').trim().length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    const done = readFileSync(join(y, 'epochs.jsonl'), 'utf8').trim().split('\n').length;
    const resumed = runCli(['train', '--resume', y, '--epochs', String(done)]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const m = /this demo's stage 2 has not run; finish it with: (longtail retrain .*)$/m.exec(resumed.stdout);
    assert.ok(m, resumed.stdout);
    assert.equal(m[1], `longtail retrain --run ${y} --method ncm,crt --stage2-batch-size 16 --crt-epochs 2`);
    // The printed command runs, with those settings.
    const re = await lt([...m[1]!.split(' ').slice(1), '--mode', 'features', '--json']);
    assert.equal(re.code, 0, re.stderr);
    const results = JSON.parse(readFileSync(join(y, 'stage2', 'results.json'), 'utf8'));
    assert.equal(results.config.stage2BatchSize, 16);
    assert.equal(results.config.crtEpochs, 2);
  });
});
