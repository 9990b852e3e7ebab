/**
 * Child process of tests/mdns.test.ts, run inside a network namespace of its own whose only
 * interface is loopback with multicast switched on: two databases with `network: { mdns: true }`
 * and no bootstrap find each other and replicate; a third, in another space, is never dialed, and a
 * fourth in the same space without `mdns` is never found (mDNS is off by default).
 * Prints one JSON line with what it saw. Not a test file.
 */
import { createLogger, open } from "../mod.ts";

const logger = createLogger({ level: "silent" });
const a = await open({ storage: "memory", network: { space: "mdns-a", mdns: true, logger } });
const b = await open({ storage: "memory", network: { space: "mdns-a", mdns: true, logger } });
const other = await open({ storage: "memory", network: { space: "mdns-other", mdns: true, logger } });
const quiet = await open({ storage: "memory", network: { space: "mdns-a", logger } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await a.put("found", { by: "mdns" });
let seen: unknown;
const deadline = Date.now() + 20_000;
while (Date.now() < deadline) {
  seen = await b.get("found");
  if (seen) break;
  await sleep(50);
}
await sleep(500); // time for the other space's node to (wrongly) dial, if it were going to
const ids = (db: typeof a) => db.network!.peers().map((p) => p.id).sort();
console.log(JSON.stringify({
  seen,
  a: a.network!.peerId,
  b: b.network!.peerId,
  aPeers: ids(a),
  bPeers: ids(b),
  otherPeers: ids(other),
  quietPeers: ids(quiet),
  quietSeen: await quiet.get("found") ?? null,
}));
await Promise.all([a.close(), b.close(), other.close(), quiet.close()]);
