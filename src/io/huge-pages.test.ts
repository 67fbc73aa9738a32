import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runIsolated } from '../../test/helpers/isolated.ts';
import { ADDON_PATH } from '../native-addon.ts';
import { adviseHugePages, HUGE_PAGE_MIN_BYTES } from './huge-pages.ts';

const skip =
  process.platform !== 'linux' || !existsSync(ADDON_PATH) ? 'needs Linux and the native addon' : false;

/** KiB of this process's mappings the kernel marks as advised for huge pages (VmFlags `hg`). */
function advisedKiB(): number {
  let total = 0;
  let size = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (line.startsWith('Size:')) size = Number(line.split(/\s+/)[1]);
    else if (line.startsWith('VmFlags:') && line.split(/\s+/).includes('hg')) total += size;
  }
  return total;
}

describe('huge pages for big arrays', { skip }, () => {
  it('marks the 2 MiB-aligned part of a big array, shared or not, as huge-page memory, and leaves it zero and writable', () => {
    for (const Buf of [ArrayBuffer, SharedArrayBuffer]) {
      const bytes = 64 << 20;
      const before = advisedKiB();
      const a = new Float32Array(new Buf(bytes));
      const advised = adviseHugePages(a);
      // All of it but the unaligned ends (less than 2 MiB each).
      assert.ok(advised > bytes - (4 << 20) && advised <= bytes && advised % (2 << 20) === 0, `${advised}`);
      assert.ok(advisedKiB() - before >= advised / 1024, `${advisedKiB() - before} KiB marked`);
      assert.equal(
        a.every((v) => v === 0),
        true,
      );
      a.fill(1.5);
      assert.equal(a[a.length - 1], 1.5);
    }
  });

  it('leaves small arrays alone, and does nothing with LONGTAIL_NATIVE=0', () => {
    assert.equal(adviseHugePages(new Float32Array(HUGE_PAGE_MIN_BYTES / 4 - 1)), 0);
    const mod = JSON.stringify(fileURLToPath(new URL('./huge-pages.ts', import.meta.url)));
    const r = runIsolated(
      `import { adviseHugePages } from ${mod}; console.log(adviseHugePages(new Uint8Array(64 << 20)));`,
      { env: { LONGTAIL_NATIVE: '0' } },
    );
    assert.equal(r.stdout.trim(), '0', r.stderr);
  });
});
