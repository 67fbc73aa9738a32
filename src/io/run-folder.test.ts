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
  it('refuse a non-empty --out unless forced, and --force replaces only the files longtail writes', () => {
    const dir = join(tempDir(), 'run');
    mkdirSync(dir);
    writeFileSync(join(dir, RUN_FILES.config), '{"old": true}');
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    assert.throws(
      () => planRun('train', dir),
      /--out .*run: the folder is not empty \(.*\); choose a new folder, or --force/,
    );
    const f = openRun(planRun('train', dir, { force: true }));
    assert.deepEqual(readdirSync(dir).sort(), [RUN_FILES.lock, 'notes.txt']);
    f.release();
    assert.deepEqual(readdirSync(dir), ['notes.txt']);
  });

  it("--force on a folder of runs removes the old seeds' runs too, and nothing of the user's", () => {
    const dir = join(tempDir(), 'seeds');
    const run = (d: string, command: string) => {
      mkdirSync(join(d, RUN_FILES.charts), { recursive: true });
      writeFileSync(join(d, RUN_FILES.config), JSON.stringify({ command }));
      writeFileSync(join(d, RUN_FILES.results), '{}');
    };
    run(dir, 'seeds');
    writeFileSync(join(dir, RUN_FILES.seedSummary), '{}');
    writeFileSync(join(dir, RUN_FILES.seedSummaryMarkdown), '|');
    for (const s of [0, 1, 7]) run(join(dir, `seed-${s}`), 'demo');
    writeFileSync(join(dir, 'seed-7', 'notes.txt'), 'mine');
    mkdirSync(join(dir, 'plots'));
    writeFileSync(join(dir, 'plots', 'a.png'), 'mine');
    mkdirSync(join(dir, 'empty-of-mine'));
    const f = openRun(planRun('demo', dir, { force: true }));
    f.release();
    assert.deepEqual(readdirSync(dir).sort(), ['empty-of-mine', 'plots', 'seed-7']);
    assert.deepEqual(readdirSync(join(dir, 'seed-7')), ['notes.txt']);
    assert.deepEqual(readdirSync(join(dir, 'plots')), ['a.png']);

    // A study's cells sit one level deeper (SAMPLER/seed-<n>/), and its chart is study.{vl.json,svg,png}.
    const study = join(tempDir(), 'study');
    run(study, 'study');
    for (const ext of ['.vl.json', '.svg', '.png']) writeFileSync(join(study, `study${ext}`), 'x');
    writeFileSync(join(study, RUN_FILES.study), '{}');
    for (const s of [0, 1]) run(join(study, 'class-balanced', `seed-${s}`), 'demo');
    openRun(planRun('study samplers', study, { force: true })).release();
    assert.deepEqual(readdirSync(study), []);
  });

  it('--force on an ordinary run does not look into its sub-folders (a folder of runs forced by mistake)', () => {
    const dir = join(tempDir(), 'runs');
    mkdirSync(join(dir, 'exp1'), { recursive: true });
    writeFileSync(join(dir, RUN_FILES.config), JSON.stringify({ command: 'train' }));
    writeFileSync(join(dir, 'exp1', RUN_FILES.config), JSON.stringify({ command: 'train' }));
    writeFileSync(join(dir, 'exp1', RUN_FILES.best), 'weights');
    openRun(planRun('train', dir, { force: true })).release();
    assert.deepEqual(readdirSync(dir), ['exp1']);
    assert.deepEqual(readdirSync(join(dir, 'exp1')).sort(), [RUN_FILES.best, RUN_FILES.config]);
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

  it('remove temp files orphaned by a killed writer when opened, and atomic writes leave none', () => {
    const dir = tempDir();
    const orphan = `${RUN_FILES.checkpoint}.${deadPid()}.3.tmp`;
    writeFileSync(join(dir, orphan), 'half a checkpoint');
    const f = openRun(planRun('train', dir, { resume: true }));
    assert.equal(existsSync(join(dir, orphan)), false);
    writeFileAtomic(join(dir, 'a.json'), '{}');
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
    );
    f.release();
  });
});
