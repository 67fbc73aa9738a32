/**
 * Typed errors. A `UserError` is a user's mistake (bad flag, bad file, bad config): the CLI
 * prints its message without a stack trace and exits with code 2. Anything else is a bug
 * (exit code 1).
 */
export class UserError extends Error {
  override name = 'UserError';
}

/** A configuration or flag value that breaks a rule. */
export class ConfigError extends UserError {
  override name = 'ConfigError';
}

/** A data file, folder or list that cannot be used; the message names the file (and line). */
export class DataError extends UserError {
  override name = 'DataError';
}
