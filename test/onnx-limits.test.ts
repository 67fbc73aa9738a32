/**
 * ONNX models longtail must refuse or handle (issue 25 section 3) and the abort at exit (section
 * 4): a FIFO, /dev/zero, an .onnx over 2 GiB, absurd input shapes, a model whose output has a
 * fixed batch of 1, and child processes that use an ONNX backbone and exit, with or without
 * disposing it, several times (onnxruntime's session torn down under it used to abort them).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/backend.ts';
import { createOnnxBackbone } from '../src/models/onnx-backbone.ts';
import { onnx } from '../src/models/onnx-file.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const TINY = ['--max-per-class', '30', '--imbalance', '3', '--batch-size', '32', '--threads', '1'];
const ROOT = resolve(import.meta.dirname, '..');

function expectUserError(r: { code: number | null; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('longtail:')).length, 1, r.stderr);
}

/**
 * x [n, 1, H, W] -> per-image mean [n, 1]; with `fixedBatchOne` the output is sliced to its first
 * row, [1, 1] whatever n is (as a model exported without a dynamic output batch).
 */
function meanModel(path: string, dims: (number | string)[], fixedBatchOne: boolean): void {
  const nodes = [
    {
      opType: 'ReduceMean',
      input: ['x'],
      output: [fixedBatchOne ? 'm' : 'y'],
      attribute: [
        { name: 'axes', type: 7, ints: [2, 3] },
        { name: 'keepdims', type: 2, i: 0 },
      ],
    },
  ];
  const initializer = [];
  if (fixedBatchOne) {
    nodes.push({ opType: 'Slice', input: ['m', 'zero', 'one', 'zero'], output: ['y'], attribute: [] });
    initializer.push(
      { name: 'zero', dims: [1], dataType: 7, int64Data: [0] },
      { name: 'one', dims: [1], dataType: 7, int64Data: [1] },
    );
  }
  const m = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'mean',
      input: [
        {
          name: 'x',
          type: {
            tensorType: {
              elemType: 1,
              shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
            },
          },
        },
      ],
      output: [{ name: 'y' }],
      node: nodes,
      initializer,
    },
  });
  writeFileSync(path, onnx.ModelProto.encode(m).finish());
}

describe('ONNX files refused before they are read', () => {
  const dir = tempDir();
  const out = join(dir, 'run');
  const train = (file: string) => runCli(['train', ...TINY, '--backbone', `onnx:${file}`, '--out', out], {});

  it('a FIFO and /dev/zero: not a regular file, no hang', () => {
    const fifo = join(dir, 'pipe.onnx');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    expectUserError(train(fifo), /pipe\.onnx: not a regular file \(expected an \.onnx model\)/);
    expectUserError(train('/dev/zero'), /\/dev\/zero: not a regular file/);
  });

  it('an .onnx over 2 GiB (sparse, never read): one line, exit 2', () => {
    const big = join(dir, 'big.onnx');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 2 ** 31 + 10);
    closeSync(fd);
    expectUserError(
      train(big),
      /big\.onnx: 2147483658 bytes; an \.onnx file holds at most 2 GiB .*external data/,
    );
  });

  it('inputs declared 100000x100000 or 2^40 wide: one line, exit 2', () => {
    const huge = join(dir, 'huge.onnx');
    meanModel(huge, ['n', 1, 100000, 100000], false);
    expectUserError(
      train(huge),
      /huge\.onnx: input x declares \[\?, 1, 100000, 100000\]; longtail takes images up to 4096/,
    );
    const wide = join(dir, 'wide.onnx');
    meanModel(wide, ['n', 1, 28, 2 ** 40], false);
    expectUserError(train(wide), /wide\.onnx: input x declares \[\?, 1, 28, 1099511627776\]/);
  });
});

