/**
 * The one rule of every name registry (backbones, data sets, samplers, stage-2 methods): a name
 * is a key of a `const` object, and an unknown one is an error listing the valid ones.
 */
import { ConfigError } from './errors.ts';

export function checkName<K extends string>(
  registry: Record<K, unknown>,
  kind: string,
  name: string,
  valid: readonly K[] = Object.keys(registry) as K[],
  suffix = '',
): K {
  if (Object.hasOwn(registry, name)) return name as K;
  throw new ConfigError(`unknown ${kind} '${name}'; valid ${kind}s: ${valid.join(', ')}${suffix}`);
}
