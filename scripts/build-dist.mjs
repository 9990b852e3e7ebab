#!/usr/bin/env node
/**
 * Builds what the npm package ships and what a CDN serves, into `dist/` (gitignored):
 *
 * - `dist/lattice.js`: the browser build of `mod.ts`, one minified ES module with its
 *   dependencies and the WASM kernels inside. libp2p is split off: `mod.ts` loads `net/join.ts`
 *   with `import()` only when `open({ network })` asks, so esbuild (splitting) puts it and what
 *   only it needs into `dist/lattice-join-*.js` chunks, fetched from the same place as
 *   `lattice.js`. Server modules (`node:*`, `bun:*`), which the code loads only after asking which
 *   runtime it is on, become chunks that throw: the bundle imports no `node:` module.
 * - `dist/node/lattice.js` and `dist/node/cli.js`: the same code for Deno, Bun and Node as
 *   plain JavaScript, dependencies left as imports (npm installs them). The `lattice` command of
 *   the npm package (bin/lattice.mjs) runs `dist/node/cli.js`: Deno refuses to strip types from
 *   `.ts` files under `node_modules`.
 * - `dist/bin/lattice`: one self-contained executable of `cli.ts` (`bun build --compile`, which
 *   works offline; `deno compile` downloads its runtime). Left out with `--no-binary` (prepack).
 *
 * Sizes of the browser build are printed: the core (what `import { open }` fetches) and the
 * network part (what `open({ network })` fetches besides: libp2p, its WebSockets and WebRTC
 * transports), minified and gzipped.
 *
 *   node scripts/build-dist.mjs [--no-binary] [--json] [--outdir DIR]
 *
 * `--outdir` builds into DIR instead of `dist/` (the tests build into temporary directories).
 *
 * Plain Node ESM (Node ≥ 20); esbuild and bun come from devDependencies.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { buildInspector } from "./build-inspector.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
let DIST = path.join(ROOT, "dist");

/** Server modules become a module that throws when evaluated: the code never loads them in a browser. */
const serverModulesThrow = {
  name: "server-modules-throw",
  setup(build) {
    build.onResolve({ filter: /^(node|bun):/ }, (a) => ({ path: a.path, namespace: "server-module" }));
    build.onLoad({ filter: /.*/, namespace: "server-module" }, (a) => ({
      contents: `throw new Error(${JSON.stringify(`${a.path} does not exist in a browser`)});`,
      loader: "js",
    }));
  },
};

/** Builds dist/lattice.js (+ chunks); returns esbuild's metafile. */
async function buildBrowser(esbuild) {
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { lattice: "mod.ts" },
    outdir: DIST,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    // Whitespace and names only: syntax minification folds `const s = "node:crypto"; import(s)`
    // (a variable, so that bundlers leave server modules alone) into a literal `import("node:crypto")`.
    minifyWhitespace: true,
    minifyIdentifiers: true,
    legalComments: "none",
    chunkNames: "lattice-[name]-[hash]",
    plugins: [serverModulesThrow],
    metafile: true,
    logLevel: "warning",
  });
  return result.metafile;
}

/** Builds dist/node/{lattice,cli}.js (+ chunks) with npm packages left as imports. */
async function buildServer(esbuild) {
  await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { lattice: "mod.ts", cli: "cli.ts" },
    outdir: path.join(DIST, "node"),
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "es2022",
    packages: "external",
    external: ["bun:*"],
    chunkNames: "_[name]-[hash]",
    logLevel: "warning",
  });
}

/** Compiles dist/bin/lattice with Bun; returns its path. */
function buildBinary() {
  const bun = [path.join(ROOT, "node_modules", ".bin", "bun"), "bun"].find((b) =>
    spawnSync(b, ["--version"], { stdio: "ignore" }).status === 0
  );
  if (!bun) throw new Error("Cannot compile dist/bin/lattice: bun is not installed (run npm install)");
  const out = path.join(DIST, "bin", process.platform === "win32" ? "lattice.exe" : "lattice");
  const r = spawnSync(bun, ["build", "--compile", "cli.ts", "--outfile", out], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`bun build --compile failed: ${(r.stderr || r.stdout).trim()}`);
  return out;
}

