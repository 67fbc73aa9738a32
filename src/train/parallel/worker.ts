/**
 * A data-parallel replica: its own tfjs backend and a copy of the model. Computes gradients on
 * its shard of each batch and applies the averaged update it is sent, so it stays identical to
 * the other replicas (batch-norm running statistics aside, which the trainer averages).
 */
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../../backend/backend.ts';
import { enterBf16Training } from '../../backend/training-kernels.ts';
import { createModel, loadModelArrays, type Model } from '../../models/model.ts';
import type { NamedArrays } from '../../models/params.ts';
import { Sgd } from '../../optim/sgd.ts';
import { applyGrads, computeGrads } from '../step.ts';
import { getBnStats, setBnStats } from './bn-sync.ts';
import type { FromWorker, GradsRequest, SharedBuffers, ToWorker } from './protocol.ts';
import { countersSince, type ThreadClock, threadClock, threadCounters } from './thread-clock.ts';

const port = parentPort!;
let model: Model | null = null;
let opt: Sgd | null = null;
let shared: SharedBuffers | null = null;
let logitOffset: Float32Array | null = null;
/** The last update's duration, ms (reported with the next shard's gradients). */
let lastApply = 0;
/** The scheduler clock when the last profiled shard began. */
let lastShardClock: ThreadClock | null = null;
const now = () => performance.timeOrigin + performance.now();

const send = (m: FromWorker) => port.postMessage(m);

/** Gradients on the shard in shared memory, answered with the request's id. */
function grads(msg: GradsRequest): void {
  const s = shared!;
  const per = s.batch.length / s.labels.length;
  const start = now();
  const c0 = msg.profile ? threadClock() : null;
  const e0 = msg.profile ? threadCounters() : null;
  // On a core since the previous shard began: the whole step, event-loop work included.
  const cycle = c0 && lastShardClock ? (c0.cpuNs - lastShardClock.cpuNs) / 1e6 : undefined;
  lastShardClock = c0;
  const r = computeGrads(model!, s.batch.subarray(0, msg.count * per), s.labels.subarray(0, msg.count), {
    batchStats: msg.batchStats,
    out: s.grads,
    logitOffset,
  });
  const c1 = c0 ? threadClock() : null;
  const e1 = e0 ? threadCounters() : null;
  const timing = {
    start,
    end: now(),
    apply: lastApply,
    ...(c0 && c1 ? { cpu: (c1.cpuNs - c0.cpuNs) / 1e6, queued: (c1.queuedNs - c0.queuedNs) / 1e6 } : {}),
    ...(e0 && e1 ? { events: countersSince(e0, e1) } : {}),
    ...(cycle !== undefined ? { cycle } : {}),
  };
  send({ type: 'grads', id: msg.id, loss: r.loss, correct: r.correct, timing });
}

// Messages are handled strictly in order (init is async): a queue of promises.
let queue: Promise<void> = Promise.resolve();

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'init':
      await initBackend(msg.spec.backend);
      // A backbone registered at run time: its module registers it in this thread too.
      if (msg.spec.backboneModule !== undefined) await import(msg.spec.backboneModule);
      if (msg.spec.precision === 'bf16') enterBf16Training(); // for the worker's life
      model = createModel(msg.spec.backbone, msg.spec.inputShape, msg.spec.numClasses, msg.spec.seed);
      loadModelArrays(model, msg.weights, 'data-parallel init');
      opt = new Sgd({ momentum: msg.spec.momentum, weightDecay: msg.spec.weightDecay });
      opt.loadState(msg.momentum);
      logitOffset = msg.spec.logitOffset ?? null;
      send({ type: 'ready' });
      break;
    case 'buffers':
      shared = msg.shared;
      break;
    case 'grads':
      grads(msg);
      break;
    case 'apply': {
      const t = performance.now();
      applyGrads(model!, opt!, shared!.avg, msg.lr);
      lastApply = performance.now() - t;
      // The next step's shard is already in shared memory: start on it without a round trip.
      if (msg.next) grads(msg.next);
      break;
    }
    case 'getBn':
      send({ type: 'bn', id: msg.id, stats: getBnStats(model!) });
      break;
    case 'setBn':
      setBnStats(model!, msg.stats);
      break;
    case 'getWeights': {
      const w: NamedArrays = {};
      for (const [name, v] of [...model!.backbone.params.params, ...model!.head.params.params]) {
        w[name] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
      }
      send({ type: 'weights', id: msg.id, weights: w });
      break;
    }
  }
}

port.on('message', (msg: ToWorker) => {
  queue = queue
    .then(() => handle(msg))
    .catch((e: unknown) => {
      send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    });
});
