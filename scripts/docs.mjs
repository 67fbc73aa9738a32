// `npm run docs`: the API reference, generated from the doc comments of what src/index.ts exports,
// as Markdown in docs/api/ (TypeDoc with typedoc-plugin-markdown). TypeDoc needs TypeScript's
// JavaScript API, which typescript@7 (the project's compiler) does not have, so TypeDoc and a
// typescript@6 for it live in tools/docs/ (installed by `npm ci` as a linked dev dependency).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TOOLS = join(ROOT, 'tools', 'docs', 'node_modules');
const out = join(ROOT, 'docs', 'api');

rmSync(out, { recursive: true, force: true });
const r = spawnSync(
  process.execPath,
  [
    join(TOOLS, 'typedoc', 'bin', 'typedoc'),
    '--tsconfig',
    join(ROOT, 'tsconfig.build.json'),
    '--entryPoints',
    join(ROOT, 'src', 'index.ts'),
    '--plugin',
    join(TOOLS, 'typedoc-plugin-markdown', 'dist', 'index.js'),
    '--out',
    out,
    '--name',
    'longtail API',
    '--readme',
    'none',
    '--excludePrivate',
    '--excludeInternal',
    '--hideGenerator',
    '--disableSources',
    '--skipErrorChecking',
    '--logLevel',
    'Warn',
  ],
  { cwd: ROOT, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
