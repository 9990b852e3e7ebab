/**
 * Waiting in tests for something that happens on its own time (a replica
 * converging, a watch firing, a node coming back): {@link eventually} polls
 * a condition until it holds or a deadline passes.
 *
 * Web APIs only, so browser-run tests can import it. Not a test file (no
 * `.test.` in its name).
 */

/** How often {@link eventually} asks again. */
const POLL_MS = 25;

/**
 * Calls `fn` every `pollMs` milliseconds (default 25) until it returns
 * something other than `undefined` or `false`, and returns that; throws once
 * `ms` have passed. An error thrown by `fn` ends the wait at once.
 *
 * @example
 * ```ts
 * import { eventually } from "./_eventually.ts";
 * const start = Date.now();
 * const t = await eventually("a tenth of a second to pass", () => Date.now() - start >= 100 && Date.now());
 * ```
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
  pollMs = POLL_MS,
): Promise<Exclude<T, false>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as Exclude<T, false>;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
