// `npm run build` (and prepack): compiles src/ to dist/ (.js, .d.ts, source maps with the sources
// inlined, since src/ is not in the package), then bundles tfjs-core's gradient and chained-method
// registrations beside the compiled backend (see bundle-tfjs.mjs) and the live report's page script
// beside the compiled report (bundle-live.mjs). dist/ is rebuilt from scratch each time.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(ROOT, 'dist');

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/package.json');
run([join(dirname(tsc), 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
run([join(ROOT, 'scripts', 'bundle-tfjs.mjs'), join(outDir, 'backend', 'tfjs-registrations.js')]);
run([join(ROOT, 'scripts', 'bundle-live.mjs'), join(outDir, 'report', 'live', 'page-script.js')]);
