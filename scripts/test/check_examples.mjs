/**
 * Static check "examples": every symbol mod.ts exports, values and types alike, has an `@example` in
 * the JSDoc of its declaration (issue 13: every public symbol documented with an example that runs).
 * The doc-test stage (check_doc_tests.mjs) then runs those examples; this check makes sure there is
 * one to run, so a new export without one fails the build instead of going unnoticed.
 *
 * The symbols and their JSDoc come from `deno doc --json mod.ts` (format version 2), which follows
 * re-exports to the declaration: the example belongs where the symbol is defined, not in mod.ts.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

/** The entry point whose exports must all have an example. */
export const EXAMPLES_ENTRY = "mod.ts";

/**
 * The exports of `entry` without an example, from the output of `deno doc --json` run in `root`:
 * [{ name, kind, at }] in export order, `at` the declaration as "core/a.ts:12".
 */
export function missingExamples(doc, root, entry = EXAMPLES_ENTRY) {
  if (doc?.version !== 2 || typeof doc.nodes !== "object") {
    throw new Error(`deno doc --json gave format version ${doc?.version}; this check reads version 2`);
  }
  // deno names modules by their real path (a temporary directory may sit behind a symlink).
  const real = fs.realpathSync(root);
  const node = doc.nodes[pathToFileURL(path.join(real, entry)).href];
  if (!node) throw new Error(`deno doc --json has no entry for ${entry}`);
  const rootUrl = pathToFileURL(real).href + "/";
  const missing = [];
  for (const symbol of node.symbols ?? []) {
    const declarations = symbol.declarations ?? [];
    const hasExample = declarations.some((d) => (d.jsDoc?.tags ?? []).some((t) => t.kind === "example"));
    if (hasExample) continue;
    const first = declarations[0];
    const file = first?.location?.filename?.replace(rootUrl, "") ?? entry;
    const line = (first?.location?.line ?? 0) + 1; // deno doc counts lines from 0
    missing.push({ name: symbol.name, kind: first?.kind ?? "symbol", at: `${file}:${line}` });
  }
  return missing;
}

/** Runs `deno doc --json` on the entry point of `root` with the deno binary `deno`; its JSON. */
export function denoDocJson(root, deno, entry = EXAMPLES_ENTRY) {
  if (!deno) throw new Error("deno not found: the examples check runs deno doc --json");
  const r = spawnSync(deno, ["doc", "--json", entry], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`deno doc --json ${entry} exited ${r.status}:\n${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

/** The exports of mod.ts without an example, one line each ("mod.ts exports Foo (interface, core/a.ts:12) …"). */
export function checkExamples(root, deno) {
  return missingExamples(denoDocJson(root, deno), root).map((m) =>
    `${EXAMPLES_ENTRY} exports ${m.name} (${m.kind}, ${m.at}) without an @example in its JSDoc`
  );
}
