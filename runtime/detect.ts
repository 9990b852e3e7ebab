/**
 * The one place where code asks which runtime it is on and loads
 * runtime modules (`node:fs`, `node:sqlite`, `bun:sqlite`, …). Modules are
 * loaded with a dynamic `import()` of a variable, so bundlers leave them out
 * of browser bundles and browsers never evaluate them.
 *
 * @module
 */

/** The JavaScript runtime this code runs on. */
export type RuntimeName = "bun" | "deno" | "node" | "browser";

let cached: RuntimeName | undefined;

/** Which runtime this is: Bun, Deno and Node are told apart by their globals, anything else is a browser. */
export function runtimeName(): RuntimeName {
  if (cached !== undefined) return cached;
  const g = globalThis as { Bun?: unknown; Deno?: unknown; process?: { versions?: { node?: string } } };
  if (typeof g.Bun !== "undefined") cached = "bun";
  else if (typeof g.Deno !== "undefined") cached = "deno";
  else if (typeof g.process?.versions?.node === "string") cached = "node";
  else cached = "browser";
  return cached;
}

/**
 * The JavaScript engine under this runtime, where the runtime tells it:
 * JavaScriptCore under Bun, V8 under Deno and Node, `"unknown"` in browsers
 * (told apart only by sniffing the user agent, which this does not do).
 */
export function jsEngine(): "v8" | "javascriptcore" | "unknown" {
  const runtime = runtimeName();
  return runtime === "bun" ? "javascriptcore" : runtime === "browser" ? "unknown" : "v8";
}

/** Whether this runtime has a file system and processes (Deno, Bun, Node). */
export function isServerRuntime(): boolean {
  return runtimeName() !== "browser";
}

/**
 * Imports a runtime module by name, e.g. `node:fs`. Rejects where the
 * runtime has no such module.
 */
export async function importRuntimeModule<T>(specifier: string): Promise<T> {
  // A variable specifier keeps bundlers from resolving (and bundling) it.
  const name = specifier;
  return await import(name) as T;
}
