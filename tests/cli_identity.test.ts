// @server-only: spawns the CLI
/**
 * `lattice init --encrypt` and `lattice identity show|export|import`, run as
 * child processes with the runtime running this test, and `lattice serve`
 * keeping its peer id across restarts (the directory's key), refusing to
 * start without the passphrase of an encrypted key.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { importIdentity } from "../mod.ts";
import { startServe } from "./_serve.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI_FILE = join(ROOT, "cli.ts");
const IS_DENO = typeof process.versions.deno === "string";
const CLI = IS_DENO ? [process.execPath, "run", "-A", CLI_FILE] : [process.execPath, CLI_FILE];
const SLOW = { timeout: 120_000 };

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args` (LATTICE_* variables of this process left out), `input` on its stdin. */
function cli(args: readonly string[], env: Record<string, string> = {}, input?: string): Promise<Result> {
  const full: Record<string, string> = { NO_COLOR: "1" };
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("LATTICE_")) full[k] = v;
  }
  Object.assign(full, env);
  return new Promise((resolve, reject) => {
    const child = spawn(CLI[0], [...CLI.slice(1), ...args], { cwd: ROOT, env: full });
    let stdout = "", stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => stdout += s);
    child.stderr.setEncoding("utf8").on("data", (s: string) => stderr += s);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

function ok(r: Result): Result {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Exit 1 with one line on stderr matching `pattern`, nothing on stdout. */
function fails(r: Result, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^lattice: [^\n]+\n$/);
  assert.match(r.stderr, pattern);
}

const json = (r: Result): Record<string, unknown> => JSON.parse(ok(r).stdout);

describe("lattice identity", () => {
  let tmp = "";
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "lattice-cli-identity-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("init creates the identity; show, export and import carry it to another directory", SLOW, async () => {
    const a = join(tmp, "a"), b = join(tmp, "b");
    const init = json(await cli(["init", "--json", "--path", a]));
    const shown = json(await cli(["identity", "show", "--json", "--path", a]));
    assert.deepEqual(Object.keys(shown), ["path", "id", "actor", "peerId", "encrypted"]);
    assert.equal(shown.id, init.identity);
    assert.equal(shown.actor, init.actor);
    assert.equal(shown.encrypted, false);
    assert.match(shown.peerId as string, /^12D3KooW\w+$/);
    const text = ok(await cli(["identity", "show", "--path", a])).stdout;
    for (const key of ["identity", "actor", "peer id", "encrypted", "file"]) {
      assert.match(text, new RegExp(`^${key}: +\\S`, "m"), key);
    }

    const exported = ok(await cli(["identity", "export", "--path", a]));
    assert.match(exported.stderr, /secret/);
    const me = await importIdentity(exported.stdout.trim());
    assert.equal(me.id, shown.id);
    const file = join(tmp, "key.json");
    writeFileSync(file, exported.stdout);

    const imported = json(await cli(["identity", "import", file, "--json", "--path", b]));
    assert.equal(imported.id, me.id);
    assert.equal(statSync(join(b, "identity.json")).mode & 0o777, 0o600);
    // The directory's database then writes as that identity.
    assert.equal(json(await cli(["init", "--json", "--path", b])).actor, me.actor);
    fails(await cli(["identity", "import", file, "--path", b]), /already holds an identity; give --force/);
    ok(await cli(["init", "--path", join(tmp, "fresh")]));
    const other = join(tmp, "other.json");
    writeFileSync(other, ok(await cli(["identity", "export", "--path", join(tmp, "fresh")])).stdout);
    ok(await cli(["identity", "import", "-", "--force", "--path", b], {}, readFileSync(other, "utf8")));
    assert.notEqual(json(await cli(["identity", "show", "--json", "--path", b])).id, me.id);

    fails(await cli(["identity", "show", "--path", join(tmp, "none")]), /No identity in .*lattice init/);
    fails(await cli(["identity", "import", join(tmp, "missing.json"), "--path", b]), /Cannot read/);
    writeFileSync(join(tmp, "bad.json"), '{"type":"lattice-identity"}');
    fails(await cli(["identity", "import", join(tmp, "bad.json"), "--path", b]), /not an exported identity/);
    const usage = await cli(["identity", "rotate", "--path", a]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown action "rotate"/);
    assert.match(ok(await cli(["identity", "--help"])).stdout, /^Usage: lattice identity show/);
  });

  it(
    "an encrypted identity needs LATTICE_PASSPHRASE: a clear refusal without it or with a wrong one",
    SLOW,
    async () => {
      const dir = join(tmp, "sealed");
      fails(
        await cli(["init", "--encrypt", "--path", dir]),
        /--encrypt needs the passphrase in LATTICE_PASSPHRASE/,
      );
      const plain = json(await cli(["init", "--json", "--path", dir]));
      assert.equal(plain.encrypted, false);
      const pass = { LATTICE_PASSPHRASE: "correct horse" };
      // --encrypt seals the key already there: same identity, now encrypted.
      const sealed = json(await cli(["init", "--encrypt", "--json", "--path", dir], pass));
      assert.equal(sealed.identity, plain.identity);
      assert.equal(sealed.encrypted, true);
      assert.equal(
        JSON.parse(readFileSync(join(dir, "identity.json"), "utf8")).type,
        "lattice-identity-encrypted",
      );
      assert.equal(json(await cli(["identity", "show", "--json", "--path", dir])).encrypted, true);

      fails(
        await cli(["status", "--path", dir]),
        /identity .* is encrypted: give its passphrase in LATTICE_PASSPHRASE/,
      );
      fails(
        await cli(["status", "--path", dir], { LATTICE_PASSPHRASE: "wrong" }),
        /Cannot unlock the identity .* passphrase \(LATTICE_PASSPHRASE, .*\) is wrong/,
      );
      fails(await cli(["identity", "export", "--path", dir]), /is encrypted/);
      assert.equal(json(await cli(["status", "--json", "--path", dir], pass)).identity, plain.identity);
      const exported = ok(await cli(["identity", "export", "--path", dir], pass)).stdout;
      assert.equal((await importIdentity(exported.trim())).id, plain.identity);

      // A node on that directory refuses to start without the passphrase, in one sentence.
      fails(
        await cli(["serve", "--path", dir, "--http", "127.0.0.1:0"]),
        /is encrypted: give its passphrase in LATTICE_PASSPHRASE/,
      );
    },
  );

  it("serve keeps its peer id across restarts: the directory's key", SLOW, async () => {
    const dir = join(tmp, "node");
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const node = await startServe(["serve", "--path", dir, "--http", "127.0.0.1:0", "--json"], {
        readyMs: 30_000,
      });
      try {
        ids.push(node.ready.peerId!);
        const status = await fetch(`${node.ready.http}/v1/status`).then((r) => r.json());
        assert.equal(status.peerId, node.ready.peerId);
        assert.match(status.identity, /^[0-9a-f]{64}$/);
      } finally {
        await node.stop();
      }
    }
    assert.equal(ids[0], ids[1]);
    assert.equal(json(await cli(["identity", "show", "--json", "--path", dir])).peerId, ids[0]);
  });
});
