// @server-only: writes temporary source trees and runs deno on them
/**
 * The source checks of the test runner's checks stage (scripts/test/check_*.mjs and the scanner
 * they share, scripts/test/source_scan.mjs), each run on a small temporary tree: a tree that
 * breaks the rule must fail with the offending module named, and the same tree without the break
 * must pass.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { BIN } from "./_procs.ts";
import { blank, parseImports } from "../scripts/test/source_scan.mjs";
import { checkCycles } from "../scripts/test/check_cycles.mjs";
import { checkLayers } from "../scripts/test/check_layers.mjs";
import { checkWorld } from "../scripts/test/check_world.mjs";
import { checkFileSize } from "../scripts/test/check_file_size.mjs";
import { docTestArgs, docTestModules, docTestSummary } from "../scripts/test/check_doc_tests.mjs";
import { checkExamples } from "../scripts/test/check_examples.mjs";

const trees: string[] = [];

/** A temporary tree with the given files (path → text). */
function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-checks-"));
  trees.push(root);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  }
  return root;
}

afterEach(() => {
  for (const root of trees.splice(0)) fs.rmSync(root, { recursive: true, force: true });
});

describe("source_scan", () => {
  it("finds value, type-only and dynamic imports, and none in comments or strings", () => {
    const text = [
      'import { a } from "./a.ts";',
      'import type { B } from "./b.ts";',
      'import { type C, type D } from "./c.ts";',
      'import { type E, f } from "./e.ts";',
      'export { g } from "./g.ts";',
      'export type { H } from "./h.ts";',
      'import "./side.ts";',
      "/**",
      ' * import { open } from "./example.ts";',
      " */",
      '// import { x } from "./commented.ts";',
      'const s = "import { y } from \\"./string.ts\\"";',
      'const lazy = await import("./lazy.ts");',
      "import {",
      "  m,",
      "  n,",
      '} from "./multi.ts";',
    ].join("\n");
    const found = parseImports(text).map((i: { specifier: string; kind: string }) =>
      `${i.kind} ${i.specifier}`
    );
    assert.deepEqual(found, [
      "value ./a.ts",
      "type ./b.ts",
      "type ./c.ts",
      "value ./e.ts",
      "value ./g.ts",
      "type ./h.ts",
      "value ./side.ts",
      "dynamic ./lazy.ts",
      "value ./multi.ts",
    ]);
  });

  it("blanks comments and, on request, string contents, keeping every line", () => {
    const text = 'a(); // Date.now\n/* x\n y */ b("Date.now");\n';
    assert.equal(blank(text), 'a();            \n    \n      b("Date.now");\n');
    assert.equal(blank(text, { strings: true }), 'a();            \n    \n      b("        ");\n');
  });
});

describe("check_cycles", () => {
  it("fails on a cycle and lists it", () => {
    const root = tree({
      "mod.ts": 'import { b } from "./net/b.ts";\nexport const a = 1;\n',
      "net/b.ts": 'import { c } from "./c.ts";\nexport const b = 2;\n',
      "net/c.ts": 'import { a } from "../mod.ts";\nexport const c = 3;\n',
      "other.ts": 'import { a } from "./mod.ts";\n',
    });
    assert.deepEqual(checkCycles(root), ["import cycle: mod.ts → net/b.ts → net/c.ts → mod.ts"]);
  });

  it("counts type-only and dynamic imports, and marks them", () => {
    const root = tree({
      "mod.ts": 'const j = await import("./join.ts");\n',
      "join.ts": 'import type { T } from "./mod.ts";\n',
    });
    assert.deepEqual(checkCycles(root), ["import cycle: join.ts →(type) mod.ts →(dynamic) join.ts"]);
  });

  it("passes a tree without a cycle", () => {
    const root = tree({
      "mod.ts": 'import { b } from "./b.ts";\nimport { c } from "./c.ts";\n',
      "b.ts": 'import { c } from "./c.ts";\nimport x from "npm:x";\n',
      "c.ts": "export const c = 1;\n",
    });
    assert.deepEqual(checkCycles(root), []);
  });
});

describe("check_layers", () => {
  it("fails on an import of storage/, net/ or runtime/ from core/", () => {
    const root = tree({
      "core/a.ts": 'import { b } from "./b.ts";\nimport type { S } from "../storage/s.ts";\n',
      "core/b.ts": 'const n = await import("../net/n.ts");\n',
      "storage/s.ts": 'import { b } from "../core/b.ts";\n',
      "net/n.ts": "export const n = 1;\n",
    });
    const problems = checkLayers(root);
    assert.equal(problems.length, 2);
    assert.match(problems[0], /^core\/a\.ts:2 imports storage\/s\.ts \(type import\)/);
    assert.match(problems[1], /^core\/b\.ts:1 imports net\/n\.ts \(dynamic import\)/);
  });

  it("passes when only the upper layers import core/", () => {
    const root = tree({
      "core/a.ts": 'import { b } from "./b.ts";\n',
      "core/b.ts": "export const b = 1;\n",
      "storage/s.ts": 'import { b } from "../core/b.ts";\n',
    });
    assert.deepEqual(checkLayers(root), []);
  });
});

