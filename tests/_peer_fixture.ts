/**
 * The `lattice serve` node that tests/browser_peer.test.ts replicates with.
 *
 * On Deno and Bun the test starts it itself: `cli.ts serve` as a child
 * process of the same runtime, with a fresh data directory, exactly as users
 * run it. A page cannot spawn processes, so for Chromium scripts/test.mjs
 * starts one the same way before the file runs (files tagged
 * `@peer-fixture` in their first five lines) and hands it over in
 * `__LATTICE_TEST_CONFIG__.peer`.
 *
 * Both listen on WebSockets on 127.0.0.1 and on WebRTC-Direct (UDP) on
 * {@link WEBRTC_HOST}, an address on a veth interface that scripts/test.mjs
 * creates (WebRTC ignores loopback, so WebRTC-Direct needs a real
 * interface; the address is ours alone, nothing leaves the machine).
 *
 * Not a test file (no `.test.` in its name).
 */
import { type ServeProcess, startServe } from "./_serve.ts";

/** The interface scripts/test.mjs creates for WebRTC-Direct tests (one end of a veth pair). */
export const WEBRTC_INTERFACE = "lattice-wrtc0";
/** Its only address (a /32: no route to anywhere else). */
export const WEBRTC_HOST = "10.213.77.1";
/** The space the fixture serves. */
export const PEER_SPACE = "browser-peer";

/** The ready line of the fixture node, plus how to stop it. */
export interface PeerFixture {
  readonly http: string;
  /** The token of its HTTP API (`connect(http, { token })`). */
  readonly token: string;
  readonly peerId: string;
  readonly addrs: readonly string[];
  /** Why WebRTC-Direct is not available (no interface), or undefined. */
  readonly webrtcError?: string;
  /** Stops the node (a no-op for the runner's node) and returns its exit code. */
  stop(): Promise<number | null>;
}

/**
 * The `serve` arguments, shared with scripts/test.mjs in spirit: keep both in step. `pageOrigin` is
 * the origin of the test page in Chromium, which calls the node's HTTP API across origins.
 */
export function serveArgs(dataDir: string, webrtc: boolean, pageOrigin?: string): string[] {
  const args = [
    "serve",
    "--path",
    dataDir,
    "--http",
    "127.0.0.1:0",
    "--space",
    PEER_SPACE,
    "--listen",
    "/ip4/127.0.0.1/tcp/0/ws",
  ];
  if (webrtc) args.push("--listen", `/ip4/${WEBRTC_HOST}/udp/0/webrtc-direct`);
  if (pageOrigin) args.push("--cors-origin", pageOrigin);
  return [...args, "--json"];
}

interface Config {
  peer?: { http: string; token: string; peerId: string; addrs: string[]; webrtcError?: string } | {
    error: string;
  };
}

/** The fixture node: the runner's in a browser, a child process of our own elsewhere. */
export async function startPeerFixture(): Promise<PeerFixture> {
  const config = (globalThis as { __LATTICE_TEST_CONFIG__?: Config }).__LATTICE_TEST_CONFIG__;
  if (!("Deno" in globalThis) && !("Bun" in globalThis)) {
    const peer = config?.peer;
    if (!peer) {
      throw new Error(
        "No lattice serve fixture: in a browser this test needs the node scripts/test.mjs starts " +
          "for files tagged @peer-fixture (run it with `node scripts/test.mjs --only browser browser_peer`)",
      );
    }
    if ("error" in peer) throw new Error(`scripts/test.mjs could not start the fixture node: ${peer.error}`);
    return { ...peer, stop: () => Promise.resolve(0) };
  }
  return await spawnServe();
}

/** Whether {@link WEBRTC_HOST} is on an interface of this machine (servers only). */
async function hasWebRtcHost(): Promise<boolean> {
  const os = await import("node:os");
  return Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address === WEBRTC_HOST));
}

async function spawnServe(pageOrigin?: string): Promise<PeerFixture> {
  const fs = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const webrtc = await hasWebRtcHost();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-peer-"));
  const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
  let node: ServeProcess;
  try {
    node = await startServe(serveArgs(dir, webrtc, pageOrigin));
  } catch (e) {
    removeDir();
    throw e;
  }
  return {
    http: node.ready.http,
    token: node.ready.token!,
    peerId: node.ready.peerId!,
    addrs: node.ready.addrs,
    webrtcError: webrtc ? undefined : missingInterface(),
    stop: async () => {
      const code = await node.stop();
      removeDir();
      return code;
    },
  };
}

/** Why the WebRTC-Direct test cannot run, with how to fix it. */
export function missingInterface(): string {
  return `no interface has ${WEBRTC_HOST}: WebRTC-Direct tests need it (WebRTC skips loopback). ` +
    `\`node scripts/test.mjs\` creates it when run as root; by hand: ` +
    `ip link add ${WEBRTC_INTERFACE} type veth peer name lattice-wrtc1 && ` +
    `ip addr add ${WEBRTC_HOST}/32 dev ${WEBRTC_INTERFACE} && ip link set ${WEBRTC_INTERFACE} up && ` +
    `ip link set lattice-wrtc1 up`;
}

/**
 * `deno run -A tests/_peer_fixture.ts`: what scripts/test.mjs runs for the
 * browser stage. Starts the node as {@link startPeerFixture} does on Deno,
 * granting CORS to the test page's origin (`LATTICE_TEST_PAGE_ORIGIN`),
 * prints one JSON line `{http, token, peerId, addrs, webrtcError?}`, and on
 * SIGTERM/SIGINT stops it and exits with its exit code.
 */
async function main(): Promise<void> {
  const process = (await import("node:process")).default;
  let fx: PeerFixture;
  try {
    fx = await spawnServe(process.env.LATTICE_TEST_PAGE_ORIGIN || undefined);
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: (e as Error).message }) + "\n");
    return process.exit(1);
  }
  const { stop, ...ready } = fx;
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    stop().then((code) => process.exit(code ?? 1), () => process.exit(1));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.stdout.write(JSON.stringify(ready) + "\n");
}

if ((import.meta as { main?: boolean }).main) await main();
