// @server-only: a child process of trust_network.test.ts
/**
 * Run as `deno run -A tests/_manifest_dht_child.ts` or `bun
 * tests/_manifest_dht_child.ts`: two replicas of one space on 127.0.0.1
 * (sync rounds every 300 ms); both adopt the owner's manifest 1, the owner
 * alone adopts manifest 2, and the member must adopt it from the DHT.
 * Prints one JSON line: `{ "ms": time to adopt, "writers": [...],
 * "junk": records kept under a /lattice/ key that is no manifest's }`.
 *
 * A process of its own: in the one process of a whole `bun test` run the
 * DHT case sometimes never converged within the wait (it always does alone),
 * and a fresh process keeps it about this node pair only.
 *
 * Not a test file (no `.test.` in its name).
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createIdentity, createLogger, type Identity, loadKernels } from "../mod.ts";
import { Database } from "../core/database.ts";
import { startNetwork } from "../net/network.ts";
import { openStore } from "../storage/open.ts";
import { runtimeName } from "../runtime/detect.ts";

/** The command that runs this script on the current runtime. */
export function manifestDhtCommand(): [string, string[]] {
  const script = fileURLToPath(import.meta.url);
  return runtimeName() === "deno" ? [process.execPath, ["run", "-A", script]] : [process.execPath, [script]];
}

const SPACE = "trust-wire-dht";

async function replica(bootstrap: string[], identity?: Identity) {
  const store = await openStore({ storage: "memory" });
  const db = await Database.create({ store, kernels: await loadKernels(), space: SPACE, identity });
  const net = await startNetwork(db, {
    space: SPACE,
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap,
    syncInterval: 300,
    logger: createLogger({ level: "error" }),
  });
  return { db, net };
}

async function main(): Promise<void> {
  const owner = await createIdentity(), writer = await createIdentity();
  const o = await replica([], owner);
  const m = await replica([o.net.addrs()[0]]);
  try {
    const first = await o.db.trust.createManifest({ writers: [owner.id], seq: 1 });
    for (const r of [o, m]) {
      if (!await r.db.trust.useManifest(first)) throw new Error("manifest 1 not adopted");
    }
    const second = await o.db.trust.createManifest({ writers: [owner.id, writer.id], seq: 2 });
    if (!await o.db.trust.useManifest(second)) throw new Error("manifest 2 not adopted by its owner");
    const t0 = Date.now();
    while (m.db.trust.manifest?.seq !== 2) {
      if (Date.now() - t0 > 60_000) throw new Error("the member did not adopt manifest 2 within 60 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const ms = Date.now() - t0;
    const junk = new TextEncoder().encode("/lattice/space/" + "0".repeat(64));
    await m.net.node.putRecord(junk, new Uint8Array([1, 2, 3]));
    const kept = (await m.net.node.getRecords(junk)).length;
    console.log(JSON.stringify({ ms, writers: m.db.trust.manifest?.writers, junk: kept }));
  } finally {
    for (const r of [m, o]) {
      await r.net.stop();
      await r.db.close();
    }
  }
}

if (import.meta.main) {
  main().then(() => process.exit(0), (e) => {
    console.error(e);
    process.exit(1);
  });
}
