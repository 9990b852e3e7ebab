/**
 * Static check "layers": core/ (the engine: values, clock, merge, the Store port, sync) imports no
 * module of the layers drawn above it — storage/ (the Store adapters), net/ (networking), runtime/
 * (runtime-specific adapters). The port lives in core/ and the adapters depend on it, never the
 * reverse (issue 13 moved storage/store.ts to core/store.ts for this).
 *
 * Every import counts here, type-only and dynamic ones too: a type import from storage/ is the same
 * dependency drawn upwards.
 *
 * @module
 */

import { importGraph, listModules } from "./source_scan.mjs";

/** Layers core/ must not import. */
export const ABOVE_CORE = ["storage/", "net/", "runtime/"];

/** The imports of core/ modules into the layers above it, one line each ("core/a.ts:3 imports …"). */
export function checkLayers(root) {
  const problems = [];
  for (const [file, edges] of importGraph(root, listModules(root, ["core"]))) {
    for (const e of edges) {
      if (ABOVE_CORE.some((layer) => e.to.startsWith(layer))) {
        const kind = e.kind === "value" ? "" : ` (${e.kind} import)`;
        problems.push(
          `${file}:${e.line} imports ${e.to}${kind}: core/ imports no storage/, net/ or runtime/ module`,
        );
      }
    }
  }
  return problems;
}
