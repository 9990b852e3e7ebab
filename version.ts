/** The version of Lattice (kept equal to `version` in deno.json and package.json). */
export const VERSION = "0.1.0";
