/**
 * The PyTorch yardstick's process environment and the bench's load mark (no TensorFlow.js here,
 * so the harness test can import it cheaply).
 *
 * This machine sets OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE for every process (older
 * OpenBLAS builds crash on the CPU without them). They force OpenBLAS's AVX2 kernels: a
 * 128x2048 by 2048x1000 product ran 1.3-3x slower with them. Only the PyTorch process the bench
 * starts runs without them; the bench's own process, the tests and CI keep them.
 */

/** Variables removed from the PyTorch process's environment. */
export const UNSET_FOR_TORCH = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;

/**
 * glibc malloc settings for the PyTorch process: every allocation from the heap, which is never
 * trimmed. By default glibc serves blocks of 128 KiB and more (PyTorch's activations) with mmap and
 * returns them on free, so every step faults its buffers in again; first touches are slow on this
 * VM, and that cost PyTorch several times its CPU time (measured in docs/benchmarks.md). Tuned
 * PyTorch CPU installs do the same with jemalloc or tcmalloc; longtail's kernels reuse one arena.
 */
export const MALLOC_FOR_TORCH = {
  MALLOC_MMAP_THRESHOLD_: String(2 ** 32),
  MALLOC_TRIM_THRESHOLD_: String(2 ** 32),
  MALLOC_TOP_PAD_: String(2 ** 30),
} as const;

/** Thread-count variables set to the case's threads (OpenMP, OpenBLAS, MKL and BLIS pools). */
export const THREAD_VARS = [
  'OMP_NUM_THREADS',
  'OPENBLAS_NUM_THREADS',
  'MKL_NUM_THREADS',
  'BLIS_NUM_THREADS',
] as const;

/**
 * The environment for one PyTorch process: a copy of `base` without UNSET_FOR_TORCH, with every
 * THREAD_VARS entry set to `threads`, OMP_WAIT_POLICY PASSIVE unless `base` sets it (spinning
 * OpenMP threads made a 2-thread cRT 50-100x slower on a loaded machine), MALLOC_FOR_TORCH
 * unless `base` sets a variable of it, and `blasDir` (a
 * folder with an OpenBLAS libblas.so.3, --torch-blas) first on LD_LIBRARY_PATH. `base` is not changed.
 */
export function torchEnv(
  base: NodeJS.ProcessEnv,
  threads: number,
  blasDir: string | null = null,
): NodeJS.ProcessEnv {
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(`torchEnv: threads must be a positive integer, got ${threads}`);
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of UNSET_FOR_TORCH) delete env[k];
  for (const k of THREAD_VARS) env[k] = String(threads);
  env.OMP_WAIT_POLICY = base.OMP_WAIT_POLICY ?? 'PASSIVE';
  for (const [k, v] of Object.entries(MALLOC_FOR_TORCH)) env[k] = base[k] ?? v;
  if (blasDir !== null)
    env.LD_LIBRARY_PATH = base.LD_LIBRARY_PATH ? `${blasDir}:${base.LD_LIBRARY_PATH}` : blasDir;
  return env;
}

/**
 * A case whose 1-minute load average exceeded its own threads plus this while it ran is marked as
 * loaded: the case itself holds the load near its thread count, so a fixed limit marked every
 * 2-thread case of a quiet run.
 */
export const LOADED_ABOVE = 0.5;

/** The load average above which a case of `threads` threads counts as loaded. */
export const loadedLimit = (threads: number): number => threads + LOADED_ABOVE;

/** The ratio of medians and the min-max of the paired rounds' ratios (above 1: longtail faster). */
export function pairedRatio(
  ours: number[],
  theirs: number[],
  unit: string,
): { median: number; min: number; max: number } {
  if (ours.length === 0 || ours.length !== theirs.length)
    throw new Error(`pairedRatio: ${ours.length} rounds of longtail against ${theirs.length} of PyTorch`);
  const speed = (a: number, b: number) => (unit === 's' ? b / a : a / b);
  const per = ours.map((o, i) => speed(o, theirs[i]!));
  return { median: speed(median(ours), median(theirs)), min: Math.min(...per), max: Math.max(...per) };
}

export function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
