// @server-only: a child process of identity.test.ts
/**
 * Run as `deno run -A tests/_webrtc_cert_child.ts DIR HOST` or `bun
 * tests/_webrtc_cert_child.ts DIR HOST`: opens DIR twice with a network that
 * listens on WebRTC-Direct only (at HOST: WebRTC skips loopback), the second
 * time with a memory peer dialing it over that address and reading a put;
 * prints one JSON line `{ "hashes": [first, second], "got": value }`.
 *
 * A process of its own: the WebRTC native addon keeps callbacks into the
 * JavaScript isolate that started it, and Deno, which runs each test file in
 * an isolate of its own in one process, panics when a later file starts
 * WebRTC again ("access Handle hosted by disposed Isolate").
 *
 * Not a test file (no `.test.` in its name).
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { open } from "../mod.ts";
import { runtimeName } from "../runtime/detect.ts";

/** The command that runs this script with `args` on the current runtime. */
export function webRtcCertCommand(args: readonly string[]): [string, string[]] {
  const script = fileURLToPath(import.meta.url);
  return runtimeName() === "deno"
    ? [process.execPath, ["run", "-A", script, ...args]]
    : [process.execPath, [script, ...args]];
}

async function main(dir: string, host: string): Promise<void> {
  const listen = [`/ip4/${host}/udp/0/webrtc-direct`];
  const hashes: string[] = [];
  let got: unknown;
  for (let i = 0; i < 2; i++) {
    const db = await open({ path: dir, network: { space: "identity-webrtc", listen } });
    try {
      const addr = db.network!.addrs().find((a) => a.includes("/webrtc-direct/"));
      if (!addr) throw new Error(`no /webrtc-direct address among ${db.network!.addrs().join(" ")}`);
      hashes.push(/\/certhash\/([^/]+)/.exec(addr)![1]);
      if (i === 1) {
        // The stored certificate serves DTLS: a peer reaches the node over it.
        const peer = await open({
          storage: "memory",
          network: { space: "identity-webrtc", bootstrap: [addr] },
        });
        try {
          await db.put("greeting", { text: "hi" });
          for (let t = 0; t < 200 && (await peer.get("greeting")) === undefined; t++) {
            await new Promise((r) => setTimeout(r, 50));
          }
          got = await peer.get("greeting");
        } finally {
          await peer.close();
        }
      }
    } finally {
      await db.close();
    }
  }
  console.log(JSON.stringify({ hashes, got }));
}

if (import.meta.main) {
  const [dir, host] = process.argv.slice(2).filter((a) => !a.endsWith(".ts"));
  main(dir, host).then(() => process.exit(0), (e) => {
    console.error(e);
    process.exit(1);
  });
}
