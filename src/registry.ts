/**
 * The one rule of every name registry (backbones, data sets, samplers, stage-2 methods): a name
 * is a key of a `const` object, and an unknown one is an error listing the valid ones, with the
 * nearest as a "did you mean". `ruleOf` puts a schema's broken rule in longtail's words, so no
 * validation library's wording reaches a user.
 */
import { closest, distance } from 'fastest-levenshtein';
import { ConfigError } from './errors.ts';

/** The valid name closest to `name`, if it is near enough to be a typo (case ignored). */
export function nearestName(name: string, valid: readonly string[]): string | undefined {
  if (valid.length === 0) return undefined;
  const near = closest(
    name.toLowerCase(),
    valid.map((v) => v.toLowerCase()),
  );
  const hit = valid.find((v) => v.toLowerCase() === near);
  return hit !== undefined && distance(name.toLowerCase(), near) <= Math.max(2, Math.floor(name.length / 3))
    ? hit
    : undefined;
}

/** ` (did you mean x?)`, or nothing. */
export function didYouMean(name: string, valid: readonly string[]): string {
  const near = nearestName(name, valid);
  return near === undefined ? '' : ` (did you mean ${near}?)`;
}

export function checkName<K extends string>(
  registry: Record<K, unknown>,
  kind: string,
  name: string,
  valid: readonly K[] = Object.keys(registry) as K[],
  suffix = '',
): K {
  if (Object.hasOwn(registry, name)) return name as K;
  throw new ConfigError(
    `unknown ${kind} '${name}'${didYouMean(name, valid)}; valid ${kind}s: ${valid.join(', ')}${suffix}`,
  );
}

/** The parts of a schema issue (zod's) that `ruleOf` reads. */
export interface RuleIssue {
  code: string;
  message: string;
  expected?: unknown;
  minimum?: unknown;
  maximum?: unknown;
  inclusive?: boolean;
  origin?: string;
  values?: readonly unknown[];
  divisor?: unknown;
  format?: string;
  keys?: readonly string[];
}

/** A broken rule as longtail says it: "must be at least 1", "must be one of a, b". */
export function ruleOf(issue: RuleIssue, got?: unknown): string {
  const sized = issue.origin === 'array' ? ' items' : issue.origin === 'string' ? ' characters' : '';
  switch (issue.code) {
    case 'too_small':
      if (issue.origin === 'array' || issue.origin === 'string')
        return `must have at least ${String(issue.minimum)}${sized}`;
      return issue.inclusive === false
        ? `must be more than ${String(issue.minimum)}`
        : `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'array' || issue.origin === 'string')
        return `must have at most ${String(issue.maximum)}${sized}`;
      return issue.inclusive === false
        ? `must be less than ${String(issue.maximum)}`
        : `must be at most ${String(issue.maximum)}`;
    case 'invalid_type': {
      const expected = String(issue.expected);
      if (expected === 'int') return 'must be a whole number';
      if (got === undefined) return 'is required';
      return `must be ${expected === 'array' ? 'a list' : expected === 'object' ? 'a mapping' : `a ${expected}`}`;
    }
    case 'invalid_value': {
      const values = (issue.values ?? []).map(String);
      return `must be one of ${values.join(', ')}${typeof got === 'string' ? didYouMean(got, values) : ''}`;
    }
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    case 'unrecognized_keys':
      return `has unknown key(s) ${(issue.keys ?? []).join(', ')}`;
    default:
      // Our own rules (refine, regex with a message) already speak longtail's words.
      return issue.message;
  }
}
