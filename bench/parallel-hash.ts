/**
 * Bit-identity of data-parallel training across two checkouts: two epochs of a few steps through
 * the trainer's epoch loop (crop-flip batches made while the workers compute, the running
 * statistics averaged at each epoch's end) on random images, then the losses and a hash of every
 * parameter, running statistic and momentum buffer of the main thread's model.
 *
 *   ROOT=$PWD node --import tsx bench/parallel-hash.ts [threads] [model] [H,W,C]
 *   (cd /other/checkout && ROOT=$PWD node --import tsx /this/checkout/bench/parallel-hash.ts 2)
 */
import { createHash } from 'node:crypto';

const root = process.env.ROOT ?? process.cwd();
const { initBackend } = await import(`${root}/src/backend/backend.ts`);
const { createModel } = await import(`${root}/src/models/model.ts`);
const { Sgd } = await import(`${root}/src/optim/sgd.ts`);
const { createRng } = await import(`${root}/src/random/rng.ts`);
const { EpochRunner } = await import(`${root}/src/train/epoch.ts`);
const { DataParallel } = await import(`${root}/src/train/parallel/data-parallel.ts`);

const [threads = '2', model = 'resnet8', shape = '28,28,1'] = process.argv.slice(2);
await initBackend('wasm');
const [H, W, C] = shape.split(',').map(Number) as [number, number, number];
const N = 512;
const B = 64;
const steps = 4;
const rng = createRng(5);
const train = {
  pixels: Uint8Array.from({ length: N * H * W * C }, () => rng.int(256)),
  labels: Int32Array.from({ length: N }, () => rng.int(10)),
  height: H,
  width: W,
  channels: C,
};
const sampler = {
  name: 'fixed',
  stepsPerEpoch: steps,
  probabilities: () => null,
  epoch: (e: number) => Int32Array.from({ length: steps * B }, (_, i) => (i * 37 + e * 11) % N),
};
const m = createModel(model, [H, W, C], 10, 0);
const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
const dp = await DataParallel.create(m, opt, Number(threads), { seed: 0, momentum: 0.9, weightDecay: 5e-4 });
const runner = new EpochRunner(train, sampler, dp, { batchSize: B, seed: 1, augmentation: 'crop-flip' });
const losses: number[] = [];
for (let e = 0; e < 2; e++) losses.push((await runner.run(e, 0.05 / (e + 1))).loss);
const h = createHash('sha256');
for (const ps of [m.backbone.params, m.head.params])
  for (const [name, t] of [...ps.params.entries(), ...ps.buffers.entries()]) {
    h.update(name);
    h.update(Buffer.from((t.dataSync() as Float32Array).buffer));
  }
for (const [name, a] of Object.entries(opt.state() as Record<string, { data: Float32Array }>)) {
  h.update(name);
  h.update(Buffer.from(a.data.buffer));
}
console.log(`${model} ${shape} ${threads} threads: losses ${losses.map((l) => l.toPrecision(9)).join(' ')}`);
console.log(`hash ${h.digest('hex')}`);
await dp.dispose();
