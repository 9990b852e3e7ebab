#!/usr/bin/env node
/**
 * Builds what the npm package ships and what a CDN serves, into `dist/` (gitignored):
 *
 * - `dist/lattice.js`: the browser build of `mod.ts`, one minified ES module with the WASM kernels
 *   inside and no import but one: `mod.ts` loads `net/join.ts` with `import()` only when
 *   `open({ network })` asks, and that becomes `import("./lattice-network.js")`.
 *   `dist/lattice-network.js` is `net/join.ts` with libp2p and its transports in one module; the
 *   project modules it has in common with the core it takes from `lattice.js` (exported there as
 *   `__latticeModules`) instead of carrying copies, so each has one instance. esbuild's own
 *   splitting gave 6 core files and 9 network ones. Server modules (`node:*`, `bun:*`), which the
 *   code loads only after asking which runtime it is on, become modules that throw: no file
 *   imports a `node:` module. The server's SQLite engine is left out.
 * - `dist/lattice-opfs-worker.js`: the worker of `storage: "opfs"` (storage/opfs_worker.ts with
 *   SQLite-WASM and `sqlite3.wasm` inside; scripts/opfs-worker.mjs), which `lattice.js` starts from
 *   beside itself only when a page opens an OPFS database.
 * - `dist/node/lattice.js` and `dist/node/cli.js`: the same code for Deno, Bun and Node as
 *   plain JavaScript, dependencies left as imports (npm installs them). The `lattice` command of
 *   the npm package (bin/lattice.mjs) runs `dist/node/cli.js`: Deno refuses to strip types from
 *   `.ts` files under `node_modules`.
 * - `dist/bin/lattice`: one self-contained executable of `cli.ts` (`bun build --compile`, which
 *   works offline; `deno compile` downloads its runtime). Left out with `--no-binary` (prepack).
 *
 * The sizes of both browser files are printed, minified and gzipped.
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
import { buildOpfsWorker, OPFS_WORKER_FILE } from "./opfs-worker.mjs";

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

/**
 * The server's SQLite engine needs a file system: the browser build answers `storage: "sqlite"`
 * (or a `path`) with a RangeError instead of carrying it. Browsers get SQLite through
 * `storage: "opfs"`, in its own worker file. Likewise the identity file of a directory
 * (storage/identity_file.ts, with scrypt and the file calls): `open` reads it only on servers.
 */
const noSqliteInBrowsers = {
  name: "no-sqlite-in-browsers",
  setup(build) {
    build.onResolve(
      { filter: /^\.\/storage\/identity_file\.ts$/ },
      (a) =>
        a.importer === path.join(ROOT, "mod.ts")
          ? { path: "identity-file", namespace: "no-sqlite" }
          : undefined,
    );
    build.onLoad({ filter: /^identity-file$/, namespace: "no-sqlite" }, () => ({
      contents:
        'export const PASSPHRASE_ENV = "LATTICE_PASSPHRASE"; export function loadOrCreateIdentity() ' +
        '{ throw new RangeError("identity files need Deno, Bun or Node"); }',
      loader: "js",
    }));
    build.onResolve(
      { filter: /^\.\/sqlite\.ts$/ },
      (a) =>
        a.importer.endsWith(path.join("storage", "open.ts"))
          ? { path: "sqlite", namespace: "no-sqlite" }
          : undefined,
    );
    build.onLoad({ filter: /^sqlite$/, namespace: "no-sqlite" }, () => ({
      contents: "export const SqliteStore = { open() { throw new RangeError(" +
        JSON.stringify('SQLite storage needs Deno, Bun or Node; in a browser use storage "memory"') +
        "); } };",
      loader: "js",
    }));
  },
};

/** `mod.ts` loads `net/join.ts` (and with it libp2p) by `import()`: in the core it is the network file. */
const joinIsNetworkFile = {
  name: "join-is-network-file",
  setup(build) {
    build.onResolve(
      { filter: /^\.\/net\/join\.ts$/ },
      (a) =>
        a.importer === path.join(ROOT, "mod.ts") ? { path: `./${NETWORK_FILE}`, external: true } : undefined,
    );
  },
};

const CORE_FILE = "lattice.js";
const NETWORK_FILE = "lattice-network.js";
/** The core's export that hands its modules to the network file. */
const SHARED = "__latticeModules";

const browserOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  legalComments: "none",
  logLevel: "warning",
};

/**
 * The project's modules that both the core and `net/join.ts` import, with their export names. The
 * network file takes these from the core instead of carrying a second copy: one instance of each
 * module (its state, its classes for `instanceof`) and no code twice.
 */
async function sharedModules(esbuild) {
  const analyse = async (entry, plugins) =>
    Object.keys(
      (await esbuild.build({
        ...browserOptions,
        entryPoints: [entry],
        write: false,
        outdir: DIST,
        metafile: true,
        plugins,
      }))
        .metafile.inputs,
    );
  const core = new Set(await analyse("mod.ts", [serverModulesThrow, noSqliteInBrowsers, joinIsNetworkFile]));
  const network = await analyse("net/join.ts", [serverModulesThrow]);
  const files = network.filter((f) => core.has(f) && !f.includes(":") && !f.startsWith("node_modules/"));
  const names = await esbuild.build({
    ...browserOptions,
    entryPoints: files,
    splitting: true,
    write: false,
    outdir: path.join(DIST, "analysis"),
    outbase: ROOT,
    metafile: true,
    plugins: [serverModulesThrow],
  });
  const exportsOf = new Map();
  for (const o of Object.values(names.metafile.outputs)) {
    if (o.entryPoint) exportsOf.set(o.entryPoint, o.exports);
  }
  return files.map((file) => ({ file: path.join(ROOT, file), exports: exportsOf.get(file) ?? [] }));
}

