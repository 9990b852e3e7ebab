// @server-only: packs, installs and compiles the package with npm, deno and bun in child processes
/**
 * Every way to get Lattice that the README promises, tried as a user would:
 * `npm pack` (its prepack build) and what the tarball holds; `npm install -g`
 * of that tarball and the `lattice` command it gives, on Deno, on Bun, and
 * without either; `deno install -g` of `cli.ts`; the self-contained binary of
 * `scripts/build-dist.mjs` (`bun build --compile`), whose `serve` answers the
 * inspector and `/v1/status` from a directory without the sources; a Deno
 * project outside the checkout that imports `jsr:@lattice/db` (a `links`
 * entry stands in for JSR) and opens with a network; `deno publish
 * --dry-run`, which must leave database directories out.
 *
 * Everything is built once, by the first test, into temporary directories (npm pack
 * builds the repository's own gitignored `dist/`).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { BIN, childEnv, ok, ROOT, run, type Started, startReady, which } from "./_procs.ts";

const DENO = path.join(BIN, "deno");
const BUN = path.join(BIN, "bun");

/** A directory holding only a link named `name` to `target` (a PATH entry with one program). */
function onlyOnPath(dir: string, name: string, target: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(fs.realpathSync(target), path.join(dir, name));
  return dir;
}

