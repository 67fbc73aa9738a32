/**
 * Transparent huge pages for the big arrays a feature file is read into (Linux, through the
 * native addon's madvise; NumPy does the same for arrays of 4 MiB and more). A fresh array is
 * filled one page fault per 4 KiB page, which on a VM can cost as much as the read itself
 * (docs/benchmarks.md, "Reading: page faults").
 * Advice only: without the addon, off Linux, with LONGTAIL_NATIVE=0 or when the kernel grants
 * none, nothing changes.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Arrays smaller than this are left alone (NumPy's threshold). */
export const HUGE_PAGE_MIN_BYTES = 4 << 20;

const ADDON = fileURLToPath(new URL('../../native/build/Release/longtail_native.node', import.meta.url));

type Advise = (view: ArrayBufferView) => number;
let advise: Advise | null | undefined;

function load(): Advise | null {
  if (advise !== undefined) return advise;
  advise = null;
  const flag = process.env.LONGTAIL_NATIVE;
  if (process.platform !== 'linux' || flag === '0' || flag === 'false' || !existsSync(ADDON)) return null;
  try {
    const addon = createRequire(import.meta.url)(ADDON) as { adviseHugePages?: Advise };
    advise = typeof addon.adviseHugePages === 'function' ? addon.adviseHugePages : null;
  } catch {
    advise = null; // an addon that does not load is doctor's business, not the reader's
  }
  return advise;
}

/**
 * Asks for huge pages under `view` (call it before the array is written); returns the bytes
 * advised, 0 when none.
 */
export function adviseHugePages(view: ArrayBufferView): number {
  if (view.byteLength < HUGE_PAGE_MIN_BYTES) return 0;
  const fn = load();
  return fn ? fn(view) : 0;
}