/**
 * Builds `dist/lattice.js` (the core) and `dist/lattice-network.js` (what `open({ network })`
 * loads), each one self-contained file but for the network file's import of the core's shared
 * modules. Returns their paths.
 */
async function buildBrowser(esbuild) {
  const shared = await sharedModules(esbuild);
  const index = new Map(shared.map((m, i) => [m.file, i]));
  const minify = {
    // Whitespace and names only: syntax minification folds `const s = "node:crypto"; import(s)`
    // (a variable, so that bundlers leave server modules alone) into a literal `import("node:crypto")`.
    minifyWhitespace: true,
    minifyIdentifiers: true,
  };
  const core = path.join(DIST, CORE_FILE);
  const imports = {};
  const collect = (file, result) => {
    imports[file] = Object.values(result.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
  };
  collect(
    core,
    await esbuild.build({
      metafile: true,
      ...browserOptions,
      ...minify,
      stdin: {
        contents: [
          `export * from ${JSON.stringify(path.join(ROOT, "mod.ts"))};`,
          ...shared.map((m, i) => `import * as m${i} from ${JSON.stringify(m.file)};`),
          `/** Internal: the modules ${NETWORK_FILE} shares with this file. */`,
          `export const ${SHARED} = [${shared.map((_, i) => `m${i}`).join(", ")}];`,
        ].join("\n"),
        resolveDir: ROOT,
        sourcefile: "lattice.js",
        loader: "js",
      },
      outfile: core,
      plugins: [serverModulesThrow, noSqliteInBrowsers, joinIsNetworkFile],
    }),
  );
  const network = path.join(DIST, NETWORK_FILE);
  const fromCore = {
    name: "shared-from-core",
    setup(build) {
      build.onResolve({ filter: /^\./ }, async (a) => {
        if (a.pluginData?.resolving) return undefined;
        const r = await build.resolve(a.path, {
          kind: a.kind,
          importer: a.importer,
          resolveDir: a.resolveDir,
          pluginData: { resolving: true },
        });
        return index.has(r.path) && a.importer !== "" ? { path: r.path, namespace: "from-core" } : r;
      });
      build.onResolve({ filter: new RegExp(`^\\./${CORE_FILE.replace(".", "\\.")}$`) }, (a) => ({
        path: a.path,
        external: true,
      }));
      build.onLoad({ filter: /.*/, namespace: "from-core" }, (a) => {
        const m = shared[index.get(a.path)];
        const names = m.exports.filter((n) => n !== "default");
        return {
          contents: `import { ${SHARED} } from "./${CORE_FILE}";\n` +
            `export const { ${names.join(", ")} } = ${SHARED}[${index.get(a.path)}];\n` +
            (m.exports.includes("default")
              ? `export default ${SHARED}[${index.get(a.path)}].default;\n`
              : ""),
          loader: "js",
          resolveDir: ROOT,
        };
      });
    },
  };
  collect(
    network,
    await esbuild.build({
      ...browserOptions,
      ...minify,
      metafile: true,
      entryPoints: [path.join(ROOT, "net", "join.ts")],
      outfile: network,
      plugins: [serverModulesThrow, fromCore],
    }),
  );
  const worker = path.join(DIST, OPFS_WORKER_FILE);
  collect(worker, await buildOpfsWorker(esbuild, worker, { minify, metafile: true }));
  return { core, network, worker, imports, shared: shared.length };
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

/** Minified and gzipped bytes of `file`. */
function sizeOf(file) {
  const bytes = fs.readFileSync(file);
  return { file: path.basename(file), min: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
}

/**
 * What the browser files import, which must be only each other (the core `import()`s the network
 * file, the network file imports the core), and never a `node:` or `bun:` module.
 */
function checkImports({ core, network, worker, imports }) {
  const wanted = { [core]: `./${NETWORK_FILE}`, [network]: `./${CORE_FILE}`, [worker]: undefined };
  for (const [file, other] of Object.entries(wanted)) {
    const bad = imports[file].filter((s) => s !== other);
    if (bad.length) {
      throw new Error(
        `${path.basename(file)} imports ${bad.join(", ")}: ${
          other ? `only ${other}` : "nothing"
        } may be imported`,
      );
    }
    if (/\bimport\s*\(\s*["'](node|bun):|\bfrom\s*["'](node|bun):/.test(fs.readFileSync(file, "utf8"))) {
      throw new Error(`${path.basename(file)} imports a server module`);
    }
  }
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
  const browser = await buildBrowser(esbuild);
  checkImports(browser);
  await buildServer(esbuild);
  const bin = binary ? buildBinary() : null;
  const sizes = {
    core: sizeOf(browser.core),
    network: sizeOf(browser.network),
    worker: sizeOf(browser.worker),
  };
  if (json) {
    process.stdout.write(JSON.stringify({ dist: DIST, ...sizes, binary: bin }) + "\n");
    return;
  }
  const shown = (file) => path.relative(process.cwd(), file) || ".";
  process.stdout.write(
    `${shown(browser.core)}  ${kib(sizes.core.min)} minified, ${kib(sizes.core.gzip)} gzipped\n` +
      `${shown(browser.network)}  ${kib(sizes.network.min)} minified, ${kib(sizes.network.gzip)} gzipped ` +
      `(loaded by open({ network }); takes ${browser.shared} modules from ${CORE_FILE})\n` +
      `${shown(browser.worker)}  ${kib(sizes.worker.min)} minified, ${kib(sizes.worker.gzip)} gzipped ` +
      `(the worker of storage "opfs", sqlite3.wasm inside)\n` +
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
