/**
 * Builds the OPFS worker (storage/opfs_worker.ts) as one self-contained browser module,
 * `lattice-opfs-worker.js`, with `sqlite3.wasm` embedded: storage/_sqlite3_wasm.ts is replaced by
 * a module holding the file's bytes (esbuild's `binary` loader), so the worker needs no second URL.
 * Used by the dist build (scripts/build-dist.mjs: beside dist/lattice.js) and by the Chromium test
 * stage (scripts/test/browser.mjs: beside the test bundles), since storage/opfs.ts looks for the
 * worker beside the module that holds it.
 *
 * @module
 */
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The worker's file name (storage/opfs.ts `OPFS_WORKER_FILE`). */
export const OPFS_WORKER_FILE = "lattice-opfs-worker.js";

const WASM = path.join(ROOT, "node_modules", "@sqlite.org", "sqlite-wasm", "dist", "sqlite3.wasm");

/** esbuild plugin: storage/_sqlite3_wasm.ts → the bytes of sqlite3.wasm; server modules throw. */
const embedWasm = {
  name: "lattice-embed-sqlite-wasm",
  setup(build) {
    build.onResolve(
      { filter: /_sqlite3_wasm\.ts$/ },
      () => ({ path: "sqlite3.wasm", namespace: "sqlite-wasm" }),
    );
    build.onLoad({ filter: /.*/, namespace: "sqlite-wasm" }, () => ({
      contents: `import bytes from ${JSON.stringify(WASM)};\nexport const sqliteWasm = bytes;\n`,
      loader: "js",
      resolveDir: ROOT,
    }));
    // The worker never takes the server paths of the modules it shares with the server driver.
    build.onResolve({ filter: /^(node|bun):/ }, (a) => ({ path: a.path, namespace: "server-module" }));
    build.onLoad({ filter: /.*/, namespace: "server-module" }, (a) => ({
      contents: `throw new Error(${JSON.stringify(`${a.path} does not exist in a browser`)});`,
      loader: "js",
    }));
  },
};

/**
 * Writes the worker to `outfile`; `minify` takes esbuild's minify options (the dist build minifies
 * whitespace and names only); resolves with esbuild's result.
 */
export function buildOpfsWorker(esbuild, outfile, { minify = {}, sourcemap = false, metafile = false } = {}) {
  return esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: [path.join(ROOT, "storage", "opfs_worker.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    ...minify,
    sourcemap,
    metafile,
    legalComments: "none",
    logLevel: "warning",
    loader: { ".wasm": "binary" },
    plugins: [embedWasm],
  });
}
