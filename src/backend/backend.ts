/**
 * The one place that decides which TensorFlow.js backend runs.
 *
 * Order when nothing is asked for: `tensorflow` (native tfjs-node, only if the user installed
 * it: it is not a dependency because its install downloads a binary), then `wasm` (SIMD), then
 * `cpu`. `--backend NAME` or `LONGTAIL_BACKEND=NAME` asks for one by name.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core's Node entry registers no gradients and no chained tensor methods: this is tfjs-core's
// own registration of both, bundled for Node by scripts/bundle-tfjs.mjs (generated at `npm ci`
// and `npm run build`). It comes after tfjs-core so that both share the engine tfjs-core created.
import './tfjs-registrations.js';
import { ConfigError, UserError } from '../errors.ts';
import { nativeStatus } from '../native-addon.ts';
import { installWasmTrainingKernels, type TrainingKernels, trainingKernels } from './training-kernels.ts';

// PROD silences tfjs's console advice (e.g. the cpu backend's "install tfjs-node" banner on
// first use); longtail's own `doctor` says which backend runs and why.
tf.env().set('PROD', true);

export const BACKEND_NOT_STARTED =
  'the compute backend is not started: call `await initBackend()` (from longtail) before the rest of the API';

/**
 * The API before `initBackend()` fails with one line that says what to do. Left alone, tfjs would
 * start initialising the wasm backend on the first tensor (its Emscripten glue then owns the
 * process's uncaught-exception handler) and throw "await tf.ready()", a call longtail users never
 * make. The first tensor reads the engine's `backend` getter; this instance-level getter refuses
 * while no backend is set or starting, and otherwise defers to tfjs's.
 */
function refuseUnstartedBackend(): void {
  interface EngineState {
    backendInstance: unknown;
    pendingBackendInit: unknown;
  }
  const engine = tf.engine() as unknown as EngineState;
  const inherited = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(engine), 'backend')?.get;
  if (inherited === undefined || Object.hasOwn(engine, 'backend')) return;
  Object.defineProperty(engine, 'backend', {
    configurable: true,
    get(this: EngineState) {
      if (this.backendInstance == null && this.pendingBackendInit == null)
        throw new UserError(BACKEND_NOT_STARTED);
      return inherited.call(this);
    },
  });
}
refuseUnstartedBackend();

/**
 * Runs `start` (a backend's initialisation) and removes the process-wide `uncaughtException` /
 * `unhandledRejection` listeners it added: the wasm backend's Emscripten glue rethrows every
 * uncaught error from inside its own minified file, which then heads the user's terminal output.
 * Node's own handling (print the error, exit 1) is the same without that line.
 */
async function withoutGlueListeners<T>(start: () => Promise<T>): Promise<T> {
  const proc: NodeJS.EventEmitter = process;
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = new Map(events.map((e) => [e, new Set(proc.listeners(e))]));
  try {
    return await start();
  } finally {
    for (const e of events)
      for (const l of proc.listeners(e))
        if (!before.get(e)!.has(l)) proc.removeListener(e, l as (...args: unknown[]) => void);
  }
}

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  name: BackendName;
  simd: boolean | null;
  threads: boolean | null;
  /** On wasm: the convolution kernels that run (`native`: the AVX2 addon); null elsewhere. */
  trainingKernels: TrainingKernels | null;
  /** Why the native kernels do not run, when they do not ('' when they do). */
  nativeNote: string;
  tfjsVersion: string;
}

async function tryNative(): Promise<boolean> {
  if (tf.findBackend('tensorflow') !== null) return true;
  try {
    // Optional peer: registers the `tensorflow` backend on import when present.
    const spec = '@tensorflow/tfjs-node';
    await import(spec);
    return tf.findBackend('tensorflow') !== null;
  } catch {
    return false;
  }
}

async function tryBackend(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow' && !(await tryNative())) return false;
  if (name === 'wasm') installWasmTrainingKernels('wasm');
  try {
    // setBackend resolves false (and logs) when the backend cannot start; silence tfjs there.
    return await withoutGlueListeners(async () => {
      const ok = await tf.setBackend(name);
      if (ok) await tf.ready();
      return ok;
    });
  } catch {
    return false;
  }
}

/** Which backends could start here, in preference order. */
export async function availableBackends(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  const current = tf.getBackend();
  for (const b of BACKENDS) if (await tryBackend(b)) out.push(b);
  if (current) await tf.setBackend(current);
  return out;
}

function parseName(value: string, where: string): BackendName {
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new ConfigError(`unknown backend '${value}' (${where}); valid backends: ${BACKENDS.join(', ')}`);
}

/**
 * Starts the backend: the one asked for (option, then LONGTAIL_BACKEND), or the first of
 * tensorflow, wasm, cpu that works. A backend asked for by name that cannot start is an error.
 */
export async function initBackend(requested?: string): Promise<BackendInfo> {
  const fromEnv = process.env.LONGTAIL_BACKEND;
  let name: BackendName | undefined;
  if (requested !== undefined && requested !== '') name = parseName(requested, '--backend');
  else if (fromEnv !== undefined && fromEnv !== '') name = parseName(fromEnv, 'LONGTAIL_BACKEND');
  if (name !== undefined) {
    if (!(await tryBackend(name))) {
      const avail = await availableBackends();
      throw new ConfigError(
        `backend '${name}' is not available on this machine` +
          (name === 'tensorflow' ? ' (install @tensorflow/tfjs-node to use it)' : '') +
          `; available: ${avail.join(', ')}`,
      );
    }
  } else {
    for (const b of BACKENDS) {
      if (await tryBackend(b)) {
        name = b;
        break;
      }
    }
    if (name === undefined) throw new Error('no TensorFlow.js backend could start');
  }
  return backendInfo();
}

export function backendInfo(): BackendInfo {
  const name = tf.getBackend() as BackendName;
  const isWasm = name === 'wasm';
  return {
    name,
    simd: isWasm ? tf.env().getBool('WASM_HAS_SIMD_SUPPORT') : null,
    threads: isWasm ? tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') : null,
    trainingKernels: isWasm ? trainingKernels() : null,
    nativeNote: nativeStatus().reason,
    tfjsVersion: tf.version_core,
  };
}
