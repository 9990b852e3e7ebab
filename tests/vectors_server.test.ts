// @server-only: opens SQLite directories in a temp dir, serves the HTTP API and spawns the CLI
/**
 * Vector search beyond one process's memory: indexes and their vectors
 * survive close and reopen on SQLite (declarations from the metadata,
 * vectors rebuilt from the records), and the surfaces — `POST /v1/search`,
 * `POST|GET /v1/indexes`, `connect(url).search/createIndex/indexes`, and the
 * CLI's `search` and `index add|list` — give what the library gives.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connect, decodeVector, open } from "../mod.ts";
import { startHttpApi } from "../net/http.ts";
import { prng, SEED } from "./_seed.ts";

console.log(`vectors_server.test.ts seed ${SEED}`);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const IS_DENO = typeof process.versions.deno === "string";
const CLI = IS_DENO
  ? [process.execPath, "run", "-A", join(ROOT, "cli.ts")]
  : [process.execPath, join(ROOT, "cli.ts")];
const SLOW = { timeout: 120_000 };
const INFO = () => ({ peerId: null, addrs: [], space: "default", peers: [] });

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "lattice-vectors-"));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("LATTICE_")) env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(CLI[0], [...CLI.slice(1), ...args], { cwd: ROOT, env });
    let stdout = "", stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => stdout += s);
    child.stderr.setEncoding("utf8").on("data", (s: string) => stderr += s);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("vector search on SQLite and over the surfaces", () => {
  it("keeps indexes and vectors across close and reopen", SLOW, async () => {
    const path = join(tmp, "reopen");
    const rand = prng(SEED);
    const vectors = Array.from({ length: 200 }, () => Array.from({ length: 8 }, () => rand() * 2 - 1));
    let db = await open({ path });
    await db.createIndex({ field: "v", dim: 8, metric: "l2", ef: 64 });
    await db.createIndex({ field: "w", dim: 2 });
    await Promise.all(vectors.map((v, i) => db.put(`n${i}`, { v, w: [i, 1], even: i % 2 === 0 })));
    await db.delete("n0");
    await db.put("n1", { v: vectors[199] }); // overwritten: a tie with n199 from now on
    const query = { vector: vectors[199], k: 20, field: "v", where: { even: false } };
    const before = await db.search(query);
    assert.deepEqual(before.slice(0, 2).map((r) => [r.soul, r.score]), [["n1", 0], ["n199", 0]]);
    const indexes = db.indexes();
    await db.close();

    db = await open({ path });
    assert.deepStrictEqual(db.indexes(), indexes);
    assert.deepStrictEqual(db.indexes().map((i) => i.count), [199, 199]);
    assert.deepStrictEqual(await db.search(query), before);
    assert.ok((await db.search({ ...query, k: 200, where: undefined })).every((r) => r.soul !== "n0"));
    await assert.rejects(db.createIndex({ field: "v", dim: 8 }), /other settings/, "settings kept");
    await db.close();
  });

  it(
    "serves POST /v1/search and POST|GET /v1/indexes, and connect(url) mirrors the library",
    SLOW,
    async () => {
      const local = await open({ storage: "memory" });
      const api = await startHttpApi(local, { host: "127.0.0.1", port: 0, info: INFO });
      const remote = connect(api.url, { token: api.token! });
      try {
        const info = await remote.createIndex({ field: "emb", dim: 3, metric: "dot" });
        assert.deepEqual(info, {
          field: "emb",
          dim: 3,
          metric: "dot",
          m: 16,
          efConstruction: 200,
          ef: 50,
          count: 0,
          dead: 0,
          state: "ready",
        });
        await remote.put("a", { emb: new Float32Array([1, 0, 0]), kind: "x" });
        await remote.put("b", { emb: [0, 2, 0], kind: "y" });
        await assert.rejects(remote.put("c", { emb: [1, 2] }), (e: Error) => {
          assert.equal(e.name, "RangeError");
          assert.match(e.message, /"emb" of "c".*3 components, got 2/);
          return true;
        });
        assert.equal(await local.get("c"), undefined);
        const got = await remote.search({ vector: new Float32Array([0.5, 1, 0]), k: 2 });
        assert.deepStrictEqual(got, await local.search({ vector: [0.5, 1, 0], k: 2 }));
        assert.deepEqual(got.map((r) => [r.soul, r.score]), [["b", 2], ["a", 0.5]]);
        assert.deepStrictEqual(decodeVector(got[0].node.emb as Uint8Array), new Float32Array([0, 2, 0]));
        const filtered = await remote.search({ vector: [0.5, 1, 0], k: 2, where: { kind: "x" } });
        assert.deepEqual(filtered.map((r) => r.soul), ["a"]);
        await remote.put("list", { first: { "#": "a" } });
        const walked = await remote.search({ vector: [0.5, 1, 0], k: 2, from: "list", path: ["first"] });
        assert.deepEqual(walked.map((r) => r.soul), ["a"]);
        await assert.rejects(remote.search({ vector: [0.5, 1, 0], k: 2, path: ["first"] }), TypeError);
        assert.deepStrictEqual(await remote.indexes(), local.indexes());
        await assert.rejects(remote.search({ vector: [1, 0], k: 1 }), RangeError);
        await assert.rejects(remote.createIndex({ field: "emb", dim: 4 }), /other settings/);

        // The raw routes: search is a read (no token from loopback), declaring an index a write.
        const raw = await fetch(`${api.url}/v1/search`, { method: "POST", body: '{"vector":[0,1,0],"k":1}' });
        assert.equal(raw.status, 200);
        assert.deepEqual(await raw.json(), {
          results: [{ soul: "b", score: 2, node: { emb: { $bytes: "AAAAAAAAAEAAAAAA" }, kind: "y" } }],
        });
        const listed = await fetch(`${api.url}/v1/indexes`);
        assert.deepEqual(await listed.json(), { indexes: local.indexes() });
        const refused = await fetch(`${api.url}/v1/indexes`, {
          method: "POST",
          body: '{"field":"x","dim":2}',
        });
        assert.equal(refused.status, 401);
        await refused.body?.cancel();
        assert.equal(local.indexes().length, 1);

        // The CLI with --url goes through the same client.
        const url = ["--url", api.url, "--token", api.token!, "--json"];
        const found = await cli(["search", "--vector", "[0,1,0]", "--k", "1", ...url]);
        assert.equal(found.code, 0, found.stderr);
        assert.equal(JSON.parse(found.stdout).soul, "b");
        const added = await cli(["index", "add", "other", "--dim", "2", ...url]);
        assert.equal(added.code, 0, added.stderr);
        assert.deepEqual(local.indexes().map((i) => i.field), ["emb", "other"]);
        const listed2 = await cli(["index", "list", ...url]);
        assert.deepEqual(listed2.stdout.trim().split("\n").map((l) => JSON.parse(l).field), ["emb", "other"]);
      } finally {
        await remote.close();
        await api.close();
        await local.close();
      }
    },
  );

  it("lattice index add|list and lattice search, on a directory", SLOW, async () => {
    const path = join(tmp, "cli");
    assert.equal((await cli(["init", "--path", path])).code, 0);
    const added = await cli([
      "index",
      "add",
      "emb",
      "--dim",
      "3",
      "--metric",
      "l2",
      "--path",
      path,
      "--json",
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(JSON.parse(added.stdout).metric, "l2");
    for (const [soul, data] of [["a", '{"emb":[0,0,0],"kind":"x"}'], ["b", '{"emb":[3,4,0],"kind":"y"}']]) {
      const r = await cli(["put", soul, data, "--path", path]);
      assert.equal(r.code, 0, r.stderr);
    }
    const bad = await cli(["put", "c", '{"emb":[1,2]}', "--path", path]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"emb" of "c".*3 components, got 2/);
    const found = await cli(["search", "--vector", "[0,0,0]", "--k", "5", "--path", path, "--json"]);
    assert.equal(found.code, 0, found.stderr);
    const lines = found.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((r) => [r.soul, r.score]), [["a", 0], ["b", 5]]);
    const where = await cli([
      "search",
      "--vector",
      "[0,0,0]",
      "--k",
      "5",
      "--where",
      '{"kind":"y"}',
      "--path",
      path,
    ]);
    assert.equal(where.code, 0, where.stderr);
    assert.match(where.stdout, /^b\t5\t\{"emb":\{"\$bytes":"AABAQAAAgEAAAAAA"\},"kind":"y"\}\n$/);
    assert.equal((await cli(["put", "l", '{"m":{"#":"b"}}', "--path", path])).code, 0);
    const walk = await cli([
      ...["search", "--vector", "[0,0,0]", "--k", "5", "--from", "l", "--follow", "m", "--exact"],
      ...["--ef", "20", "--path", path],
    ]);
    assert.equal(walk.code, 0, walk.stderr);
    assert.match(walk.stdout, /^b\t5\t/);
    assert.equal(walk.stdout.split("\n").length, 2, "only the node the walk reaches");
    const list = await cli(["index", "list", "--path", path]);
    assert.equal(list.stdout, "emb\tdim 3\tl2\t2 vectors\tready\n");
    for (
      const [args, code, pattern] of [
        [["search", "--vector", "[0,0]", "--k", "1"], 2, /3 components, got 2/],
        [["search", "--vector", "nope", "--k", "1"], 2, /--vector is not valid JSON/],
        [["search", "--vector", "[0,0,0]"], 2, /needs --k/],
        [["search", "--vector", "[0,0,0]", "--k", "1", "--follow", "m"], 2, /--follow needs --from/],
        [["search", "--vector", "[0,0,0]", "--k", "1", "--ef", "0"], 2, /ef must be an integer/],
        [["index", "add", "emb"], 2, /needs --dim/],
        [["index", "drop", "emb"], 2, /add or list/],
        [["index", "add", "x", "--dim", "2", "--m", "1"], 2, /m must be an integer from 2 to 128/],
        [["index", "list", "--m", "4"], 2, /go with index add/],
        [["index", "add", "emb", "--dim", "4"], 2, /other settings/],
      ] as const
    ) {
      const r = await cli([...args, "--path", path]);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    const tuned = await cli([
      ...["index", "add", "tuned", "--dim", "2", "--m", "8", "--ef-construction", "40", "--ef", "30"],
      ...["--quantize", "int8"],
      ...["--path", path, "--json"],
    ]);
    assert.equal(tuned.code, 0, tuned.stderr);
    const info = JSON.parse(tuned.stdout);
    assert.deepEqual([info.m, info.efConstruction, info.ef, info.quantize, info.state], [
      8,
      40,
      30,
      "int8",
      "ready",
    ]);
  });
});
