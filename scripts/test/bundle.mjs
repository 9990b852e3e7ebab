/**
 * Test files for Chromium: each one bundled by esbuild with node:test and node:assert/strict
 * replaced by the shims of tests/_browser/, and the stack mapper that turns bundle positions in
 * browser stack traces back into source positions.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";
import { BROWSER_DIR, ROOT } from "./config.mjs";
import { rel } from "./files.mjs";

const SHIMS = {
  "node:test": path.join(BROWSER_DIR, "node_test.ts"),
  "node:assert/strict": path.join(BROWSER_DIR, "assert.ts"),
};

/** esbuild plugin: node:test/node:assert* → shims; other node:/bun: imports stay external. */
const shimPlugin = {
  name: "lattice-browser-shims",
  setup(build) {
    build.onResolve({ filter: /^(node|bun):/ }, (args) => {
      if (SHIMS[args.path]) return { path: SHIMS[args.path] };
      return { path: args.path, external: true };
    });
  },
};

export async function bundle(esbuild, file, outfile) {
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [path.join(ROOT, file)],
      outfile,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      logLevel: "silent",
      plugins: [shimPlugin],
      absWorkingDir: ROOT,
      sourcemap: "external",
      metafile: true,
    });
  } catch (e) {
    const errors = e?.errors?.length
      ? e.errors.map((x) => (x.location ? `${x.location.file}:${x.location.line}: ${x.text}` : x.text))
      : [String(e?.message ?? e)];
    return errors.join("\n");
  }
  // A static import of a server module (node:fs, bun:sqlite, …) can never load in a browser.
  const staticServerImports = [];
  for (const [input, info] of Object.entries(result.metafile?.inputs ?? {})) {
    for (const imp of info.imports ?? []) {
      if (imp.external && imp.kind === "import-statement" && /^(node|bun):/.test(imp.path)) {
        staticServerImports.push(`${input} imports ${imp.path}`);
      }
    }
  }
  if (staticServerImports.length) {
    return [
      ...staticServerImports.slice(0, 5),
      ...(staticServerImports.length > 5 ? [`… and ${staticServerImports.length - 5} more`] : []),
      "Browsers have no such modules: tag the test file `// @server-only: <reason>` in its first 5 lines, " +
      "or load server modules with a dynamic import() behind feature detection.",
    ].join("\n");
  }
  return null;
}

/** Maps bundle positions in browser stack traces back to source files; drops shim frames. */
export function stackMapper(bundleDir) {
  const maps = new Map();
  const load = (name) => {
    if (!maps.has(name)) {
      try {
        maps.set(
          name,
          new SourceMap(JSON.parse(fs.readFileSync(path.join(bundleDir, `${name}.map`), "utf8"))),
        );
      } catch {
        maps.set(name, null);
      }
    }
    return maps.get(name);
  };
  const position = /(?:https?:\/\/127\.0\.0\.1:\d+)?\/bundles\/([\w.-]+\.js):(\d+):(\d+)/g;
  return (text) => {
    let frames = 0;
    const out = [];
    for (const line of String(text).split("\n")) {
      const mapped = line.replace(position, (m, name, l, c) => {
        const e = load(name)?.findEntry(+l - 1, +c - 1);
        if (!e?.originalSource) return m;
        const src = e.originalSource.startsWith("file:")
          ? fileURLToPath(e.originalSource)
          : path.resolve(bundleDir, e.originalSource);
        return `${rel(src)}:${e.originalLine + 1}:${e.originalColumn + 1}`;
      });
      if (/^\s+at /.test(mapped)) {
        if (
          mapped.includes("tests/_browser/") || /eval at evaluate|at (async )?<anonymous>:\d/.test(mapped)
        ) continue;
        if (++frames > 5) continue;
      } else frames = 0;
      out.push(mapped);
    }
    return out.join("\n");
  };
}
