#!/usr/bin/env node
// The `longtail` command. Installed from npm, the package has dist/ (compiled JavaScript) and no
// src/, and this runs dist/cli/main.js. In a repository checkout src/ exists, and this runs the
// TypeScript sources through tsx (a dev dependency), so `npm start` and `npx longtail` work after
// `npm ci` with no build step and never run a stale dist/.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(
      'longtail: this is a source checkout and tsx is missing: run `npm ci` (dev dependencies included)\n',
    );
    process.exit(1);
  }
  register();
  await (await import(source.href)).runAsProcess();
} else {
  await (await import('../dist/cli/main.js')).runAsProcess();
}
