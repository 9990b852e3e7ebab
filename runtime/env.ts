/**
 * Reading environment variables where the runtime has them (Deno, Bun,
 * Node); browsers have none.
 *
 * On Deno this asks `Deno.env`, never the `process` global: the first touch
 * of `process` there loads Deno's Node compatibility layer, about 9 MB of
 * resident memory (Deno 2.9). Without env permission it returns `undefined`
 * rather than prompting.
 *
 * @module
 */
import { runtimeName } from "./detect.ts";

interface ProcessLike {
  env?: Record<string, string | undefined>;
}

interface DenoLike {
  env: { get(name: string): string | undefined };
  permissions?: { querySync?(d: { name: "env"; variable: string }): { state: string } };
}

/** The value of environment variable `name`, or `undefined` (also when access is not permitted). */
export function getEnv(name: string): string | undefined {
  try {
    switch (runtimeName()) {
      case "deno": {
        const deno = (globalThis as unknown as { Deno: DenoLike }).Deno;
        const state = deno.permissions?.querySync?.({ name: "env", variable: name }).state;
        return state === undefined || state === "granted" ? deno.env.get(name) : undefined;
      }
      default: // Bun, Node, and a browser bundle that defines `process`
        return (globalThis as { process?: ProcessLike }).process?.env?.[name];
    }
  } catch {
    return undefined; // no permission
  }
}
