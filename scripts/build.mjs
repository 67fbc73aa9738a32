// `npm run build` (and prepack): compiles src/ to dist/ (.js, .d.ts, source maps with the sources
// inlined, since src/ is not in the package), then bundles tfjs-core's gradient and chained-method
// registrations beside the compiled backend (see bundle-tfjs.mjs), the live report's page script
// beside the compiled report (bundle-live.mjs), the chart renderer (vega + vega-lite, bundle-vega.mjs)
// and onnx-proto with protobufjs 7 (bundle-onnx-proto.mjs), whose import in dist/ is pointed at the
// bundled copy. dist/ is rebuilt from scratch each time.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--out DIR` builds elsewhere (the test runner's compiled CLI, scripts/run-tests.mjs); DIR must sit
// in a folder laid out like the repository (package.json, native/, data/ beside it).
const at = process.argv.indexOf('--out');
const outDir = at > 0 && process.argv[at + 1] ? process.argv[at + 1] : join(ROOT, 'dist');

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/package.json');
run([join(dirname(tsc), 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir]);
run([join(ROOT, 'scripts', 'bundle-tfjs.mjs'), join(outDir, 'backend', 'tfjs-registrations.js')]);
run([join(ROOT, 'scripts', 'bundle-live.mjs'), join(outDir, 'report', 'live', 'page-script.js')]);
run([join(ROOT, 'scripts', 'bundle-vega.mjs'), join(outDir, 'report', 'vega-bundle.js')]);
run([join(ROOT, 'scripts', 'bundle-onnx-proto.mjs'), join(outDir, 'vendor', 'onnx-proto.js')]);

// onnx-proto is a dev dependency (its protobufjs 6 is 22 MB): each compiled file that imports it
// (the ONNX reader, the external-data checks) imports the bundle instead.
const from = "from 'onnx-proto';";
const readers = [join('models', 'onnx-file.js'), join('io', 'onnx-external.js')];
for (const rel of readers) {
  const file = join(outDir, rel);
  const src = readFileSync(file, 'utf8');
  if (src.split(from).length !== 2) {
    process.stderr.write(`build: expected one import of onnx-proto in ${file}\n`);
    process.exit(1);
  }
  writeFileSync(file, src.replace(from, "from '../vendor/onnx-proto.js';"));
}
// Any other compiled import of it would fail in a user's install: refuse to build.
for (const e of readdirSync(outDir, { recursive: true, withFileTypes: true })) {
  if (!e.isFile() || !e.name.endsWith('.js') || (e.parentPath ?? e.path).endsWith('vendor')) continue;
  const file = join(e.parentPath ?? e.path, e.name);
  if (readFileSync(file, 'utf8').includes(from)) {
    process.stderr.write(
      `build: ${file} imports onnx-proto, which the package does not install; add it to the readers\n`,
    );
    process.exit(1);
  }
}
