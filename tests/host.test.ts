// @server-only: the host interface is files and processes.
/**
 * storage/_host.ts: the file and process calls storage makes behave as
 * `node:fs`/`node:path` do (the Deno namespace implements them on Deno).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { posix } from "node:path";
import { spawnSync } from "node:child_process";
import process from "node:process";
import fc from "fast-check";
import { loadHost, normalize } from "../storage/_host.ts";
import { fcParams } from "./_seed.ts";

const root = mkdtempSync(posix.join(tmpdir(), "lattice-host-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("host", () => {
  it("normalizes paths as node:path does", () => {
    const part = fc.constantFrom("", ".", "..", "a", "b", "c.d", "...");
    fc.assert(
      fc.property(fc.boolean(), fc.array(part, { maxLength: 8 }), (absolute, parts) => {
        const p = (absolute ? "/" : "") + parts.join("/");
        if (p === "") return;
        const expected = posix.normalize(p);
        const bare = expected.length > 1 && expected.endsWith("/") ? expected.slice(0, -1) : expected;
        assert.equal(normalize(p), bare, `normalize(${JSON.stringify(p)})`);
      }),
      fcParams(2_000),
    );
    const host = loadHost();
    return host.then((h) => {
      assert.equal(h.join("/tmp/x/", "LOCK"), "/tmp/x/LOCK");
      assert.equal(h.join("a", "..", "b"), "b");
      assert.equal(h.resolve("/a/./b/../c"), "/a/c");
      assert.equal(h.resolve("x"), posix.join(process.cwd(), "x"));
      assert.equal(h.basename("/a/b/cli.ts"), "cli.ts");
    });
  });

  it("creates, appends, truncates, reads, lists, renames, links and removes files, with Node's error codes", async () => {
    const { fs, join } = await loadHost();
    const file = join(root, "journal-1.log");
    const fd = fs.openSync(file, "ax");
    assert.throws(() => fs.openSync(file, "ax"), (e: { code?: string }) => e.code === "EEXIST");
    const bytes = Uint8Array.of(9, 1, 2, 3, 4, 9);
    assert.equal(fs.writeSync(fd, bytes, 1, 4), 4);
    fs.fdatasyncSync(fd);
    assert.equal(fs.writeSync(fd, bytes, 0, 2), 2);
    fs.ftruncateSync(fd, 5);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3, 4, 9]);
    const lock = join(root, "LOCK");
    const lfd = fs.openSync(lock, "wx", 0o644);
    fs.closeSync(lfd);
    assert.throws(() => fs.openSync(lock, "wx", 0o644), (e: { code?: string }) => e.code === "EEXIST");
    fs.renameSync(lock, lock + ".aside");
    fs.linkSync(lock + ".aside", lock);
    assert.deepEqual(fs.readdirSync(root).sort(), ["LOCK", "LOCK.aside", "journal-1.log"]);
    fs.unlinkSync(lock + ".aside");
    fs.unlinkSync(lock);
    assert.throws(() => fs.readFileSync(lock), (e: { code?: string }) => e.code === "ENOENT");
    fs.mkdirSync(join(root, "a", "b"), { recursive: true });
    fs.mkdirSync(join(root, "a", "b"), { recursive: true }); // exists: fine
    const dir = fs.openSync(join(root, "a"), "r");
    fs.fsyncSync(dir); // a directory is synced through a descriptor too
    fs.closeSync(dir);
    assert.throws(() => fs.closeSync(dir));
  });

  it("tells live processes from dead ones", async () => {
    const host = await loadHost();
    assert.equal(host.pid, process.pid);
    assert.ok(host.isAlive(process.pid));
    // A child that has exited and been reaped: its pid is free.
    const child = spawnSync(process.execPath, ["--version"]);
    assert.equal(child.status, 0);
    assert.equal(host.isAlive(child.pid!), false);
    assert.ok(host.hostname.length > 0);
    assert.ok(host.bootTime < Date.now() && host.bootTime > Date.now() - 10 * 365 * 86_400_000);
    assert.ok(host.argv.length >= 2);
  });
});
