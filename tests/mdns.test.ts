// @server-only: runs a child in a network namespace of its own (needs root, unshare and ip)
/**
 * LAN discovery (`network: { mdns: true }`, `lattice serve --mdns`): two nodes with no bootstrap
 * find each other by mDNS and replicate, only members of the same space answer, and a node without
 * the option is never found. The child runs in a new network namespace whose only interface is
 * loopback with multicast on, so no multicast ever reaches a real network.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function runInNamespace(script: string): Promise<{ code: number | null; out: string; err: string }> {
  const runtime = "Deno" in globalThis
    ? `'${process.execPath}' run -A ${script}`
    : `'${process.execPath}' ${script}`;
  const setup = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo";
  const child = spawn("unshare", ["-n", "sh", "-c", `${setup} && exec ${runtime}`], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "", err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => out += s);
  child.stderr!.setEncoding("utf8").on("data", (s: string) => err += s);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) => {
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: null, out, err: `${err}${e.message}` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe("mDNS discovery", () => {
  it(
    "two nodes with no bootstrap find each other on the LAN and sync; other spaces and nodes without mdns stay apart",
    {
      timeout: 90_000,
    },
    async () => {
      assert.equal(
        process.getuid?.(),
        0,
        "this test makes a network namespace: run the suite as root (CI does), or leave it out with a filter",
      );
      const r = await runInNamespace("tests/_mdns_child.ts");
      assert.equal(r.code, 0, `child exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
      const seen = JSON.parse(r.out.trim().split("\n").at(-1)!);
      assert.deepEqual(seen.seen, { by: "mdns" });
      assert.deepEqual(seen.aPeers, [seen.b]);
      assert.deepEqual(seen.bPeers, [seen.a]);
      assert.deepEqual(seen.otherPeers, []);
      assert.deepEqual(seen.quietPeers, []);
      assert.equal(seen.quietSeen, null);
    },
  );

  it("is refused unless a boolean", async () => {
    const { open } = await import("../mod.ts");
    await assert.rejects(
      open({ storage: "memory", network: { mdns: "yes" as unknown as boolean } }),
      (e: Error) => e.name === "TypeError" && /network\.mdns must be a boolean/.test(e.message),
    );
  });
});
