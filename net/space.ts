/**
 * The names a space has on the network: its gossip topic and its DHT
 * provider key. Both are hashes of the space's UTF-8 name, so any libp2p
 * peer that knows the name finds its members, and the name itself is never
 * sent (docs/PROTOCOL.md).
 *
 * @module
 */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";

/** The raw multicodec (0x55): a space's CID names bytes, not an IPLD block. */
const RAW_CODEC = 0x55;

/**
 * The gossip topic of a space.
 *
 * @example
 * ```ts
 * const t = await spaceTopic("default");
 * console.assert(t.startsWith("/lattice/1/space/"));
 * ```
 */
export async function spaceTopic(space: string): Promise<string> {
  const d = await sha256.digest(new TextEncoder().encode(space));
  return "/lattice/1/space/" + Array.from(d.digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The DHT provider key of a space: CID v1, raw codec, sha2-256 of the UTF-8 name.
 *
 * @example
 * ```ts
 * console.assert((await spaceCid("default")).startsWith("bafkrei"));
 * ```
 */
export async function spaceCid(space: string): Promise<string> {
  return (await spaceCidObject(space)).toString();
}

/** {@link spaceCid} as the `CID` object kad-dht takes. */
export async function spaceCidObject(space: string): Promise<CID> {
  return CID.createV1(RAW_CODEC, await sha256.digest(new TextEncoder().encode(space)));
}
