/**
 * Static check "doc tests": the `@example` blocks of the public API run as tests
 * (`deno test --doc`), so an example that no longer compiles or runs fails the build.
 *
 * How Deno treats them (Deno 2.x): `deno test --doc FILE` extracts the fenced code blocks of the
 * JSDoc of FILE only — not of the modules FILE re-exports — and type-checks and runs each as its own
 * module (`FILE#12-20.ts`), with every export of FILE imported into it automatically. So the stage
 * names mod.ts and every module whose symbols mod.ts re-exports (followed through re-exports), and
 * the other entry points of deno.json "exports"; an example needs no import of its own module's
 * exports, and imports anything else by a path relative to its file (`import { open } from
 * "../mod.ts"`). Blocks fenced as `ts ignore` are not run. The run uses -A (examples open
 * databases, some listen on 127.0.0.1) and a fresh temporary working directory, so an example that
 * writes `./data` writes it there and not into the checkout.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import { blank, parseImports, resolveImport } from "./source_scan.mjs";

/**
 * The specifiers a module re-exports symbols from: `export … from "x"`, `export * from "x"`, and the
 * imports whose bindings a local `export { a, b }` passes on.
 */
function reExports(text) {
  const imports = parseImports(text).filter((i) => i.kind !== "dynamic");
  const exported = new Set();
  for (const m of blank(text).matchAll(/^[ \t]*export\s+(?:type\s+)?\{([^}]*)\}(?!\s*from)/gm)) {
    for (const part of m[1].split(",")) {
      const local = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0].trim();
      if (local) exported.add(local);
    }
  }
  return imports.filter((i) => i.reExport || i.names.some((n) => exported.has(n))).map((i) => i.specifier);
}

/**
 * The modules whose examples are public: the entry points (mod.ts and the other ".ts" targets of
 * deno.json "exports") and, transitively, every module they re-export symbols from.
 */
export function docTestModules(root) {
  let entries = ["mod.ts"];
  try {
    const exportsField = JSON.parse(fs.readFileSync(path.join(root, "deno.json"), "utf8")).exports ?? {};
    const targets = typeof exportsField === "string" ? [exportsField] : Object.values(exportsField);
    entries = [
      ...new Set([
        ...entries,
        ...targets.filter((t) => /\.tsx?$/.test(t)).map((t) => t.replace(/^\.\//, "")),
      ]),
    ];
  } catch {
    // no deno.json: mod.ts alone
  }
  const seen = new Set();
  const queue = entries.filter((f) => fs.existsSync(path.join(root, f)));
  while (queue.length) {
    const file = queue.shift();
    if (seen.has(file)) continue;
    seen.add(file);
    for (const specifier of reExports(fs.readFileSync(path.join(root, file), "utf8"))) {
      const to = resolveImport(root, file, specifier);
      if (to && !seen.has(to)) queue.push(to);
    }
  }
  return [...seen].sort();
}

/**
 * The `deno test --doc` command for the modules of `root`, to run with `cwd` (a fresh temporary
 * directory): [args] for the deno binary.
 */
export function docTestArgs(root, files = docTestModules(root)) {
  const config = path.join(root, "deno.json");
  return [
    "test",
    "--doc",
    "-A",
    ...(fs.existsSync(config) ? [`--config=${config}`] : []),
    ...files.map((f) => path.join(root, f)),
  ];
}

/**
 * The part of a failed `deno test --doc` run worth reading: the type errors, or the ERRORS section
 * of the examples that threw, without the "Check …" line per module and example.
 */
export function docTestSummary(out) {
  // deno-lint-ignore no-control-regex
  const text = String(out).replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((l) => !/^Check /.test(l))
    .join("\n");
  const errors = text.indexOf("\n ERRORS \n");
  return (errors >= 0 ? text.slice(errors + 1) : text).trim();
}
