/**
 * The package as a user installs it: packed (prepack builds dist/), installed from the tarball into
 * a new project with production dependencies only and no network, then used from plain Node (an
 * ESM script trains a small model and runs stage 2: gradients without `@tensorflow/tfjs`), from a
 * strict TypeScript project (the README's library example against the installed .d.ts), and from
 * the command line (`npx longtail doctor --json`). Everything happens in a temporary folder.
 *
 * The install compiles the native addon as a user's does (npm's postinstall, about 20 CPU seconds):
 * no other test builds it from the tarball's files, and a build that fails there is not an install
 * failure (longtail falls back to the wasm kernels, about 3.5x slower), so only the assertions here
 * notice a package that ships without something the build needs: wherever the checkout's addon
 * runs, the installed package's must load and train.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { nativeStatus } from '../src/native-addon.ts';
import { installTarball, packPackage, ROOT, tarballFiles } from './helpers/package.ts';
import { tempDir } from './helpers/tmp.ts';

const TRAIN = `
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  DEFAULT_JOINT_CONFIG, disposeModel, featuresFromModel, initBackend, loadDataset, runStage2, trainJoint,
} from 'longtail';

const require = createRequire(import.meta.url);
const info = await initBackend();
const data = await loadDataset('fashion-mnist-lt', { maxPerClass: 6, imbalance: 2, valPerClass: 2 });
const { model, history } = await trainJoint(data, { ...DEFAULT_JOINT_CONFIG, epochs: 1, batchSize: 16, threads: 2 });
const features = featuresFromModel(model, { ...data, test: data.val });
const { results } = runStage2({ features, head: { batchSize: 16 } }, ['joint', 'ncm', 'crt', 'tau-norm', 'lws'], {
  settings: { crtEpochs: 1, lwsEpochs: 1 },
});
disposeModel(model);
console.log(JSON.stringify({
  backend: info.name,
  kernels: info.trainingKernels,
  nativeNote: info.nativeNote,
  trainImages: data.train.labels.length,
  loss: history[0].loss,
  entry: import.meta.resolve('longtail'),
  umbrella: existsSync(require.resolve('@tensorflow/tfjs-core').replace(/tfjs-core.*$/, 'tfjs')),
  methods: results.map((r) => [r.label, r.overall]),
}));
`;

/** Whether the checkout's own addon (built by its npm ci) runs here: then the installed one must. */
const NATIVE_HERE = nativeStatus();

/** The README's library example (the first ```ts block of "## Library"). */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const m = /^## Library\n[^#]*?```ts\n([\s\S]*?)\n```/m.exec(readme);
  assert.ok(m, 'README.md has a ```ts block in "## Library"');
  return m[1]!;
}

