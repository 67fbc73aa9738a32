/**
 * Transparent huge pages for the big arrays a feature file is read into (Linux, through the
 * native addon's madvise; NumPy does the same for arrays of 4 MiB and more). A fresh array is
 * filled one page fault per 4 KiB page, which on a VM can cost as much as the read itself
 * (docs/benchmarks.md, "Reading: page faults").
 * Advice only: without the addon, off Linux, with LONGTAIL_NATIVE=0 or when the kernel grants
 * none, nothing changes.
 */
import { loadAddonModule } from '../native-addon.ts';

/** Arrays smaller than this are left alone (NumPy's threshold). */
export const HUGE_PAGE_MIN_BYTES = 4 << 20;

/** The addon's madvise, or null: off Linux, without the addon, with LONGTAIL_NATIVE=0. */
function advise(): ((view: ArrayBufferView) => number) | null {
  if (process.platform !== 'linux') return null;
  // An addon that does not load is doctor's business, not the reader's (loadAddonModule says why).
  const addon = loadAddonModule();
  return addon !== null && typeof addon.adviseHugePages === 'function' ? addon.adviseHugePages : null;
}

/**
 * Asks for huge pages under `view` (call it before the array is written); returns the bytes
 * advised, 0 when none.
 */
export function adviseHugePages(view: ArrayBufferView): number {
  if (view.byteLength < HUGE_PAGE_MIN_BYTES) return 0;
  const fn = advise();
  return fn ? fn(view) : 0;
}

/**
 * A new Float32Array of n zeros on huge pages where the kernel grants them: logits are hundreds
 * of MiB (50,000 x 1000 is 200 MB), and filling one 4 KiB page fault at a time cost about 1 CPU s
 * of NCM's 2 on this VM (docs/benchmarks.md, 2026-12-04 "Stage 2: NCM").
 */
export function bigFloats(n: number): Float32Array<ArrayBuffer> {
  const a = new Float32Array(n);
  adviseHugePages(a);
  return a;
}
