/**
 * examples/pytorch/train_stage1.py under torchrun, where PyTorch is installed (skipped cleanly
 * elsewhere): two gloo processes give the weights of one process with the same global batch, a
 * killed run resumes, and its checkpoint goes through export_backbone.py, `longtail retrain
 * --features`, `longtail train --config` and `longtail export --format onnx`.
 *
 * Batch norm: both runs use --sync-bn (statistics over the global batch; on CPU the script's
 * all-reduce batch norm, since PyTorch 1.x's SyncBatchNorm is CUDA-only), so the two runs compute
 * the same function. They train in float64 (--float64): on 32-pixel images this network's
 * float32 gradients move by ~1e-3 with the summation order (measured: 0.5 % after one step),
 * which would hide a real difference behind rounding; one float64 step agrees to ~1e-9.
 *
 * The `longtail` calls run inside this process (runInProcess, test/helpers/cli.ts): what is tested
 * here is the scripts' output reaching longtail; the command line's own process is tested elsewhere.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { onnx } from '../src/models/onnx-file.ts';
import { runInProcess } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

const PYTHON = process.env.LONGTAIL_PYTHON ?? '/usr/bin/python3';
const TORCHRUN = process.env.LONGTAIL_TORCHRUN ?? '/usr/bin/torchrun';
const EX = join(import.meta.dirname, '..', 'examples', 'pytorch');
const hasTorch =
  existsSync(TORCHRUN) &&
  spawnSync(PYTHON, ['-c', 'import torch, torchvision, PIL'], { encoding: 'utf8' }).status === 0;
const CLASSES = ['cat', 'dog', 'émeu'];

/** An image folder of small random PNGs (a seeded LCG), train/val/test, one subfolder per class. */
async function imageFolder(root: string): Promise<void> {
  let s = 12345;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 24;
  };
  for (const [split, per] of [
    ['train', [10, 6, 4]],
    ['val', [2, 2, 2]],
    ['test', [2, 2, 2]],
  ] as const) {
    for (const [c, name] of CLASSES.entries()) {
      mkdirSync(join(root, split, name), { recursive: true });
      for (let k = 0; k < per[c]!; k++) {
        const px = Buffer.alloc(36 * 40 * 3);
        for (let i = 0; i < px.length; i++) px[i] = (rand() >> 1) + 40 * c;
        await sharp(px, { raw: { width: 40, height: 36, channels: 3 } })
          .png()
          .toFile(join(root, split, name, `${k}.png`));
      }
    }
  }
}

