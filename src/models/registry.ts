/**
 * Backbones by name (timm's create_model idea): config names a backbone and its options, never a
 * source file. Each entry owns its options as a strict zod schema whose fields carry their rule,
 * help line (`.meta({ description })`) and default; an unknown option is an error naming the valid
 * ones. A backbone's option `x` is the run setting `<name>X` and the flag `--<name>-x`
 * (`onnx`'s `inputSize`: `--onnx-input-size`), composed by `backboneSettings` and read back by
 * `backboneSpec`, so an option added to an entry reaches the flags, config.json, checkpoints and
 * the training workers with no other file touched.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { createRng } from '../random/rng.ts';
import { checkName, type RuleIssue, ruleOf } from '../registry.ts';
import { type EntrySettings, entrySettings, optionsFromSettings, settingKey } from '../settings.ts';
import type { Backbone, BackboneSpec } from './backbone.ts';
import { createOnnxBackbone } from './onnx-backbone.ts';
import { cifarResNet, resnet10 } from './resnet.ts';

type Shape = readonly [number, number, number];

export interface BackboneEntry {
  readonly description: string;
  /** The entry's options; `.strict()`, so unknown keys are refused. */
  readonly options: z.ZodObject;
  /**
   * Options longtail fills itself rather than a flag: the ONNX file from `onnx:PATH`, the
   * onnxruntime threads from `--threads`.
   */
  readonly given?: readonly string[];
  /** Weights come from a file named in the options (`onnx:PATH`), not from the seed. */
  readonly fromFile?: boolean;
  /** Registered at run time: the module that registers it (workers import it). */
  readonly module?: string;
  /** Builds the backbone for images of `inputShape`; `options` have passed `options`. */
  create(options: never, inputShape: Shape, seed: number): Backbone;
}

/** An entry whose `create` is typed by its own options schema (for registerBackbone too). */
export const defineBackbone = <S extends z.ZodObject, const G extends readonly string[] = readonly []>(e: {
  description: string;
  fromFile?: boolean;
  given?: G;
  module?: string;
  options: S;
  create: (options: z.infer<S>, inputShape: Shape, seed: number) => Backbone;
}) => e;

const NO_OPTIONS = z.object({}).strict();

/** A setting's help line, and the default the help shows when the backbone (not the schema) has it. */
const help = (description: string, shownDefault?: string) =>
  shownDefault === undefined ? { description } : { description, shownDefault };

/** Per-channel numbers: a list, or comma-separated as a flag and older config.json files give them. */
const numberList = (description: string, shownDefault: string) =>
  z
    .preprocess(
      (v) =>
        typeof v === 'string' ? v.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x))) : v,
      z.array(z.number()).min(1),
    )
    .optional()
    .meta(help(description, shownDefault));

function needsSize(name: string, shape: Shape, min: number): void {
  const [h, w] = shape;
  if (h < min || w < min)
    throw new ConfigError(`${name} needs images of at least ${min}x${min} pixels, got ${h}x${w}`);
}

const cifar = (depth: 8 | 20 | 32, description: string) =>
  defineBackbone({
    description,
    options: z
      .object({
        width: z
          .number()
          .int()
          .min(1)
          .max(256)
          .default(16)
          .meta(help(`resnet${depth}: channels of the first stage (then 2x, 4x; features 4x)`)),
      })
      .strict(),
    create: (o, s, seed) => {
      needsSize(`resnet${depth}`, s, 8);
      return cifarResNet(depth, { inputShape: s, rng: createRng(seed, 0xb0b), width: o.width });
    },
  });