describe('the packed package, installed into a new project', { timeout: 600_000 }, () => {
  const dir = tempDir('longtail-package-');
  const project = join(dir, 'project');
  let tgz = '';

  before(() => {
    tgz = packPackage(dir);
    installTarball(tgz, project);
  });

  it('holds what users run and nothing else', () => {
    const files = tarballFiles(tgz);
    for (const f of [
      'package.json',
      'README.md',
      'bin/longtail.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/cli/main.js',
      'dist/backend/tfjs-registrations.js',
      'dist/train/parallel/worker.js',
      'dist/classifiers/sharded/head-worker.js',
      'native/binding.gyp',
      'scripts/build-native.mjs',
      'data/fashion-mnist/LICENSE',
      'data/fashion-mnist/SHA256SUMS',
      'data/fashion-mnist/train-images-idx3-ubyte.gz',
    ])
      assert.ok(files.includes(f), `${f} is in the tarball`);
    const unwanted = files.filter((f) => /^(src|test|bench|docs|tools)\/|\.test\.|^native\/build\//.test(f));
    assert.deepEqual(unwanted, []);
    // No dev tool at run time.
    assert.equal(existsSync(join(project, 'node_modules', 'tsx')), false);
    assert.equal(existsSync(join(project, 'node_modules', '@tensorflow', 'tfjs')), false);
  });

  it('trains and runs stage 2 from a plain ESM script (gradients without @tensorflow/tfjs)', () => {
    writeFileSync(join(project, 'train.mjs'), TRAIN);
    const r = spawnSync(process.execPath, ['train.mjs'], {
      cwd: project,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, LONGTAIL_BACKEND: '' },
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.backend, 'wasm');
    // The addon the install compiled trained the model (initBackend installs its kernels only
    // when it loads and the CPU runs them), wherever the checkout's runs.
    assert.equal(
      out.kernels === 'native',
      NATIVE_HERE.available,
      `installed: ${out.kernels} (${out.nativeNote})`,
    );
    if (NATIVE_HERE.available)
      assert.ok(
        existsSync(join(project, 'node_modules/longtail/native/build/Release/longtail_native.node')),
        'the install built the addon where dist/native-addon.js looks for it',
      );
    assert.match(out.entry, /node_modules\/longtail\/dist\/index\.js$/);
    assert.equal(out.umbrella, false);
    assert.ok(out.trainImages >= 20 && out.trainImages <= 60, String(out.trainImages));
    assert.ok(Number.isFinite(out.loss) && out.loss > 0);
    assert.deepEqual(
      out.methods.map(([label]: [string]) => label),
      ['Joint', 'NCM', 'cRT', 'tau-norm', 'LWS'],
    );
    for (const [, acc] of out.methods) assert.ok(acc >= 0 && acc <= 100);
  });

  it("type-checks the README's library example with strict tsc against the installed .d.ts", () => {
    writeFileSync(join(project, 'example.ts'), `${readmeExample()}\n`);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
          // @types/node as a user's project has it (a dev dependency there, and here).
          typeRoots: ['./node_modules/@types', join(ROOT, 'node_modules', '@types')],
        },
        files: ['example.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', '.'], { cwd: project, encoding: 'utf8' });
    // With skipLibCheck off, TypeScript 7 also reports errors inside tfjs's own declarations
    // (@webgpu/types against lib.dom, names from @types/long and emscripten): upstream, the same
    // for any project importing tfjs-core, and not longtail's. Everything else must be clean.
    const errors = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => /error TS\d+/.test(l))
      .filter((l) => !/(node_modules\/@tensorflow\/|node_modules\/@webgpu\/|\/lib\.dom\.d\.ts)/.test(l));
    assert.deepEqual(errors, []);
    assert.ok(r.status === 0 || /error TS/.test(r.stdout), `${r.stdout}${r.stderr}`);
  });

  it('renders SVG and PNG charts with no optional peer, and the report shows them', () => {
    // Neither vega nor onnx-proto's protobufjs 6 is installed: the renderer is bundled in dist/.
    for (const absent of ['vega', 'vega-lite', 'onnx-proto', 'protobufjs'])
      assert.equal(existsSync(join(project, 'node_modules', absent)), false, `${absent} is not installed`);
    // A small feature file (3 classes, 8 dims) written through the public API, then retrained by
    // the CLI: the run folder's charts and report.html.
    writeFileSync(
      join(project, 'features.mjs'),
      `import { saveFeatureFile } from 'longtail';
const split = (per) => {
  const labels = Int32Array.from(per.flatMap((n, c) => Array(n).fill(c)));
  const features = Float32Array.from({ length: labels.length * 8 }, (_, i) =>
    (labels[Math.floor(i / 8)] === i % 8 ? 3 : 0) + Math.sin(i * 12.9898) * 0.5);
  return { features, labels };
};
const train = split([30, 10, 3]);
saveFeatureFile('features.npz', { dim: 8, numClasses: 3, classNames: ['cat', 'dog <b>', 'eel'],
  trainCounts: [30, 10, 3], train, val: split([4, 4, 4]), test: split([6, 6, 6]), classifier: null });
`,
    );
    const f = spawnSync(process.execPath, ['features.mjs'], { cwd: project, encoding: 'utf8' });
    assert.equal(f.status, 0, f.stderr);
    const out = join(dir, 'run');
    const env = { ...process.env, LONGTAIL_BACKEND: '', npm_config_offline: 'true' };
    const r = spawnSync(
      'npx',
      [
        'longtail',
        'retrain',
        '--features',
        'features.npz',
        '--method',
        'ncm,crt',
        '--crt-epochs',
        '1',
        '--stage2-batch-size',
        '16',
        '--out',
        out,
      ],
      { cwd: project, encoding: 'utf8', env, timeout: 300_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /vega|Vega-Lite specs only/);
    const charts = readdirSync(join(out, 'charts'));
    const svgs = charts.filter((c) => c.endsWith('.svg'));
    assert.ok(svgs.length >= 3, `charts: ${charts.join(', ')}`);
    for (const svg of svgs) {
      assert.match(readFileSync(join(out, 'charts', svg), 'utf8'), /^<svg[^>]*>[\s\S]*<\/svg>$/);
      const png = readFileSync(join(out, 'charts', svg.replace(/\.svg$/, '.png')));
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.equal((html.match(/<figure id="[^"]+"( class="wide")?><svg/g) ?? []).length, svgs.length);
  });

  it('runs `npx longtail doctor --json` and `--version` from the project', () => {
    const env = { ...process.env, LONGTAIL_BACKEND: '', npm_config_offline: 'true' };
    const v = spawnSync('npx', ['longtail', '--version'], { cwd: project, encoding: 'utf8', env });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
    const r = spawnSync('npx', ['longtail', 'doctor', '--json'], {
      cwd: project,
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.backend, 'wasm');
    assert.equal(j.bundledData.ok, true);
    if (NATIVE_HERE.available)
      assert.deepEqual([j.trainingKernels, j.nativeKernels], ['native', 'available']);
  });
});
