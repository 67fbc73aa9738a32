/**
 * Flag groups shared by commands, and the one place flags become a configuration:
 * defaults < --config file < flags, validated by the schema of src/config/schema.ts.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import { methodEntries, methodNames } from '../classifiers/registry.ts';
import { LOSS_NAMES, readConfigFile, resolveConfig } from '../config/schema.ts';
import { DATASET_NAMES } from '../data/registry.ts';
import { BACKBONE_NAMES } from '../models/registry.ts';
import { SAMPLER_NAMES } from '../sampling/samplers.ts';

/** A numeric flag's parser; `min` refuses values below it (e.g. `--top-k 0`). */
export function num(flag: string, integer = false, min?: number) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${flag} expects ${integer ? 'an integer' : 'a number'}, got '${v}'`);
    }
    if (min !== undefined && n < min)
      throw new InvalidArgumentError(`${flag} must be at least ${min}, got ${v}`);
    return n;
  };
}

/** `--out DIR` and `--force`, for every command that writes a run folder. */
export function addOutOptions(cmd: Command, what: string, defaultDir: string): Command {
  return cmd
    .option(
      '-o, --out <dir>',
      `${what} (default: ${defaultDir}); an existing non-empty folder is refused without --force`,
    )
    .option('-f, --force', 'replace the run in an existing --out folder (only the files longtail writes)');
}

/** `-c, --config FILE`: any setting of the command from a YAML or JSON file (flags win). */
export function addConfigOption(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'YAML or JSON file with any of these settings (flags win)');
}

export function addDataOptions(cmd: Command): Command {
  cmd
    .addOption(
      new Option('--dataset <name>', `data set: ${DATASET_NAMES.join(', ')} (default: fashion-mnist-lt)`),
    )
    .option(
      '--data-dir <dir>',
      'folder with the data set files (IDX for the MNISTs, binary batches for CIFAR; imagefolder: train/, test/, val/)',
    )
    .option('--imbalance <IF>', 'imbalance factor n_max / n_min (default: 100)', num('--imbalance'))
    .option(
      '--max-per-class <n>',
      'n_max, images in the largest class (default: 1000; CIFAR 5000 / 500)',
      num('--max-per-class', true),
    )
    .option(
      '--val-per-class <n>',
      'balanced validation images per class (default: 20)',
      num('--val-per-class', true),
    )
    .option(
      '--subset-seed <n>',
      "CIFAR-LT: seed of the per-class subset (default: 0, the reference code's subset)",
      num('--subset-seed', true),
    )
    .option(
      '--download',
      'CIFAR: fetch the official binary archive into --data-dir when its files are not there (MD5 checked)',
    )
    .option('--train-list <file>', 'list: training list file (`path label` per line)')
    .option('--val-list <file>', 'list: validation list file')
    .option('--test-list <file>', 'list: test list file')
    .option('--data-root <dir>', 'list: folder the list paths are relative to')
    .option('--classes <file>', 'list: class names, one a line in label order (default: the names sorted)')
    .option(
      '--val-seed <n>',
      'imagefolder without val/: seed of the validation images drawn from train/ (default: 0)',
      num('--val-seed', true),
    )
    .option(
      '--image-size <px>',
      'list, imagefolder: square image side after resize and centre crop, 8-1024 (default: 64)',
      num('--image-size', true),
    );
  addThresholdOptions(cmd);
  return cmd;
}

/** Shot-split thresholds, shared by every command that scores splits. */
export function addThresholdOptions(cmd: Command): Command {
  return cmd
    .option(
      '--many-threshold <n>',
      'many-shot: more than n training images (default: 100)',
      num('--many-threshold', true),
    )
    .option(
      '--few-threshold <n>',
      'few-shot: fewer than n training images (default: 20)',
      num('--few-threshold', true),
    );
}

export function addTrainOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--backbone <name>',
        `backbone: ${BACKBONE_NAMES.join(', ')}, or onnx:PATH (a frozen ONNX feature extractor: train then only extracts features) (default: resnet8)`,
      ),
    )
    .option(
      '--onnx-input-size <px>',
      "ONNX backbone: square side it takes (default: its fixed size, else the images'); images are resized (bilinear)",
      num('--onnx-input-size', true, 1),
    )
    .addOption(
      new Option(
        '--onnx-layout <layout>',
        'ONNX backbone: input layout (default: guessed from its input shape)',
      ).choices(['nchw', 'nhwc']),
    )
    .option(
      '--onnx-mean <list>',
      'ONNX backbone: per-channel mean subtracted from pixels in [0, 1], e.g. 0.485,0.456,0.406 (default: 0)',
    )
    .option(
      '--onnx-std <list>',
      'ONNX backbone: per-channel std divided by, e.g. 0.229,0.224,0.225 (default: 1)',
    )
    .option(
      '--onnx-output <name>',
      'ONNX backbone: the feature tensor (default: its first output); 4-D is average-pooled',
    )
    .option(
      '--onnx-fc-weight <name>',
      "ONNX backbone: initializer of its final linear layer's weight (the stage-1 classifier for joint, tau-norm, lws)",
    )
    .option('--onnx-fc-bias <name>', "ONNX backbone: initializer of its final linear layer's bias")
    .addOption(
      new Option(
        '--sampler <name>',
        `stage-1 sampler: ${SAMPLER_NAMES.join(', ')} (default: instance-balanced)`,
      ),
    )
    .option(
      '--sampler-q <q>',
      'sample class j with probability n_j^q / sum n^q (overrides --sampler)',
      num('--sampler-q'),
    )
    .option('-e, --epochs <n>', 'stage-1 epochs (default: 30)', num('--epochs', true))
    .option('-b, --batch-size <n>', 'batch size (default: 128)', num('--batch-size', true))
    .option('--lr <rate>', 'initial learning rate, cosine to 0 (default: 0.1)', num('--lr'))
    .option('--weight-decay <wd>', 'weight decay (default: 5e-4)', num('--weight-decay'))
    .option('--momentum <m>', 'SGD momentum (default: 0.9)', num('--momentum'))
    .option('--warmup-epochs <n>', 'linear warm-up epochs (default: 0)', num('--warmup-epochs', true))
    .option('--seed <n>', 'random seed: weights, sampling, augmentation (default: 0)', num('--seed', true))
    .option(
      '-j, --threads <n>',
      'threads, each with its own backend: data-parallel stage 1, class-split stage-2 heads (default: all cores)',
      num('--threads', true),
    )
    .addOption(
      new Option(
        '--loss <name>',
        'stage-1 loss: ce, balanced-softmax (CE(z + log prior)) or logit-adjusted (CE(z + tau log prior)) (default: ce)',
      ).choices([...LOSS_NAMES]),
    )
    .option('--loss-tau <tau>', 'tau of --loss logit-adjusted (default: 1)', num('--loss-tau'))
    .addOption(
      new Option('--augment <kind>', 'training augmentation (default: auto)').choices([
        'auto',
        'crop-flip',
        'resized-crop-flip',
        'none',
      ]),
    );
}

/** `crtEpochs` -> `--crt-epochs`. */
const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * A flag for one method setting, derived from its zod schema (classifiers/registry.ts): numbers and
 * integers parsed, enums as choices, arrays of numbers comma-separated; help text and default from
 * the schema.
 */
function methodFlag(key: string, schema: z.ZodType): Option {
  let t = schema as z.ZodType & { def: { type: string; innerType?: z.ZodType; defaultValue?: unknown } };
  let fallback: unknown;
  while (t.def.type === 'optional' || t.def.type === 'default') {
    if (t.def.type === 'default') fallback = t.def.defaultValue;
    t = t.def.innerType as typeof t;
  }
  const flag = flagOf(key);
  const help = `${schema.description ?? key}${fallback === undefined ? '' : ` (default: ${String(fallback)})`}`;
  const type = t.def.type;
  if (type === 'enum') {
    return new Option(`${flag} <kind>`, help).choices((t as unknown as { options: string[] }).options);
  }
  if (type === 'number') {
    const integer = (t as unknown as { isInt?: boolean }).isInt === true;
    return new Option(`${flag} <${integer ? 'n' : 'value'}>`, help).argParser(num(flag, integer));
  }
  if (type === 'array') {
    const parse = num(flag);
    return new Option(`${flag} <list>`, `${help}, comma-separated`).argParser((v: string) =>
      v.split(',').map((s) => parse(s.trim())),
    );
  }
  if (type === 'boolean') return new Option(flag, help);
  return new Option(`${flag} <value>`, help);
}

export function addStage2Options(cmd: Command): Command {
  cmd.option(
    '-m, --method <list>',
    `stage-2 methods: ${methodNames().join(', ')}, comma-separated, or all (default: all)`,
  );
  // Each method's own settings, from its registry entry.
  for (const e of methodEntries())
    for (const [key, schema] of Object.entries(e.options.shape))
      cmd.addOption(methodFlag(key, schema as z.ZodType));
  const trained = methodEntries()
    .filter((e) => e.trains)
    .map((e) => e.label)
    .join(' / ');
  return cmd
    .option(
      '--stage2-lr <rate>',
      `${trained} learning rate (default: the stage-1 LR, unless the method sets its own)`,
      num('--stage2-lr'),
    )
    .option(
      '--stage2-batch-size <n>',
      `${trained} batch size (default: the stage-1 batch size, else 128)`,
      num('--stage2-batch-size', true),
    )
    .option(
      '--samples-per-class <n>',
      'class-aware sampler: images per class in a row (default: 4)',
      num('--samples-per-class', true),
    )
    .addOption(
      new Option(
        '--mode <mode>',
        `${trained} input: augmented (through the frozen backbone, official) or features (cached, fast); auto = augmented when a backbone is available`,
      ).choices(['auto', 'features', 'augmented']),
    )
    .option(
      '--live-mib <n>',
      'MiB of test logits report.html embeds for its live sliders; above it the page works on a stratified subsample of test rows (raise it for many classes; 0: no live section) (default: 8)',
      num('--live-mib', false, 0),
    )
    .addOption(
      new Option(
        '--calibrate <how>',
        'temperature: fit a temperature per method on validation (NLL), used by ECE and the prior corrections; none: raw scores (default: temperature when there is a validation split)',
      ).choices(['none', 'temperature']),
    );
}

/** Flags that say where and how to run, not what: never part of a saved configuration. */
const NOT_CONFIG = new Set([
  'config',
  'out',
  'force',
  'json',
  'backend',
  'resume',
  'exportFeatures',
  'quiet',
]);

/**
 * Only the settings the user gave (flags and --config), validated by the full schema: for
 * `--resume`, where the saved run supplies the rest and a default must not pass for a choice.
 */
export function givenSettings<S extends z.ZodType>(
  schema: S,
  opts: Record<string, unknown>,
): Partial<z.infer<S>> {
  const layers = settingLayers(opts);
  const all = resolveConfig(schema, layers) as Record<string, unknown>;
  const given = new Set(layers.flatMap((l) => Object.keys(l.values)));
  return Object.fromEntries(Object.entries(all).filter(([k]) => given.has(k))) as Partial<z.infer<S>>;
}

/** Resolves a command's configuration from defaults, --config and flags (one schema per command). */
export function configFromFlags<S extends z.ZodType>(schema: S, opts: Record<string, unknown>): z.infer<S> {
  return resolveConfig(schema, settingLayers(opts));
}

function settingLayers(opts: Record<string, unknown>): { source: string; values: Record<string, unknown> }[] {
  const flags: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (NOT_CONFIG.has(k) || v === undefined) continue;
    flags[k === 'method' ? 'methods' : k] = v;
  }
  const layers: { source: string; values: Record<string, unknown> }[] = [];
  if (typeof opts.config === 'string') {
    // A file may name the methods as the flag does (`method: crt,lws`) or as the schema (`methods`).
    const { method, ...file } = readConfigFile(opts.config);
    layers.push({ source: opts.config, values: method === undefined ? file : { methods: method, ...file } });
  }
  layers.push({ source: 'flags', values: flags });
  return layers;
}