export const BACKBONES = {
  resnet8: cifar(8, 'CIFAR-style ResNet-8 (3 stages x 1 basic block, widths 16/32/64), 64-d features'),
  resnet20: cifar(20, 'CIFAR-style ResNet-20 (3 x 3 blocks), 64-d features'),
  resnet32: cifar(32, 'CIFAR-style ResNet-32 (3 x 5 blocks), 64-d features'),
  resnet10: defineBackbone({
    description:
      'ImageNet-style ResNet-10 (7x7 stem, 4 stages x 1 block), 512-d features, for images >= 32x32',
    options: NO_OPTIONS,
    create: (_o, s, seed) => {
      needsSize('resnet10', s, 32);
      return resnet10({ inputShape: s, rng: createRng(seed, 0xb0b) });
    },
  }),
  onnx: defineBackbone({
    fromFile: true,
    given: ['path', 'threads'],
    description:
      'a frozen feature extractor from an ONNX file (`--backbone onnx:PATH`), run by onnxruntime-node; not trainable',
    options: z
      .object({
        path: z.string().min(1),
        inputSize: z
          .number()
          .int()
          .min(1)
          .max(4096)
          .optional()
          .meta(
            help(
              'ONNX backbone: square side it takes; images are resized (bilinear)',
              "its fixed size, else the images'",
            ),
          ),
        layout: z
          .enum(['nchw', 'nhwc'])
          .optional()
          .meta(help('ONNX backbone: input layout', 'guessed from its input shape')),
        mean: numberList(
          'ONNX backbone: per-channel mean subtracted from pixels in [0, 1], e.g. 0.485,0.456,0.406',
          '0',
        ),
        std: numberList('ONNX backbone: per-channel std divided by, e.g. 0.229,0.224,0.225', '1'),
        output: z
          .string()
          .min(1)
          .optional()
          .meta(help('ONNX backbone: the feature tensor; 4-D is average-pooled', 'its first output')),
        fcWeight: z
          .string()
          .min(1)
          .optional()
          .meta(
            help(
              "ONNX backbone: initializer of its final linear layer's weight (the stage-1 classifier for joint, tau-norm, lws)",
            ),
          ),
        fcBias: z
          .string()
          .min(1)
          .optional()
          .meta(help("ONNX backbone: initializer of its final linear layer's bias")),
        threads: z.number().int().min(1).optional(),
      })
      .strict(),
    create: (o, s) => createOnnxBackbone(o, s),
  }),
} as const satisfies Record<string, BackboneEntry>;

/** A backbone's name: a built-in one, or one added with registerBackbone. */
export type BackboneName = keyof typeof BACKBONES | (string & {});
// Every entry, built-in and registered, by name.
const ENTRIES: Record<string, BackboneEntry> = { ...(BACKBONES as unknown as Record<string, BackboneEntry>) };
/** The built-in backbones built from a seed alone (every entry but the file-backed `onnx:PATH`). */
export const BACKBONE_NAMES = (Object.keys(BACKBONES) as (keyof typeof BACKBONES)[]).filter(
  (k) => !(BACKBONES[k] as BackboneEntry).fromFile,
);

/** Every backbone a run can name, built-in and registered (not `onnx`, which is `onnx:PATH`). */
export function backboneNames(): string[] {
  return Object.keys(ENTRIES).filter((k) => !ENTRIES[k]!.fromFile);
}

/** `onnx:PATH` names an ONNX file as the backbone. */
export const ONNX_PREFIX = 'onnx:';
export const isOnnxSpec = (name: string): boolean => name.startsWith(ONNX_PREFIX);

export function checkBackboneName(name: string): BackboneName {
  return checkName(ENTRIES, 'backbone', name);
}

/**
 * Adds a backbone at run time (library API). `module` is the URL of the module that registers it
 * (`import.meta.url`): the data-parallel training workers import it before they build their replica,
 * since a worker thread starts with the built-in registry only. Its options become settings and
 * flags (`<name>X`) like a built-in backbone's, for every command built after this call.
 */
export function registerBackbone(name: string, e: BackboneEntry & { module: string }): void {
  if (!/^[a-z][a-z0-9-]*$/.test(name))
    throw new ConfigError(`registerBackbone: name '${name}' must be lower-case letters, digits and dashes`);
  const existing = ENTRIES[name];
  // A worker imports the registering module again: the same module registering again is a no-op.
  if (existing !== undefined && existing.module === e.module) return;
  if (existing !== undefined)
    throw new ConfigError(`registerBackbone: a backbone named '${name}' exists already`);
  ENTRIES[name] = e;
}

/** Removes a backbone added with registerBackbone (the built-in ones stay). */
export function unregisterBackbone(name: string): void {
  if (Object.hasOwn(BACKBONES, name)) throw new ConfigError(`unregisterBackbone: '${name}' is built in`);
  delete ENTRIES[name];
}

