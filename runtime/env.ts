/**
 * Reading environment variables where the runtime has them (Deno, Bun,
 * Node); browsers have none.
 *
 * @module
 */

interface ProcessLike {
  env?: Record<string, string | undefined>;
}

/** The value of environment variable `name`, or `undefined` (also when access is not permitted). */
export function getEnv(name: string): string | undefined {
  try {
    const process = (globalThis as { process?: ProcessLike }).process;
    return process?.env?.[name];
  } catch {
    return undefined; // e.g. Deno without --allow-env
  }
}
