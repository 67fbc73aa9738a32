import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { registerData } from '../src/cli/data.ts';
import { registerDemo } from '../src/cli/demo.ts';
import { registerRetrain } from '../src/cli/retrain.ts';
import { registerStudy } from '../src/cli/study.ts';
import { registerTrain } from '../src/cli/train.ts';
import { type CliResult, runCli, runInProcess } from './helpers/cli.ts';
import { tempDir } from './helpers/tmp.ts';

// A `longtail` process costs about 1.2 s of CPU to start: calls that check a message, an exit code
// and the files run in this process (`lt`, test/helpers/cli.ts); `runCli` starts the real command
// for help, an unknown command, doctor (whose answers depend on environment variables read at
// start), one data summary, the training runs, and bin/longtail.js itself.
const lt = runInProcess;

/** For the runs made once for the whole file (removed when the file ends). */
const FILE_DIR = tempDir();

/** `doctor --json` with the default backend: asked once, read by two tests. */
let doctorDefault: CliResult | undefined;
const doctorJson = () => (doctorDefault ??= runCli(['doctor', '--json'], { LONGTAIL_BACKEND: '' }));

/**
 * `train --config run.yaml --seed 3` (1 epoch, 30 images a class), trained on first use: the --config
 * test checks what it saved and the --resume test continues a copy of it.
 */
let configured: { r: CliResult; out: string } | undefined;
function trainedFromConfig() {
  if (configured !== undefined) return configured;
  const cfg = join(FILE_DIR, 'run.yaml');
  writeFileSync(cfg, 'epochs: 1\nmaxPerClass: 30\nimbalance: 3\nbatchSize: 32\nseed: 1\nthreads: 1\n');
  const out = join(FILE_DIR, 'run');
  configured = { r: runCli(['train', '--config', cfg, '--seed', '3', '--out', out, '--json']), out };
  return configured;
}

