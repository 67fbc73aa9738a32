// Builds the native convolution kernels (native/, a Node-API addon) with node-gyp and the
// machine's C++ compiler. Run by `npm ci` (postinstall) and `npm run build:native`.
//
// A failed build is not an install failure: longtail then runs the tfjs wasm kernels (the same
// computation, about 3.5x slower training) and `longtail doctor` says why. Set
// LONGTAIL_NATIVE_REQUIRED=1 to make a failed build fail the install instead.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'native');

/** node-gyp: the one npm runs lifecycle scripts with, else npm's bundled copy, else PATH. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) {
    candidates.push(
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  }
  for (const c of candidates) if (c && existsSync(c)) return [process.execPath, c];
  return ['node-gyp'];
}

if (process.env.LONGTAIL_NATIVE === '0') {
  console.log('longtail: LONGTAIL_NATIVE=0, native kernels not built');
  process.exit(0);
}
const [cmd, ...pre] = nodeGyp();
const r = spawnSync(cmd, [...pre, 'rebuild'], {
  cwd: nativeDir,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
if (r.status === 0) {
  console.log('longtail: native kernels built (native/build/Release/longtail_native.node)');
  process.exit(0);
}
const log = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`
  .trim()
  .split('\n')
  .slice(-15)
  .join('\n');
console.warn(
  `longtail: could not build the native convolution kernels; the slower wasm kernels will run.\n${log}\n` +
    '(needs python3, make and a C++ compiler for node-gyp; retry with `npm run build:native`)',
);
process.exit(process.env.LONGTAIL_NATIVE_REQUIRED === '1' ? 1 : 0);
