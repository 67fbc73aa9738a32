/**
 * The runtime side of an ONNX backbone: onnxruntime-node's session in a worker thread, loaded on
 * demand. Waits (blocking, it has nothing else to do) for a request, runs the session, pools a
 * 4-D output to [n, d], refuses non-finite values, writes the features into the shared buffer.
 */
import { once } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import { CTL, type OnnxOutputBuffers, type OnnxWorkerData, STATE, writeMessage } from './onnx-protocol.ts';

const w = workerData as OnnxWorkerData;

type Ort = typeof import('onnxruntime-node');
interface OrtTensor {
  dims: readonly number[];
  data: unknown;
}

function fail(kind: 'config' | 'data', error: string): void {
  writeMessage(w.ctl, w.message, error);
  Atomics.store(w.ctl, CTL.ready, kind === 'config' ? -1 : -2);
  Atomics.notify(w.ctl, CTL.ready);
}

/** [n, d] or [n, c, h, w] (pooled over h, w) -> [n, d] into `out`; null when the rank is not 2 or 4. */
function pooled(t: OrtTensor, n: number, out: Float32Array): number | null {
  const data = t.data as Float32Array;
  if (t.dims.length === 2) {
    out.set(data.subarray(0, n * t.dims[1]!));
    return t.dims[1]!;
  }
  if (t.dims.length === 4) {
    const [, c, h, ww] = t.dims as [number, number, number, number];
    const hw = h * ww;
    for (let i = 0; i < n * c; i++) {
      let s = 0;
      for (let j = 0; j < hw; j++) s += data[i * hw + j]!;
      out[i] = s / hw;
    }
    return c;
  }
  return null;
}

function finite(a: Float32Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

async function main(): Promise<void> {
  let ort: Ort;
  try {
    ort = (await import(w.runtime)) as Ort;
  } catch {
    fail(
      'config',
      'the ONNX paths need onnxruntime-node, which is not installed (an optional peer dependency): npm install onnxruntime-node --onnxruntime-node-install=skip (CPU, works offline from a cache; for the CUDA provider on Linux x64: npm install onnxruntime-node --onnxruntime-node-install=cuda12)',
    );
    return;
  }
  let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
  try {
    session = await ort.InferenceSession.create(w.bytes, {
      intraOpNumThreads: w.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      // External data (checked in onnx-file.ts) is read from the model's folder, never the
      // working folder onnxruntime would otherwise resolve it against for a model given as bytes.
      ...(w.externalFolder !== null
        ? { extra: { session: { model_external_initializers_file_folder_path: w.externalFolder } } }
        : {}),
    });
  } catch (e) {
    fail('data', `${w.path}: onnxruntime cannot load it (${(e as Error).message.split('\n')[0]})`);
    return;
  }
  const fetches = [w.output];
  const per = w.imageDims.reduce((a, b) => a * b, 1);
  const run = async (n: number) => {
    const x = new ort.Tensor('float32', w.images.slice(0, n * per), [n, ...w.imageDims]);
    return (await session.run({ [w.inputName]: x }, fetches)) as unknown as Record<string, OrtTensor>;
  };
  // A probe batch: the output's rank and size, and whether its batch follows the input's (a
  // model exported with a fixed output batch of 1 would otherwise fill only the first row).
  let featureDim: number;
  const probe = w.fixedBatch ?? 2;
  try {
    const r = await run(probe);
    const f = r[w.output]!;
    if (f.dims.length !== 2 && f.dims.length !== 4) {
      await session.release();
      fail(
        'data',
        `${w.path}: output ${w.output} is ${f.dims.length}-D [${f.dims.join(', ')}]; a feature output is 2-D [n, d] or 4-D [n, d, h, w] (average-pooled)`,
      );
      return;
    }
    let batch = w.fixedBatch ?? w.maxBatch;
    if (f.dims[0] !== probe) {
      if (w.fixedBatch === null && f.dims[0] === 1) batch = 1;
      else {
        await session.release();
        fail(
          'data',
          `${w.path}: output ${w.output} has batch ${f.dims[0]} for ${probe} input images; a feature output has one row per image`,
        );
        return;
      }
    }
    featureDim = f.dims[1]!;
    if (!finite(f.data as Float32Array, (f.data as Float32Array).length)) {
      await session.release();
      fail('data', `${w.path}: output ${w.output} has NaN or infinite values (on a blank image)`);
      return;
    }
    Atomics.store(w.ctl, CTL.outputRank, f.dims.length);
    Atomics.store(w.ctl, CTL.batch, batch);
  } catch (e) {
    await session.release();
    fail(
      'data',
      `${w.path}: onnxruntime cannot run it on [${probe}, ${w.imageDims.join(', ')}] (${(e as Error).message.split('\n')[0]}); check --onnx-input-size and --onnx-layout`,
    );
    return;
  }
  const buffers = once(parentPort!, 'message');
  Atomics.store(w.ctl, CTL.featureDim, featureDim);
  Atomics.store(w.ctl, CTL.ready, 1);
  Atomics.notify(w.ctl, CTL.ready);
  const { features } = (await buffers)[0] as OnnxOutputBuffers;
  for (;;) {
    let s = Atomics.load(w.ctl, CTL.state);
    // Blocking: the main thread resets DONE / FAILED to IDLE, then posts the next REQUEST.
    while (s !== STATE.request && s !== STATE.quit) {
      Atomics.wait(w.ctl, CTL.state, s);
      s = Atomics.load(w.ctl, CTL.state);
    }
    if (s === STATE.quit) break;
    const n = Atomics.load(w.ctl, CTL.n);
    let result: number = STATE.done;
    try {
      const r = await run(n);
      const f = r[w.output]!;
      if (f.dims[0] !== n) throw new Error(`output ${w.output} has batch ${f.dims[0]} for ${n} input images`);
      pooled(f, n, features);
      if (!finite(features, n * featureDim)) throw new Error(`output ${w.output} has NaN or infinite values`);
    } catch (e) {
      writeMessage(w.ctl, w.message, `${w.path}: ${(e as Error).message.split('\n')[0]}`);
      result = STATE.failed;
    }
    Atomics.store(w.ctl, CTL.state, result);
    Atomics.notify(w.ctl, CTL.state);
  }
  await session.release();
  // Only now may the thread be torn down: terminating it while onnxruntime still holds the session
  // made its finaliser throw a Napi::Error at exit (SIGABRT).
  Atomics.store(w.ctl, CTL.released, 1);
  Atomics.notify(w.ctl, CTL.released);
}

await main();