describe('longtail CLI basics', () => {
  it('--help lists the commands and exits 0', () => {
    const r = runCli(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: longtail/);
    assert.match(r.stdout, /doctor/);
  });
  it('an unknown command is a clear error with exit code 2', () => {
    const r = runCli(['trian']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'trian'/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/); // no stack trace
  });
  it('doctor reports the wasm backend here and the bundled data intact', () => {
    const r = doctorJson();
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.backend, 'wasm');
    assert.equal(j.wasmSimd, true);
    assert.equal(j.bundledData.ok, true);
    assert.ok(j.availableBackends.includes('cpu'));
  });
  it('doctor says which training kernels run, and why not native when they are turned off', () => {
    const off = runCli(['doctor', '--json'], { LONGTAIL_BACKEND: '', LONGTAIL_NATIVE: '0' });
    assert.equal(off.code, 0, off.stderr);
    const j = JSON.parse(off.stdout);
    assert.equal(j.trainingKernels, 'wasm');
    assert.equal(j.nativeKernels, 'disabled by LONGTAIL_NATIVE=0');
    const table = runCli(['doctor'], { LONGTAIL_BACKEND: '', LONGTAIL_NATIVE: '0' });
    assert.match(table.stdout, /training kernels +wasm \(native: disabled by LONGTAIL_NATIVE=0\)/);
    assert.equal(j.avx512Tiles, 'off: no native kernels (disabled by LONGTAIL_NATIVE=0)');
  });
  it('doctor says whether the AVX-512 tiles run, and that LONGTAIL_AVX512=0 switched them off', () => {
    const off = runCli(['doctor'], { LONGTAIL_BACKEND: '', LONGTAIL_AVX512: '0' });
    assert.equal(off.code, 0, off.stderr);
    // Where the native kernels run at all (this machine: AVX2 + FMA), the switch is named.
    if (/training kernels +native/.test(off.stdout))
      assert.match(off.stdout, /AVX-512 tiles +off: switched off by LONGTAIL_AVX512=0/);
    const on = JSON.parse(doctorJson().stdout);
    if (!existsSync('/proc/cpuinfo')) return; // (the CPU's flags are read from Linux's /proc)
    const cpuHas = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
    if (on.trainingKernels === 'native')
      assert.equal(
        on.avx512Tiles,
        cpuHas ? 'on' : 'off: this CPU lacks AVX-512F (or the compiler could not build the tiles)',
      );
  });
  it('an unknown backend lists the valid ones, exit code 2', async () => {
    const r = await lt(['doctor', '--backend', 'gpu']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown backend 'gpu' \(--backend\); valid backends: tensorflow, wasm, cpu/);
    const n = await lt(['doctor', '--backend', 'tensorflow']);
    assert.equal(n.code, 2);
    assert.match(
      n.stderr,
      /backend 'tensorflow' is not available.*install @tensorflow\/tfjs-node.*available: wasm, cpu/,
    );
  });
  it('data summary shows counts, splits and the imbalance factor, and writes the histogram', async () => {
    const dir = tempDir();
    const r = runCli(['data', 'summary', '--json', '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(
      j.classes.map((c: { train: number }) => c.train),
      [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10],
    );
    assert.equal(j.imbalanceFactor, 100);
    assert.deepEqual(j.splits, { many: 5, medium: 3, few: 2 });
    assert.equal(j.classes[9].name, 'Ankle boot');
    assert.ok(existsSync(j.histogram.svg) && existsSync(j.histogram.png));
    const t = await lt([
      'data',
      'summary',
      '--imbalance',
      '10',
      '--max-per-class',
      '500',
      '--out',
      dir,
      '--force',
    ]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /imbalance factor 10\b/);
    assert.match(t.stdout, /T-shirt\/top\s+500\s+many\s+#{40}/);
    const bad = await lt(['data', 'summary', '--max-per-class', '5990', '--imbalance', '2']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /would overlap/);
  });
  it('--config reads YAML, flags win over it, the resolved configuration is saved, bad files are named', async () => {
    const { r, out } = trainedFromConfig();
    const cfg = join(tempDir(), 'run.yaml');
    assert.equal(r.code, 0, r.stderr);
    const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(saved.seed, 3); // the flag
    assert.equal(saved.epochs, 1); // the file
    assert.equal(saved.lr, 0.1); // the default
    assert.equal(JSON.parse(r.stdout).bestEpoch, 1);
    writeFileSync(cfg, 'epochs: 1\nlearningRate: 0.1\n');
    const bad = await lt(['train', '--config', cfg]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown setting\(s\) learningRate/);
    writeFileSync(cfg, 'epochs: [1,\n');
    const broken = await lt(['train', '--config', cfg]);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, new RegExp(`${cfg}: not valid YAML`));
    writeFileSync(cfg, 'epochs: -2\n');
    const neg = await lt(['train', '--config', cfg]);
    assert.equal(neg.code, 2);
    assert.match(neg.stderr, new RegExp(`epochs: .*\\(got -2 from ${cfg}\\)`));
  });
  it('train --resume continues a run from its checkpoint with its saved settings', async () => {
    const dir = tempDir();
    const out = join(dir, 'run');
    // A copy of a 1-epoch run (30 images a class, the default backbone and learning rate).
    const first = trainedFromConfig();
    assert.equal(first.r.code, 0, first.r.stderr);
    cpSync(first.out, out, { recursive: true });
    // Settings that would change the run are refused, each named with the run's value.
    const clash = await lt([
      'train',
      '--resume',
      out,
      '--backbone',
      'resnet20',
      '--lr',
      '0.5',
      '--epochs',
      '2',
    ]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /backbone "resnet20" \(the run has "resnet8"\), lr 0.5 \(the run has 0.1\)/);
    // Extend the run to 2 epochs, as a user would to train longer.
    const resumed = runCli(['train', '--resume', out, '--epochs', '2', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const epochs = readFileSync(join(out, 'epochs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).epoch);
    assert.deepEqual(epochs, [1, 2]); // epoch 1 kept from the first run, only epoch 2 trained
    assert.doesNotMatch(resumed.stderr, /epoch 1\/2/);
    const none = await lt(['train', '--resume', join(dir, 'nothing')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /config.json: no such file \(not a longtail run folder\)/);
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).epochs, 2);
  });

  it('--live-mib sets what report.html embeds for its live section: all rows, a subsample, or none', async () => {
    const dir = tempDir();
    const fixture = join(import.meta.dirname, 'fixtures', 'features_golden.npz');
    const page = async (mib: string | null) => {
      const out = join(dir, `live-${mib}`);
      const r = await lt([
        'retrain',
        '--features',
        fixture,
        '-m',
        'ncm,tau-norm',
        '--out',
        out,
        ...(mib === null ? [] : ['--live-mib', mib]),
      ]);
      assert.equal(r.code, 0, r.stderr);
      return readFileSync(join(out, 'report.html'), 'utf8');
    };
    assert.match(await page(null), /<section id="live">[\s\S]*all \d+ test images/);
    assert.match(await page('0.002'), /Live numbers on \d+ of \d+ test images/);
    assert.doesNotMatch(await page('0'), /<section id="live">/);
    const bad = await lt(['retrain', '--features', fixture, '--live-mib', '-1', '--out', join(dir, 'bad')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^longtail: --live-mib -1: must be at least 0\n$/);
    assert.equal(existsSync(join(dir, 'bad')), false);
  });

  it('a config file may name the stage-2 methods as the flag does (method) or as the schema (methods)', async () => {
    const dir = tempDir();
    const fixture = join(import.meta.dirname, 'fixtures', 'features_golden.npz');
    for (const key of ['method', 'methods']) {
      const cfg = join(dir, `${key}.yaml`);
      writeFileSync(cfg, `${key}: ncm,tau-norm\n`);
      const r = await lt([
        'retrain',
        '--features',
        fixture,
        '--config',
        cfg,
        '--out',
        join(dir, key),
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        JSON.parse(r.stdout).methods.map((m: { method: string }) => m.method),
        ['ncm', 'tau-norm'],
      );
    }
  });
});

/** A command's `--help` and `--help-all` text, in this process (no child process), and its flags. */
async function helpOf(argv: string[]): Promise<{ help: string; all: string; cmd: Command }> {
  // The commands as main.ts registers them (importing main.ts would run the CLI).
  const program = new Command().exitOverride();
  for (const register of [registerTrain, registerDemo, registerRetrain, registerStudy, registerData])
    register(program);
  let cmd: Command = program;
  for (const w of argv) cmd = cmd.commands.find((c) => c.name() === w)!;
  const run = async (flag: string) => {
    let out = '';
    cmd.configureOutput({ writeOut: (t) => (out += t), writeErr: (t) => (out += t) });
    await assert.rejects(program.parseAsync([...argv, flag], { from: 'user' }), { exitCode: 0 });
    return out;
  };
  const help = await run('--help'); // before --help-all, which stays on for this command
  return { help, all: await run('--help-all'), cmd };
}

describe('settings: help, --print-config and errors', () => {
  const fixture = join(import.meta.dirname, 'fixtures', 'features_golden.npz');
  // Each command that resolves a configuration, with a few settings that differ from the defaults.
  const COMMANDS: string[][] = [
    [
      'train',
      '--epochs',
      '3',
      '--sampler',
      'class-balanced',
      '--onnx-mean',
      '0.5,0.5,0.5',
      '--image-size',
      '32',
    ],
    ['demo', '-m', 'ncm,crt', '--crt-epochs', '3', '--tau', '0.5', '--imbalance', '10', '-j', '2'],
    ['retrain', '--features', fixture, '--method', 'lws', '--seed', '4', '--stage2-lr', '0.01'],
    ['study', 'samplers', '--samplers', 'square-root,class-balanced', '--epochs', '2', '--val-seed', '3'],
    ['data', 'summary', '--dataset', 'fashion-mnist-lt', '--max-per-class', '50', '--few-threshold', '5'],
  ];

  for (const args of COMMANDS) {
    const name = args[0] === 'study' || args[0] === 'data' ? `${args[0]} ${args[1]}` : args[0]!;
    it(`${name} --print-config prints YAML that --config reads back to the same configuration`, async () => {
      const dir = tempDir();
      const first = await lt([...args, '--print-config']);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^[a-zA-Z]+: /m);
      const file = join(dir, 'config.yaml');
      writeFileSync(file, first.stdout);
      const command = name.split(' ');
      // The file alone (with the input the command needs) resolves to the same settings.
      const extra = command[0] === 'retrain' ? ['--features', fixture] : [];
      const again = await lt([...command, ...extra, '--config', file, '--print-config']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, first.stdout);
      assert.deepEqual(readdirSync(dir), ['config.yaml']); // printed, nothing written
    });
  }

  it('data summary writes nothing without --out', () => {
    const dir = tempDir();
    const r = spawnSync(
      process.execPath,
      [join(import.meta.dirname, '..', 'bin', 'longtail.js'), 'data', 'summary'],
      {
        cwd: dir,
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /imbalance factor 100/);
    assert.doesNotMatch(r.stdout, /histogram:/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('--help-all groups the flags by component, the common ones first', async () => {
    const r = { code: 0, stderr: '', stdout: (await helpOf(['demo'])).all };
    assert.equal(r.code, 0, r.stderr);
    const headings = r.stdout.split('\n').filter((l) => /^[A-Z][^:]*:$/.test(l));
    assert.deepEqual(headings.slice(0, 6), [
      'Options:',
      'Data:',
      'Backbone:',
      'Stage 1 (representation):',
      'Stage 2 (classifier):',
      'Stage 2, NCM:', // Joint has no settings of its own, so no group
    ]);
    assert.ok(headings.includes('Stage 2, cRT:') && headings.includes('Output and run:'), headings.join('|'));
    const common = r.stdout.slice(r.stdout.indexOf('Options:'), r.stdout.indexOf('Data:'));
    for (const flag of [
      '--dataset',
      '--backbone',
      '--epochs',
      '--seed',
      '--method',
      '--config',
      '--print-config',
    ])
      assert.ok(common.includes(flag), `${flag} is not among the common flags`);
    // Help text and default come from the schema: the stage-1 epochs, a method's own setting.
    assert.match(r.stdout, /-e, --epochs <n> +stage-1 epochs \(default: 30\)/);
    assert.match(r.stdout, /--crt-epochs <n> +cRT epochs \(default: 10\)/);
  });

  it('--help folds each group to one line; --help-all lists every flag with its help', async () => {
    const counts: string[] = [];
    for (const argv of [['train'], ['demo'], ['retrain'], ['study', 'samplers'], ['data', 'summary']]) {
      const { help, all, cmd } = await helpOf(argv);
      const name = argv.join(' ');
      const lines = (t: string) => t.trimEnd().split('\n').length;
      counts.push(`${name} ${lines(help)}/${lines(all)}`);
      for (const o of cmd.options) {
        const flag = o.long ?? o.short!;
        // Every flag is listed in full by --help-all, with its help line beside it.
        assert.match(
          all,
          new RegExp(
            `${flag}\\b[^\\n]*  ${o.description.slice(0, 12).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`,
          ),
          `${name}: ${flag} in --help-all`,
        );
      }
      // Each folded group is one line in --help: its heading, its first flags, and how many it holds.
      const groups = new Map<string, string[]>();
      for (const o of cmd.options)
        if (o.helpGroupHeading !== undefined && o.helpGroupHeading !== 'Output and run:')
          groups.set(o.helpGroupHeading, [...(groups.get(o.helpGroupHeading) ?? []), o.long!]);
      for (const [heading, flags] of groups) {
        const line = help.split('\n').filter((l) => l.startsWith(`  ${heading} `));
        assert.equal(line.length, 1, `${name}: one line for ${heading}`);
        assert.ok(line[0]!.includes(flags[0]!), line[0]);
        assert.ok(line[0]!.length <= 80, line[0]);
        if (!line[0]!.includes(flags.at(-1)!))
          assert.ok(line[0]!.endsWith(`(${flags.length} flags)`), line[0]);
        assert.ok(!new RegExp(`^  ${flags[0]} `, 'm').test(help), `${name}: ${flags[0]} folded`);
        assert.ok(all.includes(`\n${heading}\n`), `${name}: ${heading} in --help-all`);
      }
      // The common flags stay in --help, in full.
      for (const flag of ['--config', '--print-config', '--help-all'])
        assert.match(help, new RegExp(`^  (-\\w, )?${flag} `, 'm'), `${name}: ${flag}`);
      assert.ok(
        // At most a screen, whatever the number of methods and settings registered.
        lines(help) <= 65 && lines(help) < lines(all),
        `${name}: --help ${lines(help)} lines, --help-all ${lines(all)}`,
      );
    }
    assert.equal(counts.length, 5);
  });

  it('errors name the flag, the value and the rule in longtail words, with one prefix', async () => {
    const cases: [string[], RegExp][] = [
      [['demo', '--epochs', '0'], /^longtail: --epochs 0: must be more than 0\n$/],
      [['train', '--momentum', '1'], /^longtail: --momentum 1: must be less than 1\n$/],
      [['demo', '--tau', '9'], /^longtail: --tau 9: must be at most 2\n$/],
      [['demo', '--image-size', '4'], /^longtail: --image-size 4: must be at least 8\n$/],
      [
        ['demo', '--dataset', 'cifar10lt'],
        /^longtail: --dataset cifar10lt: unknown dataset \(did you mean cifar10-lt\?\); valid: /,
      ],
      [
        ['demo', '--backbone', 'resnet9'],
        /^longtail: --backbone resnet9: unknown backbone \(did you mean resnet8\?\)/,
      ],
      [
        ['demo', '--sampler', 'squareroot'],
        /^longtail: --sampler squareroot: unknown sampler \(did you mean square-root\?\)/,
      ],
      [
        ['retrain', '--features', fixture, '--method', 'crtt'],
        /^longtail: unknown method 'crtt' \(did you mean crt\?\)/,
      ],
      [['demo', '--bogus'], /^longtail: unknown option '--bogus'/],
    ];
    for (const [args, want] of cases) {
      const r = await lt(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want, args.join(' '));
      assert.doesNotMatch(r.stderr, /Too (small|big)|expected number|Invalid|^error:/m, args.join(' '));
    }
    // From a file, the setting and the file are named.
    const dir = tempDir();
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'epochs: 0\n');
    const f = await lt(['demo', '--config', cfg]);
    assert.equal(f.code, 2);
    assert.equal(f.stderr, `longtail: epochs: must be more than 0 (got 0 from ${cfg})\n`);
  });
});
