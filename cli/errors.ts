/**
 * The CLI's error vocabulary and exit codes: a {@link CliError} is reported
 * as one sentence with its code (never a stack trace), a {@link UsageError}
 * also points at the help of its command. Argument checks of the library
 * (TypeError, RangeError, SyntaxError) become usage errors through
 * {@link checkArgument}.
 *
 * Exit codes: 0 ok, 1 error, 2 usage error, 3 not found.
 *
 * @module
 */

/** A failure to report as one sentence with an exit code (never a stack trace). */
export class CliError extends Error {
  override name = "CliError";
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
  }
}

/** A command-line mistake (exit 2); `command` names the help to point at. */
export class UsageError extends CliError {
  override name = "UsageError";
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message, 2);
    this.command = command;
  }
}

/** Standard output was closed by its reader. */
export class OutputClosedError extends Error {
  override name = "OutputClosedError";
}

export const EXIT_OK = 0, EXIT_ERROR = 1, EXIT_NOT_FOUND = 3;

/** Whether `e` is an argument check's complaint (as opposed to a bug). */
export const isValidationError = (e: unknown): e is Error =>
  e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError;

/** Runs `check`; a validation error it throws becomes a usage error about argument `arg`. */
export function checkArgument<T>(command: string, arg: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (isValidationError(e)) throw new UsageError(`argument ${arg} is invalid: ${e.message}`, command);
    throw e;
  }
}
