/**
 * Backbones by name (timm's create_model idea): config names a backbone and its options, never a
 * source file. Each entry documents its options as a strict schema, so an unknown option is an
 * error naming the valid ones.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { createRng } from '../random/rng.ts';
import { checkName } from '../registry.ts';
import type { Backbone, BackboneSpec } from './backbone.ts';
import { createOnnxBackbone } from './onnx-backbone.ts';
import { cifarResNet, resnet10 } from './resnet.ts';

type Shape = readonly [number, number, number];

interface BackboneEntry {
  readonly description: string;
  /** The entry's options; `.strict()`, so unknown keys are refused. */
  readonly options: z.ZodObject;
  /** Weights come from a file named in the options (`onnx:PATH`), not from the seed. */
  readonly fromFile?: boolean;
  /** Builds the backbone for images of `inputShape`; `options` have passed `options`. */
  create(options: never, inputShape: Shape, seed: number): Backbone;
}

/** An entry whose `create` is typed by its own options schema. */
const entry = <S extends z.ZodObject>(e: {
  description: string;
  fromFile?: boolean;
  options: S;
  create: (options: z.infer<S>, inputShape: Shape, seed: number) => Backbone;
}) => e;

const NO_OPTIONS = z.object({}).strict();

function needsSize(name: string, shape: Shape, min: number): void {
  const [h, w] = shape;
  if (h < min || w < min)
    throw new ConfigError(`${name} needs images of at least ${min}x${min} pixels, got ${h}x${w}`);
}

const cifar = (depth: 8 | 20 | 32, description: string) =>
  entry({
    description,
    options: NO_OPTIONS,
    create: (_o, s, seed) => {
      needsSize(`resnet${depth}`, s, 8);
      return cifarResNet(depth, { inputShape: s, rng: createRng(seed, 0xb0b) });
    },
  });

export const BACKBONES = {
  resnet8: cifar(8, 'CIFAR-style ResNet-8 (3 stages x 1 basic block, widths 16/32/64), 64-d features'),
  resnet20: cifar(20, 'CIFAR-style ResNet-20 (3 x 3 blocks), 64-d features'),
  resnet32: cifar(32, 'CIFAR-style ResNet-32 (3 x 5 blocks), 64-d features'),
  resnet10: entry({
    description:
      'ImageNet-style ResNet-10 (7x7 stem, 4 stages x 1 block), 512-d features, for images >= 32x32',
    options: NO_OPTIONS,
    create: (_o, s, seed) => {
      needsSize('resnet10', s, 32);
      return resnet10({ inputShape: s, rng: createRng(seed, 0xb0b) });
    },
  }),
  onnx: entry({
    fromFile: true,
    description:
      'a frozen feature extractor from an ONNX file (`--backbone onnx:PATH`), run by onnxruntime-node; not trainable',
    options: z
      .object({
        path: z.string().min(1),
        inputSize: z.number().int().min(1).max(4096).optional(),
        layout: z.enum(['nchw', 'nhwc']).optional(),
        mean: z.array(z.number()).min(1).optional(),
        std: z.array(z.number()).min(1).optional(),
        output: z.string().min(1).optional(),
        fcWeight: z.string().min(1).optional(),
        fcBias: z.string().min(1).optional(),
        threads: z.number().int().min(1).optional(),
      })
      .strict(),
    create: (o, s) => createOnnxBackbone(o, s),
  }),
} as const satisfies Record<string, BackboneEntry>;

export type BackboneName = keyof typeof BACKBONES;
/** Backbones built from a seed alone (every entry but the file-backed `onnx:PATH`). */
export const BACKBONE_NAMES = (Object.keys(BACKBONES) as BackboneName[]).filter(
  (k) => !(BACKBONES[k] as BackboneEntry).fromFile,
);

/** `onnx:PATH` names an ONNX file as the backbone. */
export const ONNX_PREFIX = 'onnx:';
export const isOnnxSpec = (name: string): boolean => name.startsWith(ONNX_PREFIX);

export function checkBackboneName(name: string): BackboneName {
  return checkName(BACKBONES, 'backbone', name);
}

/** A backbone entry's options, checked against its schema; errors name the backbone and option. */
export function checkBackboneOptions(name: BackboneName, options: Record<string, unknown> = {}): object {
  const schema: z.ZodObject = BACKBONES[name].options;
  const r = schema.safeParse(options);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const valid = Object.keys(schema.shape);
  const validText = `valid options: ${valid.length ? valid.join(', ') : 'none'}`;
  if (issue.code === 'unrecognized_keys')
    throw new ConfigError(`backbone ${name}: unknown option(s) ${issue.keys.join(', ')}; ${validText}`);
  const field = String(issue.path[0]);
  throw new ConfigError(
    `backbone ${name}: option ${field}: ${issue.message} (got ${JSON.stringify(options[field])})`,
  );
}

/** Builds a backbone for images of [height, width, channels]; weights from the seed. */
export function createBackbone(spec: string | BackboneSpec, inputShape: Shape, seed: number): Backbone {
  const { name, options } =
    typeof spec === 'string'
      ? isOnnxSpec(spec)
        ? { name: 'onnx', options: { path: spec.slice(5) } }
        : { name: spec, options: {} }
      : spec;
  if (!(inputShape[2] >= 1)) throw new ConfigError(`images need at least one channel, got ${inputShape[2]}`);
  const key = checkBackboneName(name);
  const e: BackboneEntry = BACKBONES[key];
  return e.create(checkBackboneOptions(key, options) as never, inputShape, seed);
}
