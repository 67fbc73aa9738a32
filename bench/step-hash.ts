/**
 * Bit-identity of training across two builds: trains a few steps from fixed seeds (random images
 * and labels, batch 64, SGD with momentum and weight decay) in the checkout given by ROOT and
 * prints the losses and a hash of every parameter and buffer (running statistics included).
 * Run it in the old and the new checkout (each with its own addon built) and compare the lines.
 *
 *   ROOT=$PWD node --import tsx bench/step-hash.ts resnet20 32,32,3 [fp32|bf16]
 *   (cd /other/checkout && ROOT=$PWD node --import tsx /this/checkout/bench/step-hash.ts resnet20 32,32,3)
 */
import { createHash } from 'node:crypto';

const root = process.env.ROOT ?? process.cwd();
const { initBackend } = await import(`${root}/src/backend/backend.ts`);
const { enterBf16Training } = await import(`${root}/src/backend/training-kernels.ts`);
const { createModel } = await import(`${root}/src/models/model.ts`);
const { Sgd } = await import(`${root}/src/optim/sgd.ts`);
const { createRng } = await import(`${root}/src/random/rng.ts`);
const { applyGrads, computeGrads } = await import(`${root}/src/train/step.ts`);

const [model = 'resnet8', shape = '28,28,1', precision = 'fp32'] = process.argv.slice(2);
await initBackend('wasm');
if (precision === 'bf16') enterBf16Training();
const [H, W, C] = shape.split(',').map(Number) as [number, number, number];
const m = createModel(model, [H, W, C], 10, 0);
const rng = createRng(0);
const B = 64;
const opt = new Sgd({ momentum: 0.9, weightDecay: 5e-4 });
const losses: number[] = [];
for (let s = 0; s < 4; s++) {
  const x = Float32Array.from({ length: B * H * W * C }, () => rng.normal());
  const y = Int32Array.from({ length: B }, () => rng.int(10));
  const { loss, grads } = computeGrads(m, x, y);
  losses.push(loss);
  applyGrads(m, opt, grads, 0.05);
}
const h = createHash('sha256');
for (const ps of [m.backbone.params, m.head.params])
  for (const [name, t] of [...ps.params.entries(), ...ps.buffers.entries()]) {
    h.update(name);
    h.update(Buffer.from((t.dataSync() as Float32Array).buffer));
  }
console.log(
  `${model} ${shape} ${precision} losses ${losses.map((l) => l.toPrecision(9)).join(' ')} hash ${h.digest('hex').slice(0, 16)}`,
);
