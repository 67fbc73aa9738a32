/**
 * Samplers: each gives one epoch's image indices, floor(N / batch) * batch of them (docs/methods.md:
 * one epoch = floor(N / batch) steps for every sampler), derived from (seed, epoch) only so a
 * resumed run replays the same order.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { createRng, type Rng } from '../random/rng.ts';
import { checkName, type RuleIssue, ruleOf } from '../registry.ts';
import { type EntrySettings, entrySettings, optionsFromSettings, settingKey } from '../settings.ts';
import { classProbabilities, progressiveProbabilities } from './probabilities.ts';

export interface SamplerContext {
  /** Training labels, [N]. */
  labels: ArrayLike<number>;
  numClasses: number;
  batchSize: number;
  seed: number;
  /** Total epochs (progressively-balanced interpolates over them). */
  epochs: number;
}

export interface Sampler {
  readonly name: string;
  /** Steps (batches) per epoch. */
  readonly stepsPerEpoch: number;
  /** Class probabilities the sampler draws with at this epoch (null for class-aware: it is exact, not drawn). */
  probabilities(epoch: number): number[] | null;
  /** The image indices of one epoch, in batch order. */
  epoch(epoch: number): Int32Array;
}

function prepare(ctx: SamplerContext) {
  const n = ctx.labels.length;
  if (!(ctx.batchSize >= 1) || !Number.isInteger(ctx.batchSize)) {
    throw new ConfigError(`--batch-size must be a positive integer, got ${ctx.batchSize}`);
  }
  const steps = Math.floor(n / ctx.batchSize);
  if (steps < 1)
    throw new ConfigError(`--batch-size ${ctx.batchSize} is larger than the ${n} training images`);
  const byClass: number[][] = Array.from({ length: ctx.numClasses }, () => []);
  for (let i = 0; i < n; i++) byClass[ctx.labels[i]!]!.push(i);
  return { n, steps, byClass, counts: byClass.map((c) => c.length) };
}

/** Draws `total` indices: a class by its probability (inverse CDF), then an image uniformly within it. */
function drawByClass(p: number[], byClass: number[][], total: number, rng: Rng): Int32Array {
  const cdf: number[] = [];
  let acc = 0;
  for (const x of p) {
    acc += x;
    cdf.push(acc);
  }
  const out = new Int32Array(total);
  for (let k = 0; k < total; k++) {
    const u = rng.next() * acc;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    while (byClass[lo]!.length === 0) lo++; // never lands on an empty class (p = 0), guard float edges
    const members = byClass[lo]!;
    out[k] = members[rng.int(members.length)]!;
  }
  return out;
}

const SALT = { instance: 11, q: 12, progressive: 13, classAware: 14 } as const;

/** Instance-balanced: an ordinary shuffled epoch (every image once, without replacement). */
export function instanceBalanced(ctx: SamplerContext): Sampler {
  const { n, steps, counts } = prepare(ctx);
  return {
    name: 'instance-balanced',
    stepsPerEpoch: steps,
    probabilities: () => classProbabilities(counts, 1),
    epoch: (e) =>
      createRng(ctx.seed, SALT.instance, e)
        .permutation(n)
        .subarray(0, steps * ctx.batchSize),
  };
}

/** Any q in [0, 1]: p_j = n_j^q / sum n^q, drawn with replacement. */
export function qSampler(ctx: SamplerContext, q: number, name = `q=${q}`): Sampler {
  const { steps, byClass, counts } = prepare(ctx);
  const p = classProbabilities(counts, q);
  return {
    name,
    stepsPerEpoch: steps,
    probabilities: () => p,
    epoch: (e) => drawByClass(p, byClass, steps * ctx.batchSize, createRng(ctx.seed, SALT.q, e)),
  };
}

/** Progressively-balanced: instance-balanced at the first epoch, class-balanced at the last. */
export function progressivelyBalanced(ctx: SamplerContext): Sampler {
  const { steps, byClass, counts } = prepare(ctx);
  return {
    name: 'progressively-balanced',
    stepsPerEpoch: steps,
    probabilities: (e) => progressiveProbabilities(counts, e, ctx.epochs),
    epoch: (e) =>
      drawByClass(
        progressiveProbabilities(counts, e, ctx.epochs),
        byClass,
        steps * ctx.batchSize,
        createRng(ctx.seed, SALT.progressive, e),
      ),
  };
}

/**
 * Class-aware (the official stage-2 class-balanced sampler): walk a shuffled cycle of the
 * classes; from each, take `perClass` consecutive images of that class's own shuffled
 * cycle (reshuffled when exhausted). A batch of 128 with 4 per class holds 32 classes x 4.
 * The official iterators carry over between epochs; here they restart from (seed, epoch) so an
 * epoch is reproducible on its own.
 */
export function classAware(ctx: SamplerContext, perClass = 4): Sampler {
  const { steps, byClass } = prepare(ctx);
  if (!(perClass >= 1) || !Number.isInteger(perClass)) {
    throw new ConfigError(`class-aware: perClass must be a positive integer, got ${perClass}`);
  }
  const present = byClass.map((m, c) => (m.length > 0 ? c : -1)).filter((c) => c >= 0);
  return {
    name: 'class-aware',
    stepsPerEpoch: steps,
    probabilities: () => null,
    epoch: (e) => {
      const rng = createRng(ctx.seed, SALT.classAware, e);
      const cycle = (items: number[]) => {
        let order = rng.shuffle([...items]) as number[];
        let i = 0;
        return () => {
          if (i >= order.length) {
            order = rng.shuffle(order) as number[];
            i = 0;
          }
          return order[i++]!;
        };
      };
      const nextClass = cycle(present);
      const memberIters = byClass.map((m) => (m.length > 0 ? cycle(m) : null));
      const total = steps * ctx.batchSize;
      const out = new Int32Array(total);
      let k = 0;
      while (k < total) {
        const it = memberIters[nextClass()]!;
        for (let j = 0; j < perClass && k < total; j++) out[k++] = it();
      }
      return out;
    },
  };
}

