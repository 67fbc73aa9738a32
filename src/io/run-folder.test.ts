import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.ts';
import { writeFileAtomic } from './atomic.ts';
import { acquireLock, assertNotLocked, openRun, planRun, RUN_FILES, runFile } from './run-folder.ts';

/** A pid that is not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

describe('run folders', () => {
  it('refuse a non-empty --out unless forced, and --force removes only what the manifest records', () => {
    const dir = join(tempDir(), 'run');
    const first = openRun(planRun('train', dir));
    writeFileAtomic(first.path('config'), '{"old": true}');
    writeFileAtomic(join(dir, RUN_FILES.charts, 'acc.svg'), '<svg/>');
    first.release();
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    writeFileSync(join(dir, 'data.1.2.tmp'), 'mine too');
    mkdirSync(join(dir, RUN_FILES.charts, 'mine'));
    const manifest = JSON.parse(readFileSync(runFile(dir, 'manifest'), 'utf8'));
    assert.deepEqual(manifest.entries, [
      { path: RUN_FILES.config, command: 'train' },
      { path: `${RUN_FILES.charts}/acc.svg`, command: 'train' },
    ]);
    assert.throws(
      () => planRun('train', dir),
      /--out .*run: the folder is not empty \(.*\); choose a new folder, or --force/,
    );
    const f = openRun(planRun('train', dir, { force: true }));
    assert.deepEqual(readdirSync(dir).sort(), [
      RUN_FILES.manifest,
      RUN_FILES.lock,
      RUN_FILES.charts,
      'data.1.2.tmp',
      'notes.txt',
    ]);
    assert.deepEqual(readdirSync(join(dir, RUN_FILES.charts)), ['mine']);
    f.release();
    // The new run's manifest starts empty: the old run's entries went with its files.
    assert.deepEqual(JSON.parse(readFileSync(runFile(dir, 'manifest'), 'utf8')).entries, []);
  });

  it("--force never removes a user's files by name: run-named files longtail did not record are refused, untouched", () => {
    // A folder from a longtail that kept no manifest, or the user's own: everything a run would write, by name.
    const dir = join(tempDir(), 'mine');
    const mine: Record<string, string> = {
      [RUN_FILES.config]: '{"my": "settings"}',
      [RUN_FILES.resultsMarkdown]: '# my notes',
      [RUN_FILES.report]: '<p>mine</p>',
      'checkpoint.npz.1.2.tmp': 'mine',
    };
    mkdirSync(join(dir, RUN_FILES.charts), { recursive: true });
    mkdirSync(join(dir, RUN_FILES.stage2));
    writeFileSync(join(dir, RUN_FILES.stage2, RUN_FILES.config), '{"mine": 1}');
    for (const [name, text] of Object.entries(mine)) writeFileSync(join(dir, name), text);
    const before = readdirSync(dir).sort();
    const refused =
      /--force removes only what longtail recorded writing, and .*config\.json.* are not recorded \(the folder has no \.longtail-manifest\.json/;
    assert.throws(() => openRun(planRun('train', dir, { force: true })), refused);
    assert.deepEqual(readdirSync(dir).sort(), before);
    for (const [name, text] of Object.entries(mine))
      assert.equal(readFileSync(join(dir, name), 'utf8'), text);
    assert.equal(readFileSync(join(dir, RUN_FILES.stage2, RUN_FILES.config), 'utf8'), '{"mine": 1}');

    // Beside a manifest the same: results.md that an earlier train run did not write is the user's.
    const run = join(tempDir(), 'run');
    const f = openRun(planRun('train', run));
    writeFileAtomic(f.path('config'), '{}');
    f.release();
    writeFileSync(join(run, RUN_FILES.resultsMarkdown), '# mine');
    assert.throws(
      () => openRun(planRun('demo', run, { force: true })),
      /results\.md is not recorded \(longtail did not record writing it there\)/,
    );
    assert.equal(readFileSync(join(run, RUN_FILES.resultsMarkdown), 'utf8'), '# mine');
    // Other names never stop a run.
    const other = join(tempDir(), 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    openRun(planRun('train', other, { force: true })).release();
    assert.equal(readFileSync(join(other, 'notes.txt'), 'utf8'), 'mine');
  });

  it('a damaged or hostile manifest is refused, and nothing outside the folder is ever removed', () => {
    const root = tempDir();
    const dir = join(root, 'run');
    mkdirSync(dir);
    writeFileSync(join(root, 'precious'), 'x');
    for (const entries of [
      [{ path: '../precious', command: 'train' }],
      [{ path: '/etc/hosts', command: 'x' }],
    ]) {
      writeFileSync(
        runFile(dir, 'manifest'),
        JSON.stringify({ longtail: 'run-manifest', version: 1, entries }),
      );
      assert.throws(
        () => openRun(planRun('train', dir, { force: true })),
        /\.longtail-manifest\.json: not a longtail run manifest \(entry .* is not a path inside the folder\)/,
      );
    }
    writeFileSync(runFile(dir, 'manifest'), '{');
    assert.throws(() => openRun(planRun('train', dir, { force: true })), /not a longtail run manifest/);
    assert.equal(readFileSync(join(root, 'precious'), 'utf8'), 'x');
  });

  it("--force on a folder of runs removes the old seeds' runs too, and nothing of the user's", () => {
    const dir = join(tempDir(), 'seeds');
    const outer = openRun(planRun('demo', dir));
    writeFileAtomic(outer.path('config'), JSON.stringify({ command: 'seeds' }));
    for (const s of [0, 1, 7]) {
      const inner = openRun(planRun('demo', join(dir, `seed-${s}`)));
      writeFileAtomic(inner.path('config'), '{}');
      writeFileAtomic(join(inner.dir, RUN_FILES.charts, 'a.svg'), '<svg/>');
      inner.release();
    }
    writeFileAtomic(outer.path('seedSummary'), '{}');
    outer.release();
    writeFileSync(join(dir, 'seed-7', 'notes.txt'), 'mine');
    mkdirSync(join(dir, 'plots'));
    writeFileSync(join(dir, 'plots', 'a.png'), 'mine');
    mkdirSync(join(dir, 'empty-of-mine'));
    const f = openRun(planRun('demo', dir, { force: true }));
    f.release();
    assert.deepEqual(readdirSync(dir).sort(), [RUN_FILES.manifest, 'empty-of-mine', 'plots', 'seed-7']);
    assert.deepEqual(readdirSync(join(dir, 'seed-7')), ['notes.txt']);
    assert.deepEqual(readdirSync(join(dir, 'plots')), ['a.png']);

    // A study's cells sit one level deeper (SAMPLER/seed-<n>/): the sampler folder goes once empty.
    const study = join(tempDir(), 'study');
    const s = openRun(planRun('study samplers', study));
    writeFileAtomic(s.path('study'), '{}');
    for (const seed of [0, 1]) {
      const cell = openRun(planRun('study samplers', join(study, 'class-balanced', `seed-${seed}`)));
      writeFileAtomic(cell.path('results'), '{}');
      cell.release();
    }
    s.release();
    openRun(planRun('study samplers', study, { force: true })).release();
    assert.deepEqual(readdirSync(study), [RUN_FILES.manifest]);
  });

  it('--force on an ordinary run does not look into sub-folders it did not make (a folder of runs forced by mistake)', () => {
    const dir = join(tempDir(), 'runs');
    const exp = openRun(planRun('train', join(dir, 'exp1')));
    writeFileAtomic(exp.path('best'), 'weights');
    exp.release();
    const top = openRun(planRun('train', dir, { force: true }));
    writeFileAtomic(top.path('config'), '{}');
    top.release();
    openRun(planRun('train', dir, { force: true })).release();
    assert.deepEqual(readdirSync(dir).sort(), [RUN_FILES.manifest, 'exp1']);
    assert.deepEqual(readdirSync(join(dir, 'exp1')).sort(), [RUN_FILES.manifest, RUN_FILES.best]);
  });

  it("a sub-run holds its run's lock: retrain into X/stage2 and a new --force of X exclude each other", () => {
    const x = join(tempDir(), 'x');
    const run = openRun(planRun('train', x));
    writeFileAtomic(run.path('best'), 'weights');
    run.release();
    const stage2 = openRun(planRun('retrain', runFile(x, 'stage2'), { within: x }));
    writeFileAtomic(stage2.path('classifiers'), 'heads');
    // Another process's `train --force X` (simulated: the lock names a live pid that is not ours).
    const holder = readFileSync(runFile(x, 'lock'), 'utf8');
    assert.equal(JSON.parse(holder).command, 'retrain');
    stage2.release();
    assert.equal(existsSync(runFile(x, 'lock')), false);
    assert.deepEqual(
      JSON.parse(readFileSync(runFile(x, 'manifest'), 'utf8')).entries.map((e: { path: string }) => e.path),
      [RUN_FILES.best, RUN_FILES.stage2],
    );
    // A live holder of X/stage2 (another process retraining) refuses a --force of X before anything goes.
    writeFileSync(
      runFile(join(x, 'stage2'), 'lock'),
      JSON.stringify({ pid: process.ppid, host: hostname(), command: 'retrain', startedAt: 't' }),
    );
    assert.throws(
      () => openRun(planRun('train', x, { force: true })),
      /stage2 is in use by another longtail process \(retrain/,
    );
    assert.ok(existsSync(runFile(x, 'best')));
    writeFileSync(
      runFile(x, 'lock'),
      JSON.stringify({ pid: process.ppid, host: hostname(), command: 'train', startedAt: 't' }),
    );
    assert.throws(
      () => openRun(planRun('retrain', join(x, 'stage2b'), { within: x })),
      /x is in use by another longtail process \(train/,
    );
    assert.equal(existsSync(join(x, 'stage2b')), false);
  });

  it('refuse a --out that is a file, before writing anything', () => {
    const file = join(tempDir(), 'x');
    writeFileSync(file, 'data');
    assert.throws(() => planRun('train', file), /--out .*x: is a file, expected a folder/);
    assert.equal(readFileSync(file, 'utf8'), 'data');
  });

  it('give two runs started in the same second their own default folders', () => {
    const parent = tempDir();
    const a = planRun('train', undefined, { parent });
    const b = { ...a }; // planned in the same second: the same candidate name
    const fa = openRun(a);
    const fb = openRun(b);
    assert.notEqual(fa.dir, fb.dir);
    assert.equal(fb.dir, `${a.dir}-2`);
    fa.release();
    fb.release();
  });

  it('are locked while written: a second writer is refused, a lock left by a dead process is taken over', () => {
    const dir = tempDir();
    const lock = acquireLock(dir, 'train');
    // Same process: the lock file exists, so a second acquisition (as another process would) fails.
    writeFileSync(
      runFile(dir, 'lock'),
      JSON.stringify({ pid: process.ppid, host: hostname(), command: 'demo', startedAt: 't' }),
    );
    assert.throws(() => acquireLock(dir, 'train'), /is in use by another longtail process \(demo, pid \d+/);
    assert.throws(() => assertNotLocked(dir), /in use by another longtail process/);
    writeFileSync(
      runFile(dir, 'lock'),
      JSON.stringify({ pid: deadPid(), host: hostname(), command: 'demo', startedAt: 't' }),
    );
    assertNotLocked(dir);
    const again = acquireLock(dir, 'train');
    assert.equal(JSON.parse(readFileSync(runFile(dir, 'lock'), 'utf8')).pid, process.pid);
    again.release();
    lock.release();
    assert.equal(existsSync(runFile(dir, 'lock')), false);
  });

  it('a stale lock is taken over by exactly one of many processes racing for it (10 rounds of 12)', async () => {
    const lib = new URL('./run-folder.ts', import.meta.url).href;
    // Each child, in round r, waits for that round's start, tries once, and if it got the lock holds
    // it 600 ms (past every other child's attempt), checking that the lock file names it throughout.
    const child = `
      const { acquireLock } = await import(${JSON.stringify(lib)});
      const { readFileSync } = await import('node:fs');
      const dirs = JSON.parse(process.argv[1]);
      // Loaded: say so, then wait for the common start time on stdin.
      console.log('ready');
      const at0 = await new Promise((res) => process.stdin.once('data', (d) => res(Number(String(d)))));
      process.stdin.destroy();
      const out = [];
      for (const [r, dir] of dirs.entries()) {
        const at = at0 + r * 1000;
        const late = Date.now() > at;
        // Sleep, not spin, until just before the start: 12 spinning processes would starve the slower loaders.
        if (at - Date.now() > 30) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, at - Date.now() - 30);
        while (Date.now() < at) {}
        let got = false, intact = true;
        try {
          const l = acquireLock(dir, 'race');
          got = true;
          while (Date.now() < at + 600) {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
            try { if (JSON.parse(readFileSync(dir + '/.longtail.lock', 'utf8')).pid !== process.pid) intact = false; } catch { intact = false; }
          }
          l.release();
        } catch (e) {
          if (!/in use by another longtail process|taking over its stale lock/.test(e.message)) throw e;
        }
        out.push({ got, intact, late });
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const { spawn } = await import('node:child_process');
    const dirs = Array.from({ length: 10 }, () => {
      const dir = tempDir();
      writeFileSync(
        runFile(dir, 'lock'),
        JSON.stringify({ pid: deadPid(), host: hostname(), command: 'demo', startedAt: 't' }),
      );
      return dir;
    });
    const children = Array.from({ length: 12 }, () => {
      const p = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', child, JSON.stringify(dirs)],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      let onReady: () => void = () => {};
      const ready = new Promise<void>((r) => {
        onReady = r;
      });
      p.stdout.on('data', (d) => {
        out += d;
        if (out.startsWith('ready\n')) onReady();
      });
      p.stderr.on('data', (d) => {
        err += d;
      });
      const done = new Promise<{ got: boolean; intact: boolean; late: boolean }[]>((res, rej) =>
        p.on('exit', (code) =>
          code === 0 ? res(JSON.parse(out.slice('ready\n'.length))) : rej(new Error(err)),
        ),
      );
      return { p, ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    const at0 = Date.now() + 500;
    for (const c of children) c.p.stdin.write(String(at0));
    const results = await Promise.all(children.map((c) => c.done));
    for (const [round, dir] of dirs.entries()) {
      const rows = results.map((r) => r[round]!);
      assert.ok(!rows.some((r) => r.late), `round ${round}: a process started late; the race did not happen`);
      const winners = rows.filter((r) => r.got);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} processes held the lock`);
      assert.ok(winners[0]!.intact, `round ${round}: the winner's lock was replaced while it held it`);
      assert.equal(existsSync(runFile(dir, 'lock')), false);
      assert.equal(existsSync(`${runFile(dir, 'lock')}.takeover`), false);
    }
  });

  it('remove temp files orphaned by a killed writer when opened, and atomic writes leave none', () => {
    const dir = tempDir();
    const orphan = `${RUN_FILES.checkpoint}.longtail-${deadPid()}-3.tmp`;
    const users = `${RUN_FILES.checkpoint}.${deadPid()}.3.tmp`;
    writeFileSync(join(dir, users), 'a file of the user that looks like an old temp name');
    writeFileSync(join(dir, orphan), 'half a checkpoint');
    const f = openRun(planRun('train', dir, { resume: true }));
    assert.equal(existsSync(join(dir, orphan)), false);
    assert.ok(existsSync(join(dir, users)));
    writeFileAtomic(join(dir, 'a.json'), '{}');
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [users],
    );
    f.release();
  });
});
