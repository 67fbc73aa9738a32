import { checkName } from '../registry.ts';
import { crt } from './crt.ts';
import { joint } from './joint.ts';
import { lws } from './lws.ts';
import { type NcmOptions, ncm } from './ncm.ts';
import { type TauNormOptions, tauNorm } from './tau-norm.ts';
import type { HeadTrainingOptions } from './train-head.ts';
import type { Stage2Classifier, Stage2Context } from './types.ts';

export interface MethodOptions {
  crt?: HeadTrainingOptions;
  lws?: HeadTrainingOptions;
  tauNorm?: TauNormOptions;
  ncm?: NcmOptions;
}

export const CLASSIFIERS = {
  joint: {
    label: 'Joint',
    description: 'the stage-1 linear classifier as it is',
    create: (c: Stage2Context) => joint(c.features),
  },
  ncm: {
    label: 'NCM',
    description: 'nearest class mean of centred, L2-normalised features',
    create: (c: Stage2Context, o: MethodOptions) => ncm(c.features, o.ncm),
  },
  crt: {
    label: 'cRT',
    description: 're-initialised linear layer re-trained with class-aware sampling',
    create: (c: Stage2Context, o: MethodOptions) => crt(c, o.crt),
  },
  'tau-norm': {
    label: 'tau-norm',
    description: 'w_i / ||w_i||^tau, tau chosen on the validation set',
    create: (c: Stage2Context, o: MethodOptions) => tauNorm(c.features, o.tauNorm),
  },
  lws: {
    label: 'LWS',
    description: 'learnable per-class scales on the frozen joint classifier',
    create: (c: Stage2Context, o: MethodOptions) => lws(c, o.lws),
  },
} as const;

export type MethodName = keyof typeof CLASSIFIERS;
/** In the paper's table order. */
export const METHOD_NAMES: MethodName[] = ['joint', 'ncm', 'crt', 'tau-norm', 'lws'];

export function checkMethodName(name: string): MethodName {
  return checkName(CLASSIFIERS, 'method', name, METHOD_NAMES, ' (or all)');
}

/** Parses `crt,lws` or `all`. */
export function parseMethods(spec: string): MethodName[] {
  if (spec === 'all') return [...METHOD_NAMES];
  const names = spec.split(',').map((s) => checkMethodName(s.trim()));
  return METHOD_NAMES.filter((m) => names.includes(m));
}

export function createClassifier(
  name: MethodName,
  ctx: Stage2Context,
  opts: MethodOptions = {},
): Stage2Classifier {
  return CLASSIFIERS[name].create(ctx, opts);
}