/**
 * The output files a browser fetches starting from `file`: its static imports, and with `dynamic`
 * also what they load with `import()` (but never the throwing stand-ins of server modules).
 */
function closure(outputs, file, dynamic = false, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const imp of outputs[file]?.imports ?? []) {
    const stub = Object.keys(outputs[imp.path]?.inputs ?? {}).some((i) => i.startsWith("server-module:"));
    if (stub || (imp.kind !== "import-statement" && !dynamic)) continue;
    closure(outputs, imp.path, dynamic, seen);
  }
  return seen;
}

/** Minified and gzipped bytes of the core and of the network part of the browser build. */
function browserSizes(metafile) {
  const outputs = metafile.outputs;
  const entry = Object.keys(outputs).find((f) => path.basename(f) === "lattice.js");
  const core = closure(outputs, entry);
  const join = Object.keys(outputs).find((f) => outputs[f].entryPoint?.endsWith("net/join.ts"));
  if (!join) throw new Error("The browser build has no chunk for net/join.ts: is libp2p still split off?");
  const network = [...closure(outputs, join, true)].filter((f) => !core.has(f));
  const measure = (files) => {
    let min = 0, gzip = 0;
    for (const f of files) {
      const bytes = fs.readFileSync(path.resolve(ROOT, f));
      min += bytes.length;
      gzip += zlib.gzipSync(bytes, { level: 9 }).length;
    }
    return { files: files.map((f) => path.basename(f)), min, gzip };
  };
  return { core: measure([...core]), network: measure(network) };
}

/** Output files of the browser build that import a server module (there must be none). */
function serverImports(metafile) {
  const bad = [];
  for (const [file, o] of Object.entries(metafile.outputs)) {
    for (const imp of o.imports) if (/^(node|bun):/.test(imp.path)) bad.push(`${file} imports ${imp.path}`);
  }
  return bad;
}

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

async function main() {
  const args = process.argv.slice(2);
  const binary = !args.includes("--no-binary");
  const json = args.includes("--json");
  const outdir = args.indexOf("--outdir");
  if (outdir >= 0) {
    if (!args[outdir + 1]) throw new TypeError("--outdir needs a directory");
    DIST = path.resolve(args[outdir + 1]);
  }
  if (!buildInspector({ check: true })) {
    throw new Error("web/_inspector_html.ts is stale: run `node scripts/build-inspector.mjs` and commit it");
  }
  const esbuild = await import("esbuild");
  fs.rmSync(DIST, { recursive: true, force: true });
  const metafile = await buildBrowser(esbuild);
  const bad = serverImports(metafile);
  if (bad.length) throw new Error(`The browser build imports server modules: ${bad.join(", ")}`);
  await buildServer(esbuild);
  const bin = binary ? buildBinary() : null;
  const sizes = browserSizes(metafile);
  if (json) {
    process.stdout.write(JSON.stringify({ dist: DIST, ...sizes, binary: bin }) + "\n");
    return;
  }
  const shown = (file) => path.relative(process.cwd(), file) || ".";
  process.stdout.write(
    `${shown(path.join(DIST, "lattice.js"))}  core:    ${kib(sizes.core.min)} minified, ` +
      `${kib(sizes.core.gzip)} gzipped (${sizes.core.files.length} files)\n` +
      `  network (loaded by open({ network })): ${kib(sizes.network.min)} minified, ` +
      `${kib(sizes.network.gzip)} gzipped (${sizes.network.files.length} files)\n` +
      `${shown(path.join(DIST, "node"))}/  cli.js and lattice.js for Deno, Bun and Node\n` +
      (bin ? `${shown(bin)}  ${kib(fs.statSync(bin).size)}, self-contained (Bun)\n` : ""),
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`build-dist: ${e?.message ?? e}\n`);
    process.exit(1);
  });
}
