// Runs every *.test.ts under src/ and test/ with Node's test runner (through tsx).
// Node 20's runner does not glob .ts files itself, hence this list. `--conditions=longtail-source`
// makes `import ... from 'longtail'` in a test resolve to src/index.ts (package.json "exports"),
// as `customConditions` does for tsc; the installed package resolves to dist/.
//
// Tests leave no trace: before the tests this takes a snapshot of the repository (git status with
// ignored and untracked files, each listed file's size and mtime, and every directory, since git
// does not see an empty one); after them it takes another and fails, listing the paths, if
// anything appeared, changed or went away. It compares the two snapshots, not the tree against a
// clean checkout, so the developer's own uncommitted or ignored files do not count. node_modules/,
// native/build/ and tools/docs/node_modules/ (all written by npm ci) are left out. Without git the
// check is skipped, with a note.
import { spawn, spawnSync } from 'node:child_process';
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const EXCLUDED = ['node_modules', 'native/build', 'tools/docs/node_modules'];

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const excluded = (p) => EXCLUDED.some((e) => p === e || p.startsWith(`${e}/`));

/** Size and mtime of a path (relative to ROOT), or 'missing'. */
function fingerprint(rel) {
  try {
    const s = lstatSync(join(ROOT, rel));
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** Every directory under ROOT (relative, with a trailing /), without .git and the excluded ones. */
function directories(rel = '', out = new Set()) {
  for (const e of readdirSync(join(ROOT, rel), { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === '.git') continue; // isDirectory: symbolic links are not followed
    const p = rel === '' ? e.name : `${rel}/${e.name}`;
    if (excluded(p)) continue;
    out.add(`${p}/`);
    directories(p, out);
  }
  return out;
}

/**
 * The repository's state as a map from path to 'status size:mtime' (files git lists: changed,
 * untracked, ignored) or 'directory', or a string saying why there is none (no git, not a repository).
 */
function snapshot() {
  const r = spawnSync(
    'git',
    [
      '-c',
      'core.quotePath=false',
      'status',
      '--porcelain=v1',
      '-z',
      '--ignored',
      '--untracked-files=all',
      '--',
      '.',
      ...EXCLUDED.map((e) => `:(exclude)${e}`),
    ],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  if (r.error) return `git could not be run (${r.error.code ?? r.error.message})`;
  if (r.status !== 0) return `git status failed: ${r.stderr.trim()}`;
  const state = new Map();
  const fields = r.stdout.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    if (f.length < 4) continue;
    const status = f.slice(0, 2);
    const path = f.slice(3);
    if (status.includes('R') || status.includes('C')) i++; // the next field is the source path
    if (excluded(path)) continue;
    state.set(path, `${status} ${fingerprint(path)}`);
  }
  for (const d of directories()) if (!state.has(d)) state.set(d, 'directory');
  return state;
}

const NEW = { '??': 'new file (untracked)', '!!': 'new file (ignored)' };

/** The paths whose state differs between two snapshots, each with what happened. */
function traces(before, after) {
  const out = [];
  for (const [path, now] of after) {
    const was = before.get(path);
    const [a, b] = [was?.slice(0, 2), now.slice(0, 2)];
    if (was === undefined)
      out.push([path, now === 'directory' ? 'new directory' : (NEW[b] ?? `changed (git status '${b}')`)]);
    else if (was !== now)
      out.push([path, a === b ? 'changed (size or mtime)' : `changed ('${a}' -> '${b}')`]);
  }
  for (const [path, was] of before)
    if (!after.has(path))
      out.push([
        path,
        was === 'directory' ? 'directory removed' : 'removed, or restored to its committed state',
      ]);
  // A new directory is worth a line only when nothing listed lies inside it.
  return out
    .filter(([p, what]) => what !== 'new directory' || !out.some(([q]) => q !== p && q.startsWith(p)))
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

/**
 * The slowest files, slowest first (sums of top-level durations from the last whole runs, which
 * scripts/test-times.mjs prints at the end). Node's runner starts files in the order given, so
 * these start first and the short files fill the gaps: started last (as in alphabetical order),
 * a 2-minute file alone on one core would be the suite's tail. Keep it roughly in step with the
 * printed list; a file missing here just starts in alphabetical order after these.
 */
const SLOW_FIRST = [
  'test/run-safety.test.ts',
  'test/package.test.ts',
  'test/report-browser.test.ts',
  'test/adapt-prior.test.ts',
  'test/deploy.test.ts',
  'test/torchrun.test.ts',
  'test/pipeline.test.ts',
  'test/onnx.test.ts',
  'src/data/image-folder.test.ts',
  'test/onnx-move.test.ts',
  'test/pytorch-example.test.ts',
  'test/report-live.test.ts',
  'test/report-compare.test.ts',
  'test/cli.test.ts',
];
const rank = (f) => {
  const i = SLOW_FIRST.indexOf(f);
  return i === -1 ? SLOW_FIRST.length : i;
};

const filter = process.argv.slice(2);
const files = ['src', 'test']
  .flatMap((d) => find(join(ROOT, d)).map((f) => f.slice(ROOT.length + 1)))
  .filter((f) => filter.length === 0 || filter.some((s) => f.includes(s)))
  .sort()
  .sort((a, b) => rank(a) - rank(b));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

/**
 * The command line the tests run (test/helpers/cli.ts), compiled as the package ships it: built once
 * into a temporary folder laid out like the repository (its other entries linked), so a test's
 * `longtail` costs a plain Node start instead of tsx compiling every module again (about half the
 * CPU per call; the tests start it about 160 times), and the tests exercise the compiled code users
 * install. Stack traces map back to src/ (--enable-source-maps). Only when a chosen file uses it.
 */
function buildCli() {
  const dir = mkdtempSync(join(tmpdir(), 'longtail-cli-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const name of readdirSync(ROOT))
    if (!['dist', 'src', '.git'].includes(name)) symlinkSync(join(ROOT, name), join(dir, name));
  const status = join(dir, 'build-status.json');
  let output = '';
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--out', join(dir, 'dist')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  child.on('error', (e) => {
    output += String(e);
  });
  /** Resolves when the build has ended: null, or the compiler's output when it failed. */
  const finished = new Promise((resolve) =>
    child.on('close', (code) => {
      writeFileSync(`${status}.tmp`, JSON.stringify({ ok: code === 0, output }));
      renameSync(`${status}.tmp`, status);
      resolve(code === 0 ? null : output);
    }),
  );
  return { bin: join(dir, 'dist', 'cli', 'main.js'), status, finished };
}

// The build (tsc over the whole project: about half a minute of one core) runs beside the first
// test files: test/helpers/cli.ts waits for LONGTAIL_TEST_CLI_STATUS, the file written when the build
// ends, so only the files that use the command line wait, and the others use the second core.
const env = { ...process.env };
let build = null;
if (files.some((f) => readFileSync(join(ROOT, f), 'utf8').includes('helpers/cli.ts'))) {
  build = buildCli();
  env.LONGTAIL_TEST_CLI = build.bin;
  env.LONGTAIL_TEST_CLI_STATUS = build.status;
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --enable-source-maps`.trim();
}

// Files run side by side, one per core and at least two (a file often waits on a child process it
// started); LONGTAIL_TEST_CONCURRENCY overrides, e.g. where a CPU quota hides behind many cores.
const concurrency = Number(process.env.LONGTAIL_TEST_CONCURRENCY) || Math.max(2, availableParallelism());
env.LONGTAIL_TEST_CONCURRENCY = String(concurrency); // for scripts/test-files.mjs and test-times.mjs

const before = snapshot();
if (typeof before === 'string')
  console.error(`note: ${before}; skipping the check that tests write nothing inside the repository`);

const tests = spawn(
  process.execPath,
  ['--conditions=longtail-source', '--import', 'tsx', join(ROOT, 'scripts', 'test-files.mjs'), ...files],
  { stdio: 'inherit', cwd: ROOT, env },
);
let status = (await new Promise((resolve) => tests.on('close', resolve))) ?? 1;
const buildError = build === null ? null : await build.finished;
if (buildError !== null) {
  console.error(`building the command line for the tests failed:\n${buildError}`);
  status = 1;
}

if (typeof before !== 'string') {
  const after = snapshot();
  const found = typeof after === 'string' ? [] : traces(before, after);
  if (typeof after === 'string') console.error(`note: ${after}; the check for traces could not finish`);
  if (found.length > 0) {
    console.error(
      `\nthe tests left traces inside the repository (${ROOT}); tests must write only into temporary folders (test/helpers/tmp.ts):`,
    );
    for (const [path, what] of found) console.error(`  ${path}  ${what}`);
    console.error('(changes made by hand while the tests ran show here too; then run the tests again)');
    if (status === 0) status = 1;
  }
}
process.exit(status);