export interface SamplerOptions {
  /** Exponent for `--sampler-q` (any q in [0, 1]): overrides the name with the q family. */
  q?: number;
}

/**
 * A sampler: its help line, its own options (a strict zod object whose fields carry their rule,
 * default and `.meta({ description })`) and its constructor, typed by those options. Option `x`
 * of sampler `name` is the stage-1 setting `<name>X` and the flag `--<name>-x` (samplerSettings).
 */
export interface SamplerEntry<S extends z.ZodObject = z.ZodObject> {
  readonly description: string;
  readonly options: S;
  create(ctx: SamplerContext, options: z.infer<S>): Sampler;
}

const entry = <S extends z.ZodObject>(e: SamplerEntry<S>) => e;
const NO_OPTIONS = z.object({}).strict();

export const SAMPLERS = {
  'instance-balanced': entry({
    description: 'q = 1: every image equally likely (ordinary shuffled epoch)',
    options: NO_OPTIONS,
    create: (c) => instanceBalanced(c),
  }),
  'square-root': entry({
    description: 'q = 1/2: p_j proportional to sqrt(n_j)',
    options: NO_OPTIONS,
    create: (c) => qSampler(c, 0.5, 'square-root'),
  }),
  'class-balanced': entry({
    description: 'q = 0: every class equally likely',
    options: NO_OPTIONS,
    create: (c) => qSampler(c, 0, 'class-balanced'),
  }),
  'progressively-balanced': entry({
    description: 'instance-balanced at the first epoch moving linearly to class-balanced at the last',
    options: NO_OPTIONS,
    create: (c) => progressivelyBalanced(c),
  }),
  'class-aware': entry({
    description: 'official stage-2 class-balanced sampler: shuffled class cycle, 4 images per class in a row',
    options: z
      .object({
        perClass: z.number().int().positive().default(4).meta({
          description: 'class-aware sampler (stage 1, and the stage-2 heads): images per class in a row',
        }),
      })
      .strict(),
    create: (c, o) => classAware(c, o.perClass),
  }),
} as const;

export type SamplerName = keyof typeof SAMPLERS;
export const SAMPLER_NAMES = Object.keys(SAMPLERS) as SamplerName[];
export const samplerNames = (): string[] => SAMPLER_NAMES;
const ENTRIES = SAMPLERS as unknown as Record<string, SamplerEntry>;

export function checkSamplerName(name: string): SamplerName {
  return checkName(SAMPLERS, 'sampler', name);
}

/** The setting of a sampler's option: `class-aware`, `perClass` -> `classAwarePerClass`. */
export const samplerSettingKey = settingKey;

/**
 * Every sampler's options as settings (`classAwarePerClass`), typed, each optional (the entry
 * applies its default, so config.json records only what was set), its help showing the default.
 * Stage 1's sampler and the stage-2 heads' class-aware sampler read the same settings.
 */
export function samplerSettings(): EntrySettings<typeof SAMPLERS> {
  return entrySettings(SAMPLERS, 'sampler');
}

/** A sampler's options, parsed by its schema (defaults applied); errors name the sampler and option. */
export function samplerOptions(name: string, options: Record<string, unknown> = {}): Record<string, unknown> {
  const e = ENTRIES[checkSamplerName(name)]!;
  const r = e.options.safeParse(options);
  if (r.success) return r.data as Record<string, unknown>;
  const i = r.error.issues[0]!;
  if (i.code === 'unrecognized_keys')
    throw new ConfigError(
      `sampler ${name}: unknown option(s) ${i.keys.join(', ')}; valid options: ${Object.keys(e.options.shape).join(', ') || 'none'}`,
    );
  const field = String(i.path[0]);
  throw new ConfigError(`sampler ${name}: option ${field}: ${ruleOf(i as RuleIssue, options[field])}`);
}

/** The options of the sampler `settings.sampler` names, from its settings (`<name>X`), parsed. */
export function samplerOptionsOf(
  settings: { sampler: string } & Record<string, unknown>,
): Record<string, unknown> {
  const name = checkSamplerName(settings.sampler);
  return samplerOptions(name, optionsFromSettings(name, ENTRIES[name]!, settings));
}

/**
 * A sampler by name with its options (parsed by its entry's schema); `q` (from --sampler-q)
 * overrides the name with the general q family.
 */
export function createSampler(
  name: string,
  ctx: SamplerContext,
  opts: SamplerOptions & Record<string, unknown> = {},
): Sampler {
  const { q, ...options } = opts;
  if (q !== undefined) return qSampler(ctx, q);
  const n = checkSamplerName(name);
  // Options of another sampler (class-aware's, given to any stage-2 sampler) are not this one's.
  const own = Object.fromEntries(Object.entries(options).filter(([k]) => k in ENTRIES[n]!.options.shape));
  return ENTRIES[n]!.create(ctx, samplerOptions(n, own) as never);
}
