#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so `npx longtail` works after `npm ci` with no build.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
