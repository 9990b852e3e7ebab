/**
 * The peer fixture of files tagged @peer-fixture: a veth interface holding an address WebRTC accepts
 * (it skips loopback), and, for Chromium, a `lattice serve` node (tests/_peer_fixture.ts) the page
 * replicates with, since a page cannot spawn processes.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { ROOT } from "./config.mjs";
import { activeChildren, killGroup, toolEnv } from "./process.mjs";

// Keep in step with tests/_peer_fixture.ts (WEBRTC_INTERFACE, WEBRTC_HOST).
export const WEBRTC_INTERFACE = "lattice-wrtc0";
const WEBRTC_PEER_END = "lattice-wrtc1";
export const WEBRTC_HOST = "10.213.77.1";

function hasAddress(ip) {
  return Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address === ip));
}

/**
 * WebRTC skips loopback, so WebRTC-Direct tests need an address on a real interface. This creates
 * a veth pair whose one end holds WEBRTC_HOST/32: the address is local (packets to it never leave
 * the machine), there is no route to anything else, and IPv6 is off on both ends so the kernel
 * sends nothing on them by itself. Needs root (CI runs as root). Returns { created } or { error }.
 */
export function ensureWebRtcInterface() {
  if (hasAddress(WEBRTC_HOST)) return { created: false };
  const steps = [
    ["ip", "link", "add", WEBRTC_INTERFACE, "type", "veth", "peer", "name", WEBRTC_PEER_END],
    ["ipv6-off", WEBRTC_INTERFACE],
    ["ipv6-off", WEBRTC_PEER_END],
    ["ip", "addr", "add", `${WEBRTC_HOST}/32`, "dev", WEBRTC_INTERFACE],
    ["ip", "link", "set", WEBRTC_INTERFACE, "up"],
    ["ip", "link", "set", WEBRTC_PEER_END, "up"],
  ];
  for (const [cmd, ...args] of steps) {
    if (cmd === "ipv6-off") {
      const knob = `/proc/sys/net/ipv6/conf/${args[0]}/disable_ipv6`;
      if (fs.existsSync(knob)) fs.writeFileSync(knob, "1"); // absent when the kernel has no IPv6
      continue;
    }
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    if (r.status !== 0) {
      const why = (r.error?.message ?? r.stderr ?? "").trim() || `exit code ${r.status}`;
      removeWebRtcInterface();
      return {
        error: `could not create the WebRTC-Direct test interface (\`${cmd} ${args.join(" ")}\`: ${why}); ` +
          "WebRTC skips loopback, so these tests need it: run the tests as root (as CI does)",
      };
    }
  }
  return { created: true };
}

export function removeWebRtcInterface() {
  spawnSync("ip", ["link", "del", WEBRTC_INTERFACE], { stdio: "ignore" });
}

/**
 * Starts `deno run -A tests/_peer_fixture.ts`, which runs `cli.ts serve` as a child and prints its
 * ready line as JSON. Resolves with { child, ready } or { child, error }.
 */
export function startPeerFixture(deno, pageOrigin) {
  const child = spawn(deno, ["run", "-A", "tests/_peer_fixture.ts"], {
    cwd: ROOT,
    // The page calls the node's HTTP API from its own origin: the node grants it CORS.
    env: toolEnv({ LATTICE_TEST_PAGE_ORIGIN: pageOrigin }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  activeChildren.add(child);
  let out = "", err = "";
  child.stderr.setEncoding("utf8").on("data", (s) => err += s);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done({ error: `no ready line after 60 s; stderr: ${err}` }), 60_000);
    const done = (result) => {
      clearTimeout(timer);
      resolve({ child, ...result });
    };
    child.on("error", (e) => done({ error: `could not start deno: ${e.message}` }));
    child.on(
      "exit",
      (code) => done({ error: `the fixture exited (${code}) before it was ready; stderr: ${err}` }),
    );
    child.stdout.setEncoding("utf8").on("data", (s) => {
      out += s;
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      try {
        const ready = JSON.parse(out.slice(0, nl));
        done(ready.error ? { error: ready.error } : { ready });
      } catch {
        done({ error: `unreadable ready line ${JSON.stringify(out.slice(0, nl))}` });
      }
    });
  });
}

/** Stops the fixture (SIGTERM, then SIGKILL after 10 s); resolves with its exit code. */
export function stopPeerFixture(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      activeChildren.delete(child);
      return resolve(child.exitCode);
    }
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 10_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      killGroup(child, "SIGKILL");
      activeChildren.delete(child);
      resolve(code);
    });
    child.kill("SIGTERM");
  });
}
