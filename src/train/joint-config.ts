/**
 * Stage 1's settings, owned here as one schema: the backbone and each backbone's options (their
 * entries in models/registry.ts), the sampler and each sampler's options (sampling/samplers.ts),
 * SGD and its schedule, the loss, augmentation, the seed, threads and precision. The run
 * configuration (config/schema.ts, above) composes this schema, so the stage-1 part of a parsed
 * run configuration is a JointConfig as it stands: trainJoint takes it, and parses it only when a
 * library caller built it by hand (settings.ts: parseOnce).
 */
import { z } from 'zod';
import { backboneNames, backboneSettings, isOnnxSpec, ONNX_PREFIX } from '../models/registry.ts';
import { SGD_SETTINGS } from '../optim/settings.ts';
import { nearestName } from '../registry.ts';
import { samplerNames, samplerSettings } from '../sampling/samplers.ts';
import { parseOnce } from '../settings.ts';
import type { Augmentation } from './augment.ts';

/**
 * Stage-1 losses: plain cross-entropy, balanced softmax (Ren et al., NeurIPS 2020: CE(z + log prior))
 * and the logit-adjusted loss (Menon et al., ICLR 2021: CE(z + tau log prior)); train/loss.ts.
 */
export const LOSS_NAMES = ['ce', 'balanced-softmax', 'logit-adjusted'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

/** A setting's help line, and the default the help shows when a loader, not the schema, has it. */
export const help = (description: string, shownDefault?: string) =>
  shownDefault === undefined ? { description } : { description, shownDefault };

/**
 * A name from a registry, the list read when a value is checked (so an entry registered after
 * the schema was built is valid); an unknown one is refused with the nearest as a "did you mean".
 */
export const registryName = (list: () => readonly string[], what: string, more = '') =>
  z.string().superRefine((v, ctx) => {
    const valid = list();
    if (valid.includes(v)) return;
    const near = nearestName(v, valid);
    ctx.addIssue({
      code: 'custom',
      message: `unknown ${what}${near === undefined ? '' : ` (did you mean ${near}?)`}; valid: ${valid.join(', ')}${more}`,
    });
  });

/** Threads: data-parallel stage 1, class-split stage-2 heads and stage 2's evaluation (a setting of both stages). */
export const threadsSetting = z
  .number()
  .int()
  .min(1)
  .max(64)
  .optional()
  .meta(
    help(
      'threads, each with its own backend: data-parallel stage 1, class-split stage-2 heads, evaluation',
      'all cores',
    ),
  );

/**
 * The backbone: a registry name or `onnx:PATH`, and every backbone's options as settings
 * (`resnet8Width`, `onnxInputSize`, ...), from the entries, which own their rules, help and defaults.
 */
export function backboneGroup() {
  return {
    backbone: z
      .string()
      .superRefine((v, ctx) => {
        const valid = backboneNames();
        if (valid.includes(v) || (isOnnxSpec(v) && v.length > ONNX_PREFIX.length)) return;
        const near = nearestName(v, valid);
        ctx.addIssue({
          code: 'custom',
          message: `unknown backbone${near === undefined ? '' : ` (did you mean ${near}?)`}; valid: ${valid.join(', ')}, or ${ONNX_PREFIX}PATH`,
        });
      })
      .default('resnet8')
      .meta(
        help(
          `backbone: ${backboneNames().join(', ')}, or onnx:PATH (a frozen ONNX feature extractor: train then only extracts features)`,
        ),
      ),
    ...backboneSettings(),
  };
}

/** Stage 1 proper: sampling and each sampler's options, SGD and its schedule, the loss, augmentation, the seed. */
export function stage1Group() {
  return {
    sampler: registryName(samplerNames, 'sampler')
      .default('instance-balanced')
      .meta(help(`stage-1 sampler: ${samplerNames().join(', ')}`)),
    samplerQ: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .meta(help('sample class j with probability n_j^q / sum n^q (overrides --sampler)')),
    // Each sampler's own options (`classAwarePerClass`), from its entry; the stage-2 heads' class-aware sampler reads them too.
    ...samplerSettings(),
    epochs: z.number().int().positive().default(30).meta(help('stage-1 epochs')),
    // Batch size, LR, weight decay, momentum: the optimiser's own settings, shared with the stage-2 heads.
    ...SGD_SETTINGS,
    warmupEpochs: z.number().int().min(0).default(0).meta(help('linear warm-up epochs')),
    seed: z.number().int().min(0).default(0).meta(help('random seed: weights, sampling, augmentation')),
    augment: z
      .enum(['auto', 'crop-flip', 'resized-crop-flip', 'none'])
      .default('auto')
      .meta(help('training augmentation')),
    threads: threadsSetting,
    loss: z
      .enum(LOSS_NAMES)
      .default('ce')
      .meta(
        help(
          'stage-1 loss: ce, balanced-softmax (CE(z + log prior)) or logit-adjusted (CE(z + tau log prior))',
        ),
      ),
    lossTau: z.number().min(0).max(5).optional().meta(help('tau of --loss logit-adjusted', '1')),
    precision: z
      .enum(['fp32', 'bf16'])
      .default('fp32')
      .meta(
        help(
          'stage-1 arithmetic: fp32, or bf16 convolutions with fp32 sums, master weights and optimiser state (a CPU with AVX512_BF16)',
        ),
      ),
  };
}

/** Stage 1's settings as one shape: the backbone group, then stage 1's own (composed when asked). */
export const jointSettings = () => ({ ...backboneGroup(), ...stage1Group() });

/** The rule across two stage-1 settings, which no single field holds; every schema with stage 1 applies it. */
export function jointRules(v: { warmupEpochs?: number; epochs?: number }, ctx: z.RefinementCtx): void {
  if (v.warmupEpochs !== undefined && v.epochs !== undefined && !(v.warmupEpochs < v.epochs))
    ctx.addIssue({
      code: 'custom',
      path: ['warmupEpochs'],
      message: `must be less than epochs (${v.epochs})`,
      input: v.warmupEpochs,
    });
}

/** Stage 1's schema from the registries as they are now (a backbone or sampler registered since included). */
export const jointConfigSchema = () => z.object(jointSettings()).superRefine(jointRules);

/** Stage 1's schema with the built-in registries: its type is JointConfig. */
export const JointConfigSchema = jointConfigSchema();

/**
 * Stage 1's settings, as parsed: the backbone by name with each backbone's options as settings
 * (`resnet8Width`), the sampler by name with each sampler's (`classAwarePerClass`), and the rest.
 */
export type JointConfig = z.output<typeof JointConfigSchema>;

/** The schema's defaults, on one thread: what a library caller of trainJoint spreads and overrides. */
export const DEFAULT_JOINT_CONFIG: JointConfig = JointConfigSchema.parse({});

/**
 * A library caller's stage-1 settings checked by the schema (a ConfigError naming the first
 * setting that breaks a rule, worded as the config's); a configuration the CLI or the pipeline
 * parsed already is returned as it is.
 */
export function validateJointConfig(c: JointConfig): JointConfig {
  return parseOnce(jointConfigSchema(), c, 'the training config');
}

/** Only stage 1's settings of a configuration (a run's has data and stage-2 settings too): what a checkpoint records. */
export function jointPart(c: JointConfig): JointConfig {
  const keys = Object.keys(jointSettings());
  return Object.fromEntries(Object.entries(c).filter(([k]) => keys.includes(k))) as JointConfig;
}

export function resolveAugmentation(aug: JointConfig['augment'], height: number): Augmentation {
  if (aug !== 'auto') return aug;
  return height <= 64 ? 'crop-flip' : 'resized-crop-flip';
}
