/**
 * A space's manifest on the DHT (core/trust/manifest.ts): a replica that
 * holds one publishes it under `/lattice/space/<hex sha256(space)>`, and
 * every replica reads the records there and adopts a newer manifest of the
 * owner it follows, before it publishes its own (`db.trust.useManifest`: the first manifest it adopted,
 * given by the application, pins the owner). Run at start and at each sync
 * round (net/network.ts).
 *
 * @module
 */
import type { Database } from "../core/database.ts";
import { manifestKey } from "../core/trust/manifest.ts";
import type { NetNode } from "./node.ts";

/**
 * One round: adopt the newer manifests found, then publish the one in force
 * (if any). Reading first matters: a DHT peer keeps the last record put under
 * a key, whichever its seq, so a member that published the manifest it held
 * before reading would overwrite the owner's newer one on the peers it reached,
 * and could read back only its own (members then adopted a new manifest only
 * when the owner's put fell between theirs and their read). Never throws.
 */
export async function syncManifest(db: Database, node: NetNode, log: (msg: string) => void): Promise<void> {
  try {
    const key = manifestKey(node.space);
    for (const bytes of await node.getRecords(key)) {
      if (await db.trust.useManifest(bytes)) {
        log(`adopted manifest seq ${db.trust.manifest?.seq} of ${node.space}`);
      }
    }
    const mine = db.trust.manifest;
    if (mine !== undefined) await node.putRecord(key, mine.bytes);
  } catch (e) {
    log(`manifest round failed: ${(e as Error).message}`);
  }
}
