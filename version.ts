/**
 * The version of Lattice (kept equal to `version` in deno.json and package.json).
 *
 * @example
 * ```ts
 * import { VERSION } from "./mod.ts";
 * console.log(`lattice ${VERSION}`); // lattice 0.1.0
 * ```
 */
export const VERSION = "0.1.0";