/** Fetches `url`, returning status, content type and body text. */
async function get(url: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

/** Stops `node` and requires a clean exit. */
async function stopped(node: Started | undefined): Promise<void> {
  if (node) assert.equal(await node.stop(), 0, "the node exits cleanly on SIGTERM");
}

const TIMEOUT = { timeout: 300_000 };

describe("packaging: the ways to install and run Lattice", { timeout: 900_000 }, () => {
  let tmp = "";
  let tarball = "";
  let packed: string[] = [];
  let binary = "";
  const node = which("node");

  // Built once, by the first test that needs it (Bun's node:test ignores hook timeouts; a test's own
  // timeout holds).
  let building: Promise<void> | undefined;
  const build = (): Promise<void> =>
    building ??= (async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-pack-"));
      const pack = ok(await run("npm", ["pack", "--json", "--pack-destination", tmp]), "npm pack");
      const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")));
      tarball = path.join(tmp, info.filename);
      packed = info.files.map((f: { path: string }) => f.path).sort();
      assert.ok(node, "node is on PATH (npm and scripts/build-dist.mjs run on it)");
      const built = ok(
        await run(node!, ["scripts/build-dist.mjs", "--outdir", path.join(tmp, "dist"), "--json"]),
        "scripts/build-dist.mjs",
      );
      binary = JSON.parse(built.stdout).binary;
    })();
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("npm pack ships only what a user needs, and package.json points into it", TIMEOUT, async () => {
    await build();
    const allowed = [
      /^(README\.md|package\.json|mod\.ts|version\.ts|bin\/lattice\.mjs|web\/_inspector_html\.ts)$/,
      /^(core|net|runtime|storage)\/[\w/]+\.ts$/,
      /^dist\/lattice(-network|-opfs-worker)?\.js$/,
      /^dist\/node\/[\w-]+\.js$/,
    ];
    const extra = packed.filter((f) => !allowed.some((re) => re.test(f)));
    assert.deepEqual(extra, [], "no tests, scripts, benchmarks, docs, lockfile, WASM sources or binaries");
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    assert.equal(pkg.private, undefined, "publishable");
    assert.match(pkg.scripts.prepack, /build-dist\.mjs/);
    const pointed = [
      pkg.bin.lattice,
      pkg.module,
      pkg.types,
      ...Object.values(pkg.exports["."] as Record<string, string>),
      "dist/node/cli.js",
    ].map((f: string) => f.replace(/^\.\//, ""));
    for (const f of pointed) assert.ok(packed.includes(f), `${f} is in the tarball`);
    for (const f of ["cli.ts", "web/index.html", "package-lock.json", ".npmrc"]) {
      assert.ok(!packed.includes(f), `${f} stays out`);
    }
  });

  it(
    "dist/lattice.js is one browser module with the WASM inside and no node: import; libp2p is in one lazy file",
    TIMEOUT,
    async () => {
      await build();
      const dist = path.join(tmp, "dist");
      const js = fs.readdirSync(dist).filter((f) => f.endsWith(".js")).sort();
      assert.deepEqual(js, ["lattice-network.js", "lattice-opfs-worker.js", "lattice.js"]);
      const core = fs.readFileSync(path.join(dist, "lattice.js"), "utf8");
      const network = fs.readFileSync(path.join(dist, "lattice-network.js"), "utf8");
      for (const text of [core, network]) {
        assert.doesNotMatch(text, /(\bfrom|\bimport)\s*\(?\s*["'](node|bun):/);
      }
      assert.ok(core.includes('"AGFzbQ'), "the WASM kernels are embedded (base64 of \\0asm)");
      const worker = fs.readFileSync(path.join(dist, "lattice-opfs-worker.js"), "utf8");
      assert.doesNotMatch(worker, /(\bfrom|\bimport)\s*\(?\s*["'](node|bun):/);
      assert.doesNotMatch(
        worker,
        /\bimport\s*[{*\w$][^()"']*\bfrom\s*["']/,
        "the OPFS worker imports nothing",
      );
      assert.ok(
        core.includes("lattice-opfs-worker.js"),
        "the core starts the OPFS worker from beside itself",
      );
      // A static import is `import … from "…"` (a string "from" in the code is not one).
      assert.doesNotMatch(
        core,
        /\bimport\s*[{*\w$][^()"']*\bfrom\s*["']/,
        "the core imports nothing statically",
      );
      assert.match(
        core,
        /\bimport\s*\(\s*["']\.\/lattice-network\.js["']\s*\)/,
        "it loads the network file lazily",
      );
      assert.ok(!core.includes("/meshsub/1."), "no gossipsub in what a local database loads");
      assert.ok(network.includes("/meshsub/1."), "gossipsub is in the network file");
      assert.match(
        network,
        /\bfrom\s*["']\.\/lattice\.js["']/,
        "which takes the shared modules from the core",
      );
    },
  );

  it(
    "npm install -g and npx of the tarball give a lattice command on Deno, on Bun, and a clear error without either",
    TIMEOUT,
    async () => {
      await build();
      const prefix = path.join(tmp, "prefix");
      ok(
        await run("npm", [
          "install",
          "-g",
          "--prefix",
          prefix,
          tarball,
          "--prefer-offline",
          "--legacy-peer-deps",
          "--no-audit",
          "--no-fund",
        ], { cwd: tmp, timeoutMs: 300_000 }),
        "npm install -g",
      );
      const nodeDir = onlyOnPath(path.join(tmp, "path-node"), "node", node!);
      const denoDir = onlyOnPath(path.join(tmp, "path-deno"), "deno", DENO);
      const bunDir = onlyOnPath(path.join(tmp, "path-bun"), "bun", BUN);
      const withPath = (...dirs: string[]) => ({
        cwd: tmp,
        env: childEnv({ PATH: [path.join(prefix, "bin"), ...dirs].join(path.delimiter) }),
      });
      const onDeno = withPath(denoDir, nodeDir);
      const onBun = withPath(bunDir, nodeDir);
      const lattice = path.join(prefix, "bin", "lattice");

      const help = ok(await run(lattice, ["--help"], onDeno), "lattice --help");
      assert.match(help.stdout, /Usage: lattice <command>/);
      const db = path.join(tmp, "npm-db");
      ok(await run(lattice, ["init", "--path", db], onDeno), "lattice init");
      ok(await run(lattice, ["put", "alice", '{"name":"Alice"}', "--path", db], onDeno), "lattice put");
      const got = ok(
        await run(lattice, ["get", "alice", "--path", db, "--json"], onBun),
        "lattice get on Bun",
      );
      assert.deepEqual(JSON.parse(got.stdout), { name: "Alice" });
      const npx = which("npx");
      assert.ok(npx, "npx is on PATH");
      // npx runs the command through sh.
      const shDir = onlyOnPath(path.join(tmp, "path-sh"), "sh", which("sh") ?? "/bin/sh");
      const viaNpx = await run(
        npx!,
        [
          "--yes",
          "--prefer-offline",
          "--legacy-peer-deps",
          `--package=${tarball}`,
          "--",
          "lattice",
          "get",
          "alice",
          "--path",
          db,
          "--json",
        ],
        withPath(denoDir, nodeDir, shDir),
      );
      assert.deepEqual(JSON.parse(ok(viaNpx, "npx lattice-db get").stdout), { name: "Alice" });
      // Which runtime ran it shows in the SQLite driver: Deno first, Bun when asked.
      const driver = async (opts: { cwd: string; env: Record<string, string> }) =>
        ok(await run(lattice, ["status", "--path", db], opts), "lattice status").stdout.match(
          /sqlite \((\S+)\)/,
        )?.[1];
      const both = withPath(denoDir, bunDir, nodeDir);
      assert.equal(await driver(both), "node:sqlite", "Deno when both are there");
      assert.equal(await driver({ ...both, env: { ...both.env, LATTICE_RUNTIME: "bun" } }), "bun:sqlite");
      assert.equal(await driver(onBun), "bun:sqlite");

      // libp2p resolves from the installed dependencies (Deno, under node_modules).
      let serve: Started | undefined;
      try {
        serve = await startReady(lattice, ["serve", "--memory", "--http", "127.0.0.1:0", "--json"], onDeno);
        const ready = JSON.parse(serve.line);
        assert.match(ready.peerId, /^12D3KooW/);
        const status = JSON.parse((await get(`${ready.http}/v1/status`)).text);
        assert.equal(status.storage, "memory");
      } finally {
        await stopped(serve);
      }

      const none = await run(lattice, ["--help"], withPath(nodeDir));
      assert.equal(none.code, 1);
      assert.match(none.stderr, /^lattice: found no deno or bun to run on: Lattice needs Deno or Bun\./);
    },
  );

  it("deno install -g -A -n lattice cli.ts gives a lattice command", TIMEOUT, async () => {
    await build();
    const root = path.join(tmp, "deno-root");
    const denoDir = onlyOnPath(path.join(tmp, "path-deno-install"), "deno", DENO);
    ok(
      await run(DENO, ["install", "-g", "-A", "-n", "lattice", "--root", root, path.join(ROOT, "cli.ts")], {
        cwd: tmp,
      }),
      "deno install",
    );
    const opts = {
      cwd: tmp,
      env: childEnv({ PATH: [path.join(root, "bin"), denoDir, process.env.PATH].join(path.delimiter) }),
    };
    const lattice = path.join(root, "bin", "lattice");
    const db = path.join(tmp, "deno-db");
    ok(await run(lattice, ["init", "--path", db], opts), "lattice init");
    ok(await run(lattice, ["put", "bob", '{"n":1}', "--path", db], opts), "lattice put");
    assert.deepEqual(
      JSON.parse(ok(await run(lattice, ["get", "bob", "--path", db, "--json"], opts), "get").stdout),
      {
        n: 1,
      },
    );
    let serve: Started | undefined;
    try {
      serve = await startReady(lattice, ["serve", "--memory", "--http", "127.0.0.1:0", "--json"], opts);
      const ready = JSON.parse(serve.line);
      assert.match(ready.peerId, /^12D3KooW/, "the installed command starts libp2p");
      assert.equal((await get(`${ready.http}/v1/status`)).status, 200);
    } finally {
      await stopped(serve);
    }
  });

  it(
    "the compiled binary serves the inspector at / and /v1/status, from a directory without the sources",
    TIMEOUT,
    async () => {
      await build();
      assert.ok(binary && fs.existsSync(binary), "scripts/build-dist.mjs compiled dist/bin/lattice");
      const elsewhere = fs.mkdtempSync(path.join(tmp, "run-"));
      const copy = path.join(elsewhere, "lattice");
      fs.copyFileSync(binary, copy);
      fs.chmodSync(copy, 0o755);
      let serve: Started | undefined;
      try {
        serve = await startReady(copy, ["serve", "--memory", "--http", "127.0.0.1:0", "--json"], {
          cwd: elsewhere,
        });
        const ready = JSON.parse(serve.line);
        const page = await get(`${ready.http}/`);
        assert.equal(page.status, 200);
        assert.match(page.type, /^text\/html/);
        // The page is web/index.html with the node's token in its lattice-token tag (loaded from loopback).
        const tag = '<meta name="lattice-token" content="">';
        const withToken = tag.replace('content=""', `content="${ready.token}"`);
        assert.equal(
          page.text,
          fs.readFileSync(path.join(ROOT, "web", "index.html"), "utf8").replace(tag, withToken),
        );
        const status = await get(`${ready.http}/v1/status`);
        assert.equal(status.status, 200);
        assert.equal(JSON.parse(status.text).storage, "memory");
      } finally {
        await stopped(serve);
      }
    },
  );

  it(
    "a Deno project outside the checkout imports jsr:@lattice/db and opens with a network",
    TIMEOUT,
    async () => {
      await build();
      const project = path.join(tmp, "consumer");
      fs.mkdirSync(project);
      // `links` resolves the jsr: import to this checkout with no JSR access, as a JSR install would.
      fs.writeFileSync(path.join(project, "deno.json"), JSON.stringify({ links: [ROOT] }));
      fs.writeFileSync(
        path.join(project, "main.ts"),
        `import { open } from "jsr:@lattice/db";
const a = await open({ storage: "memory", network: { space: "consumer" } });
const b = await open({ storage: "memory", network: { space: "consumer", bootstrap: a.network!.addrs() } });
await a.put("greeting", { text: "hi" });
let seen = await b.get("greeting");
for (let i = 0; i < 150 && !seen; i++) {
  await new Promise((r) => setTimeout(r, 100));
  seen = await b.get("greeting");
}
console.log(JSON.stringify(seen));
await b.close();
await a.close();
`,
      );
      const r = ok(
        await run(DENO, ["run", "-A", "main.ts"], { cwd: project, timeoutMs: 180_000 }),
        "deno run",
      );
      assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").pop()!), { text: "hi" });
    },
  );

  it("deno.json maps every bare specifier the published code imports to npm: at package.json's version", () => {
    const deno = JSON.parse(fs.readFileSync(path.join(ROOT, "deno.json"), "utf8"));
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    const published = (dir: string): string[] =>
      fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
        const rel = path.join(dir, e.name);
        if (e.isDirectory()) {
          const skip = ["tests", "bench", "scripts", "asm", "node_modules", "dist"].includes(rel) ||
            rel[0] === ".";
          return skip ? [] : published(rel);
        }
        return rel.endsWith(".ts") ? [rel] : [];
      });
    // `import "x"`, `import … from "x"` / `export … from "x"` (also over several lines), `import("x")`.
    const specifiers =
      /^\s*import\s*["']([^"']+)["']|^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
    const wanted = new Map<string, string>();
    for (const file of published(".")) {
      for (const m of fs.readFileSync(path.join(ROOT, file), "utf8").matchAll(specifiers)) {
        const spec = m[1] ?? m[2] ?? m[3];
        if (/^(\.|\/|(node|bun|npm|jsr|https?):)/.test(spec)) continue;
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
        wanted.set(name, file);
      }
    }
    assert.ok(wanted.has("libp2p"), "the scan finds the code's imports");
    for (const [name, file] of wanted) {
      assert.ok(pkg.dependencies[name], `${name} (imported by ${file}) is a dependency in package.json`);
      assert.equal(deno.imports[name], `npm:${name}@${pkg.dependencies[name]}`, `deno.json maps ${name}`);
    }
  });

  it("deno publish --dry-run passes and leaves database directories out", TIMEOUT, async () => {
    await build();
    // A copy of the committed tree (as a fresh clone has it) with databases where the README makes them.
    const tree = path.join(tmp, "clone");
    const files = ok(await run("git", ["ls-files", "-z"]), "git ls-files").stdout.split("\0").filter(Boolean);
    for (const f of files) {
      if (!fs.existsSync(path.join(ROOT, f))) continue; // deleted in the work tree
      fs.mkdirSync(path.dirname(path.join(tree, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(tree, f));
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(tree, "node_modules"));
    for (const dir of ["data", "b", ".lattice", "notes/my-db"]) {
      fs.mkdirSync(path.join(tree, dir), { recursive: true });
      fs.writeFileSync(path.join(tree, dir, "lattice.db"), "SQLite format 3\0");
      fs.writeFileSync(path.join(tree, dir, "LOCK"), "");
    }
    fs.writeFileSync(path.join(tree, "b", "journal-1.log"), "");
    const r = ok(
      await run(DENO, ["publish", "--dry-run", "--allow-dirty", "--no-check"], {
        cwd: tree,
        timeoutMs: 180_000,
      }),
      "deno publish --dry-run",
    );
    const out = r.stdout + r.stderr;
    const listed = [...out.matchAll(/file:\/\/\S+/g)].map((m) => m[0]);
    assert.ok(listed.some((f) => f.endsWith("/mod.ts")), `mod.ts is published:\n${out}`);
    const leaked = listed.filter((f) => /\/(data|b|\.lattice|notes)\/|lattice\.db|\/LOCK\b|journal-/.test(f));
    assert.deepEqual(leaked, [], "no database file is published");
  });
});