/** max over tensors and global relative L2 difference of two checkpoints' weights (PyTorch computes it). */
function compare(a: string, b: string): { global: number; epochA: number; epochB: number } {
  const code = `
import sys, json, torch
A, B = torch.load(sys.argv[1]), torch.load(sys.argv[2])
num = den = 0.0
for k, v in A["model"].items():
    if v.is_floating_point():
        num += float(((v - B["model"][k]) ** 2).sum()); den += float((v ** 2).sum())
print(json.dumps({"global": (num / den) ** 0.5, "epochA": A["epoch"], "epochB": B["epoch"]}))`;
  const r = spawnSync(PYTHON, ['-c', code, a, b], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function py(args: string[]) {
  return spawnSync(PYTHON, args, {
    encoding: 'utf8',
    cwd: EX,
    timeout: 600_000,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
}

/**
 * Several calls of the scripts' main(argv) in one Python process (importing torch once instead of
 * once a call): each gives its exit status and standard error. `setup` runs first (Python code).
 */
function pyMains(calls: [script: 'train_stage1' | 'export_backbone', argv: string[]][], setup = '') {
  const code = `
import sys, io, json, contextlib
${setup}
import train_stage1, export_backbone
res = []
for script, argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    status = 0
    with contextlib.redirect_stderr(err):
        try:
            {"train_stage1": train_stage1, "export_backbone": export_backbone}[script].main(argv)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
    res.append({"status": status, "stderr": err.getvalue()})
print(json.dumps(res))`;
  const r = py(['-c', code, JSON.stringify(calls)]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: number; stderr: string }[];
}

describe('examples/pytorch/train_stage1.py under torchrun', {
  skip: hasTorch ? false : `no PyTorch/torchrun at ${PYTHON} / ${TORCHRUN}`,
}, () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  const out = join(dir, 'sn');
  const common = (epochs: number) => [
    '--data-dir',
    data,
    '--model',
    'shufflenet_v2_x0_5',
    '--image-size',
    '32',
    '--epochs',
    String(epochs),
    '--batch-size',
    '16',
    '--lr',
    '0.01',
    '--workers',
    '0',
    '--sync-bn',
    '--float64',
  ];
  // Debian's torchrun 1.13 on Python 3.11 cannot parse its default --redirects 0 (an enum change):
  // redirect and tee stdout into a log folder instead, which parses.
  const torchrun = (args: string[]) => [
    '--nproc_per_node',
    '2',
    '--redirects',
    '1',
    '--tee',
    '1',
    '--log_dir',
    join(dir, `logs-${Math.random().toString(36).slice(2)}`),
    join(EX, 'train_stage1.py'),
    ...args,
  ];

  it('2 gloo processes, killed after epoch 1 and resumed, end with the 1-process weights; the checkpoint exports and runs in longtail', async (t) => {
    await imageFolder(data);
    const one = join(dir, 'one');
    const r1 = py([join(EX, 'train_stage1.py'), ...common(4), '--out', one]);
    assert.equal(r1.status, 0, r1.stderr);

    // The 2-process run, killed (the whole process group, as a lost node) once epoch 1 is saved.
    const two = join(dir, 'two');
    const child: ChildProcess = spawn(TORCHRUN, torchrun([...common(4), '--out', two]), {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    const exited = new Promise((done) => child.on('exit', done));
    const last = join(two, 'last.pt');
    for (let i = 0; i < 6000 && !existsSync(last); i++) await new Promise((r) => setTimeout(r, 50));
    process.kill(-child.pid!, 'SIGKILL');
    await exited;

    const resumed = spawnSync(TORCHRUN, torchrun([...common(4), '--out', two, '--resume']), {
      encoding: 'utf8',
      timeout: 600_000,
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    assert.equal(resumed.status, 0, resumed.stderr);
    // It continues after the last saved epoch (at least 1 was saved; not all 4, or it was not killed).
    const from = Number(/epochs (\d+)\.\.4/.exec(resumed.stdout)?.[1]);
    assert.ok(from >= 2 && from <= 4, `resumed at epoch ${from}: ${resumed.stdout}`);
    const killed = { epochB: from - 1 };
    const d = compare(join(one, 'last.pt'), last);
    assert.equal(d.epochB, 4);
    t.diagnostic(
      `1 vs 2 processes after 4 steps (killed after epoch ${killed.epochB}): relative L2 ${d.global}`,
    );
    // One step per epoch (16 of 20 images). Measured: 1e-15 after 1 step, 3e-14 after 2, 5e-13
    // after 3 (lr 0.002): rounding differences grow ~20x a step on this ill-conditioned tiny
    // network at init, so few steps keep the check sharp; a lost epoch, a wrong LR or another
    // sample order is many orders of magnitude above the bound.
    assert.ok(d.global < 1e-8, `1 vs 2 processes: relative L2 difference ${d.global}`);
    const history = JSON.parse(readFileSync(join(two, 'history.json'), 'utf8'));
    assert.deepEqual(
      history.map((h: { epoch: number }) => h.epoch),
      [1, 2, 3, 4],
    );

    // Export, features, and longtail: class names from the image folder reach the results and the model.
    const feats = join(dir, 'features.npz');
    const ex = py([
      join(EX, 'export_backbone.py'),
      '--checkpoint',
      two,
      '--out',
      out,
      '--data-dir',
      data,
      '--features',
      feats,
    ]);
    assert.equal(ex.status, 0, ex.stderr);

    const thresholds = ['--few-threshold', '3', '--many-threshold', '8', '--threads', '1'];
    const rt = await runInProcess([
      'retrain',
      '--features',
      feats,
      '--method',
      'crt,ncm',
      '--crt-epochs',
      '1',
      '--stage2-batch-size',
      '4',
      ...thresholds,
      '--out',
      join(dir, 'retrain'),
    ]);
    assert.equal(rt.code, 0, rt.stderr);

    const fromFeatures = JSON.parse(readFileSync(join(dir, 'retrain', 'results.json'), 'utf8'));
    assert.deepEqual(fromFeatures.dataset.classNames, CLASSES);
    // Read back with longtail's own ONNX bindings.
    const model = onnx.ModelProto.decode(readFileSync(`${out}.onnx`));
    const names = model.metadataProps?.find((p) => p.key === 'class_names')?.value;
    assert.deepEqual(JSON.parse(names ?? 'null'), CLASSES);

    const run = join(dir, 'run');
    const tr = await runInProcess(['train', '--config', `${out}.json`, '--out', run, ...thresholds]);
    assert.equal(tr.code, 0, tr.stderr);
    const rr = await runInProcess([
      'retrain',
      '--run',
      run,
      '--method',
      'crt',
      '--crt-epochs',
      '1',
      '--mode',
      'features',
      '--stage2-batch-size',
      '4',
      ...thresholds,
    ]);
    assert.equal(rr.code, 0, rr.stderr);
    const results = JSON.parse(readFileSync(join(run, 'stage2', 'results.json'), 'utf8'));
    assert.deepEqual(results.dataset.classNames, CLASSES);
    const exp = await runInProcess([
      'export',
      '--run',
      run,
      '--method',
      'crt',
      '--format',
      'onnx',
      '--out',
      join(dir, 'deploy'),
    ]);
    assert.equal(exp.code, 0, exp.stderr);
    assert.ok(existsSync(join(dir, 'deploy', 'model.onnx')));
  });

  it('refuses bad input with one message and exit 2, writing nothing', () => {
    const empty = join(dir, 'empty');
    mkdirSync(join(empty, 'train', 'a'), { recursive: true });
    mkdirSync(join(empty, 'test', 'a'), { recursive: true });
    const plain = join(dir, 'plain.pt');
    const x = join(dir, 'x');
    const y = join(dir, 'y');
    // A bare state dict (no checkpoint record) of the 1-process run's shufflenet.
    const setup = `import torch; torch.save(torch.load(${JSON.stringify(join(dir, 'one', 'last.pt'))})["model"], ${JSON.stringify(plain)})`;
    const r = pyMains(
      [
        ['train_stage1', ['--data-dir', join(dir, 'nowhere'), '--model', 'resnet18', '--out', x]],
        ['train_stage1', ['--data-dir', empty, '--model', 'resnet18', '--out', x]],
        ['train_stage1', ['--data-dir', data, '--model', 'resnt18', '--batch-size', '8', '--out', x]],
        ['export_backbone', ['--checkpoint', join(dir, 'one'), '--model', 'resnet18', '--out', y]],
        ['export_backbone', ['--checkpoint', plain, '--model', 'resnet18', '--num-classes', '3', '--out', y]],
        ['export_backbone', ['--checkpoint', join(dir, 'two'), '--out', out]],
      ],
      setup,
    );
    const expected = [
      /nowhere: no such folder \(--data-dir\)/,
      /class folder 'a' holds no images/,
      /unknown model 'resnt18' \(did you mean resnet18/,
      /--model resnet18: the checkpoint .* is a shufflenet_v2_x0_5/,
      /plain\.pt does not fit resnet18 with 3 classes: missing keys \(\d+\): conv1\.weight, bn1\.weight/,
      /sn\.onnx exists; --force overwrites it/,
    ];
    assert.equal(r.length, expected.length);
    for (const [i, e] of expected.entries()) {
      assert.equal(r[i]!.status, 2, `call ${i}: ${r[i]!.stderr}`);
      assert.match(r[i]!.stderr, e);
      // One error line (a library's warning may stand beside it).
      const lines = r[i]!.stderr.split('\n').filter((l) => / error: /.test(l));
      assert.equal(lines.length, 1, r[i]!.stderr);
    }
    assert.ok(!existsSync(x));
    assert.ok(!existsSync(`${y}.onnx`));
    assert.ok(!existsSync(`${y}.json`));
  });
});