describe('ONNX models with fixed batches', () => {
  before(async () => {
    await initBackend('wasm');
  });
  const dir = tempDir();
  /** 64 images whose features (their means) are all different and non-zero. */
  const images = () => {
    const n = 64;
    const data = new Float32Array(n * 4 * 4);
    for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 101) / 100 + 0.01;
    return { n, x: tf.tensor4d(data, [n, 4, 4, 1]), data };
  };
  const means = (data: Float32Array, n: number) =>
    Array.from({ length: n }, (_, i) => data.subarray(i * 16, (i + 1) * 16).reduce((a, b) => a + b, 0) / 16);

  for (const [name, dims, fixedOne] of [
    ['an output with a fixed batch of 1 (dynamic input)', ['n', 1, 4, 4], true],
    ['an input with a fixed batch of 5 (the last chunk padded)', [5, 1, 4, 4], false],
    ['an input with a fixed batch of 1', [1, 1, 4, 4], false],
  ] as const) {
    it(`${name}: every one of 64 rows is its image's feature`, () => {
      const path = join(dir, `${name.length}.onnx`);
      meanModel(path, [...dims], fixedOne);
      const b = createOnnxBackbone({ path }, [4, 4, 1]);
      try {
        const { n, x, data } = images();
        const f = b.features(x, false);
        const got = Array.from(f.dataSync());
        f.dispose();
        x.dispose();
        const want = means(data, n);
        assert.equal(got.length, n);
        for (let i = 0; i < n; i++)
          assert.ok(Math.abs(got[i]! - want[i]!) < 1e-6, `row ${i}: ${got[i]} vs ${want[i]}`);
      } finally {
        b.dispose();
      }
    });
  }
});

describe('no abort at exit (the onnxruntime session is released before its thread ends)', () => {
  const dir = tempDir();
  const model = join(dir, 'mean.onnx');
  meanModel(model, ['n', 1, 4, 4], false);
  const script = join(dir, 'child.mts');
  writeFileSync(
    script,
    `import * as tf from '${import.meta.resolve('@tensorflow/tfjs-core')}';
import { initBackend } from '${ROOT}/src/backend/backend.ts';
import { createOnnxBackbone } from '${ROOT}/src/models/onnx-backbone.ts';
await initBackend('cpu');
const dispose = process.argv[2] === 'dispose';
for (let k = 0; k < 3; k++) {
  const b = createOnnxBackbone({ path: ${JSON.stringify(model)} }, [4, 4, 1]);
  const f = b.features(tf.ones([70, 4, 4, 1]), false);
  if (Math.abs(f.dataSync()[69] - 1) > 1e-6) throw new Error('wrong feature');
  if (dispose || k < 2) b.dispose();
}
process.stdout.write('ok\\n');
`,
  );
  it('6 child processes (3 backbones each; the last disposed or left to exit) end with code 0', () => {
    for (let i = 0; i < 6; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', script, i % 2 ? 'dispose' : 'leave'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.doesNotMatch(r.stderr, /terminate called|Napi::Error/, r.stderr);
      assert.equal(r.signal, null, `child ${i} killed by ${r.signal}: ${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'ok\n');
    }
  });
});

describe('doctor lists the optional parts and the Python examples', () => {
  it('onnxruntime-node with its version and what it enables (vega is bundled, not listed); the examples folder', () => {
    const r = runCli(['doctor', '--json'], { LONGTAIL_BACKEND: '' });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      optional: { name: string; version: string | null; enables: string; install: string }[];
      examples: string;
    };
    const ort = j.optional.find((o) => o.name === 'onnxruntime-node')!;
    const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8'));
    assert.equal(ort.version, pkg.version);
    assert.match(ort.enables, /ONNX backbones/);
    assert.match(ort.install, /npm install onnxruntime-node --onnxruntime-node-install=skip/);
    assert.ok(!j.optional.some((o: { name: string }) => /vega/.test(o.name))); // charts are bundled (issue 27)
    assert.ok(existsSync(join(j.examples, 'pytorch', 'longtail_preprocess.py')), j.examples);
    const table = runCli(['doctor'], { LONGTAIL_BACKEND: '' });
    assert.match(table.stdout, /onnxruntime-node +\d+\.\d+\.\d+: ONNX backbones/);
    assert.match(table.stdout, /python examples +\/.*examples\//);
  });
});
