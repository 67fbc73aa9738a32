import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { avx512Status, bf16Status, loadAddonModule, loadNativeAddon, nativeStatus } from './native-addon.ts';

const SRC = fileURLToPath(new URL('./', import.meta.url));

/** Every non-test TypeScript file under src/, relative to it. */
function sources(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [relative(SRC, path)] : [];
  });
}

describe('the native addon binding', () => {
  it('is the only source file that names the addon or requires a native module', () => {
    const loaders = sources().filter((f) => {
      const text = readFileSync(join(SRC, f), 'utf8');
      return text.includes('longtail_native') || /createRequire\([^)]*\)\(\s*[A-Z_]*ADDON/.test(text);
    });
    assert.deepEqual(loaders, ['native-addon.ts']);
  });

  it('loads the addon once and gives every user the same module and a consistent status', () => {
    const status = nativeStatus();
    const kernels = loadNativeAddon();
    assert.equal(loadNativeAddon(), kernels);
    assert.equal(kernels !== null, status.available);
    assert.equal(status.reason === '', status.available);
    // The module as loaded is the same object the kernels get (huge pages use it whatever the CPU).
    if (kernels !== null) assert.equal(loadAddonModule(), kernels);
    for (const s of [avx512Status(), bf16Status()]) {
      assert.equal(s.reason === '', s.available);
      if (!status.available) assert.match(s.reason, /^no native kernels \(/);
    }
  });
});