/** The modules that registered backbones at run time, for the training workers to import. */
export function backboneModule(name: string): string | undefined {
  return ENTRIES[name]?.module;
}

/** A backbone entry's options, checked against its schema; errors name the backbone and option. */
export function checkBackboneOptions(name: string, options: Record<string, unknown> = {}): object {
  const schema: z.ZodObject = ENTRIES[name]!.options;
  const r = schema.safeParse(options);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const valid = Object.keys(schema.shape);
  const validText = `valid options: ${valid.length ? valid.join(', ') : 'none'}`;
  if (issue.code === 'unrecognized_keys')
    throw new ConfigError(`backbone ${name}: unknown option(s) ${issue.keys.join(', ')}; ${validText}`);
  const field = String(issue.path[0]);
  throw new ConfigError(
    `backbone ${name}: option ${field}: ${ruleOf(issue as RuleIssue, options[field])} (got ${JSON.stringify(options[field])})`,
  );
}

/** The run setting of a backbone's option: `onnx`, `inputSize` -> `onnxInputSize` (flag `--onnx-input-size`). */
export const backboneSettingKey = settingKey;

/** Every backbone's options as run settings (`resnet8Width`, `onnxInputSize`, ...), typed for the built-in ones. */
export function backboneSettings(): EntrySettings<typeof BACKBONES> {
  return entrySettings(ENTRIES, 'backbone') as unknown as EntrySettings<typeof BACKBONES>;
}

/**
 * The backbone a run configuration names (`backbone`: a registry name or `onnx:PATH`) with its
 * options taken from the settings (`<name>X`), parsed by the entry's schema (defaults applied):
 * what JointConfig, checkpoints, workers and the model receive. `threads` is onnxruntime's.
 */
export function backboneSpec(
  settings: { backbone: string; threads?: number | undefined } & Record<string, unknown>,
): BackboneSpec {
  const onnx = isOnnxSpec(settings.backbone);
  const name = onnx ? 'onnx' : checkBackboneName(settings.backbone);
  const options: Record<string, unknown> = onnx
    ? { path: settings.backbone.slice(ONNX_PREFIX.length), threads: settings.threads }
    : {};
  Object.assign(options, optionsFromSettings(name, ENTRIES[name]!, settings));
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { name, options: checkBackboneOptions(name, given) as Record<string, unknown> };
}

/**
 * A spec as configuration, a checkpoint or a library caller gives it: a bare name (checkpoints
 * before specs carried options, `onnx:PATH`) or `{ name, options }`, with its options parsed.
 */
export function resolveBackboneSpec(spec: string | BackboneSpec): BackboneSpec {
  const { name, options } =
    typeof spec === 'string'
      ? isOnnxSpec(spec)
        ? { name: 'onnx', options: { path: spec.slice(ONNX_PREFIX.length) } }
        : { name: spec, options: {} }
      : spec;
  const key = checkBackboneName(name);
  return { name: key, options: checkBackboneOptions(key, options) as Record<string, unknown> };
}

/** A spec for messages, with only the options not at their default: `resnet8`, `resnet8 (width 8)`. */
export function showBackboneSpec(spec: string | BackboneSpec): string {
  if (typeof spec === 'string') return spec;
  const defaults = ENTRIES[spec.name]?.options.safeParse({});
  const d = (defaults?.success ? defaults.data : {}) as Record<string, unknown>;
  const o = Object.entries(spec.options ?? {}).filter(
    ([k, v]) => v !== undefined && JSON.stringify(v) !== JSON.stringify(d[k]),
  );
  return o.length === 0
    ? spec.name
    : `${spec.name} (${o.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ')})`;
}

/** Builds a backbone for images of [height, width, channels]; weights from the seed. */
export function createBackbone(spec: string | BackboneSpec, inputShape: Shape, seed: number): Backbone {
  if (!(inputShape[2] >= 1)) throw new ConfigError(`images need at least one channel, got ${inputShape[2]}`);
  const { name, options } = resolveBackboneSpec(spec);
  return ENTRIES[name]!.create(options as never, inputShape, seed);
}