describe("check_world", () => {
  it("fails on clocks, timers and randomness outside core/world.ts", () => {
    const root = tree({
      "core/world.ts": "export const now = () => Date.now();\n",
      "net/a.ts": "const t = Date.now();\nglobalThis.setTimeout(f, 1);\n",
      "storage/b.ts": "crypto.getRandomValues(new Uint8Array(4));\nconst r = Math.random();\n",
      "mod.ts": "const p = performance.now();\nconst name = `x-${`${Math.random()}`}`;\n",
    });
    assert.deepEqual(checkWorld(root), [
      "mod.ts: 1 performance.now, 2 Math.random (use a World: core/world.ts)",
      "net/a.ts: 1 Date.now, 2 setTimeout (use a World: core/world.ts)",
      "storage/b.ts: 1 crypto.getRandomValues, 2 Math.random (use a World: core/world.ts)",
    ]);
  });

  it("passes mentions in comments and strings, methods of other objects, tests and bench", () => {
    const root = tree({
      "core/world.ts": "export const t = setTimeout;\n",
      "net/a.ts":
        '// Date.now is read through the World\nsocket.setTimeout(0);\nthrow new Error("setTimeout");\n' +
        "const t = `setTimeout ${1} Date.now`;\n",
      "tests/a.test.ts": "setTimeout(() => {}, Date.now() % 2);\n",
      "bench/a.ts": "const r = Math.random();\n",
    });
    assert.deepEqual(checkWorld(root), []);
  });
});

describe("check_file_size", () => {
  it("fails on a module over the limit, and leaves out tests and generated files", () => {
    const lines = (n: number) => "x;\n".repeat(n);
    const root = tree({
      "core/long.ts": lines(501),
      "core/ok.ts": lines(500),
      "tests/long.test.ts": lines(900),
      "core/kernels/_wasm_bytes.ts": lines(900),
    });
    assert.deepEqual(checkFileSize(root), ["core/long.ts: 501 lines (limit 500: split it by concept)"]);
  });
});

describe("check_doc_tests", () => {
  const example = (code: string) =>
    ["/**", " * Doubles.", " * @example", " * ```ts", ` * ${code}`, " * ```", " */"].join("\n");
  const files = (code: string) => ({
    "deno.json": JSON.stringify({ exports: { ".": "./mod.ts" } }),
    "mod.ts":
      'import { half } from "./lib/half.ts";\nexport { half };\nexport { twice } from "./lib/twice.ts";\n',
    "lib/twice.ts": `${example(code)}\nexport function twice(x: number): number {\n  return x * 2;\n}\n`,
    "lib/half.ts": "export const half = (x: number): number => x / 2;\n",
    "lib/private.ts": `${example('throw new Error("not public");')}\nexport const p = 1;\n`,
  });
  const run = (root: string) => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-doc-cwd-"));
    trees.push(cwd);
    const r = spawnSync(path.join(BIN, "deno"), docTestArgs(root), {
      cwd,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
    });
    return { code: r.status, out: r.stdout + r.stderr };
  };

  it("names mod.ts and the modules it re-exports from, directly or through its imports", () => {
    assert.deepEqual(docTestModules(tree(files("twice(1);"))), ["lib/half.ts", "lib/twice.ts", "mod.ts"]);
  });

  it("fails on an example that throws, passes when it holds", () => {
    const bad = run(tree(files('if (twice(2) !== 5) throw new Error("twice(2) is not 5");')));
    assert.notEqual(bad.code, 0, bad.out);
    assert.match(bad.out, /twice\(2\) is not 5/);
    assert.match(docTestSummary(bad.out), /twice\(2\) is not 5/);
    assert.doesNotMatch(docTestSummary(bad.out), /^Check /m);
    const good = run(tree(files('if (twice(2) !== 4) throw new Error("twice(2) is not 4");')));
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /lib\/twice\.ts#/);
  });
});

describe("check_examples", () => {
  const withExample = (doc: string) =>
    [`/**\n * ${doc}\n *\n * @example`, " * ```ts", " * console.log(1); // 1", " * ```", " */"].join("\n");
  const files = (halfDoc: string) => ({
    "mod.ts": 'export { twice } from "./lib/twice.ts";\nexport type { Half } from "./lib/half.ts";\n',
    "lib/twice.ts": withExample("Doubles.") + "\nexport const twice = (x: number): number => x * 2;\n",
    "lib/half.ts": `${halfDoc}\nexport type Half = number;\n`,
  });
  const deno = path.join(BIN, "deno");

  it("fails on an export of mod.ts, a type too, whose declaration has no @example, naming where it is", () => {
    assert.deepEqual(checkExamples(tree(files("/** Half of something. */")), deno), [
      "mod.ts exports Half (typeAlias, lib/half.ts:2) without an @example in its JSDoc",
    ]);
  });

  it("passes when every export has one at its declaration", () => {
    assert.deepEqual(checkExamples(tree(files(withExample("Half of something."))), deno), []);
  });
});
