/**
 * Static check "World": no library module reads the wall clock, the monotonic clock, timers or
 * randomness except core/world.ts. Everything else takes them from a `World` (injected, with
 * `systemWorld` by default), so a deterministic simulator can later drive the real replication code
 * with virtual time (issue 13).
 *
 * Scope: the library (scripts/test/source_scan.mjs LIBRARY_ROOTS: core/, storage/, net/, runtime/,
 * cli/, mod.ts, cli.ts); tests, bench, scripts and asm may use the globals. Comments and string
 * contents are blanked before the search, and a method of another object (`socket.setTimeout(…)`)
 * is not the global; `globalThis.setTimeout` is.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import { blank, LIBRARY_ROOTS, listModules } from "./source_scan.mjs";

/** The one module that may read them. */
export const WORLD_MODULE = "core/world.ts";

/** What only core/world.ts reads, as [name, pattern]. */
export const WORLD_GLOBALS = [
  ["Date.now", /\bDate\s*\.\s*now\b/g],
  ["performance.now", /\bperformance\s*\.\s*now\b/g],
  ["setTimeout", /(?<![\w$]\s*\.\s*)\bsetTimeout\b|\bglobalThis\s*\.\s*setTimeout\b/g],
  ["setInterval", /(?<![\w$]\s*\.\s*)\bsetInterval\b|\bglobalThis\s*\.\s*setInterval\b/g],
  ["clearTimeout", /(?<![\w$]\s*\.\s*)\bclearTimeout\b|\bglobalThis\s*\.\s*clearTimeout\b/g],
  ["clearInterval", /(?<![\w$]\s*\.\s*)\bclearInterval\b|\bglobalThis\s*\.\s*clearInterval\b/g],
  ["crypto.getRandomValues", /\bgetRandomValues\b/g],
  ["Math.random", /\bMath\s*\.\s*random\b/g],
];

/** The uses in the text of one module: [{ name, line }]. */
export function worldUses(text) {
  const code = blank(text, { strings: true });
  const uses = [];
  for (const [name, pattern] of WORLD_GLOBALS) {
    for (const m of code.matchAll(pattern)) {
      uses.push({ name, line: code.slice(0, m.index).split("\n").length });
    }
  }
  return uses.sort((a, b) => a.line - b.line);
}

/** The uses outside core/world.ts, one line per module ("net/a.ts:12 Date.now, 40 setTimeout"). */
export function checkWorld(root) {
  const problems = [];
  for (const file of listModules(root, LIBRARY_ROOTS)) {
    if (file === WORLD_MODULE) continue;
    const uses = worldUses(fs.readFileSync(path.join(root, file), "utf8"));
    if (uses.length) {
      problems.push(
        `${file}: ${uses.map((u) => `${u.line} ${u.name}`).join(", ")} (use a World: core/world.ts)`,
      );
    }
  }
  return problems;
}
