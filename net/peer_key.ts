/**
 * The libp2p key of an identity: a replica with an identity
 * (core/trust/identity.ts) is the same Ed25519 key on the network, so its
 * peer id is its public key's and stays the same across restarts. The only
 * file outside `net/` callers need for peer ids: they get plain bytes and
 * strings, no libp2p type.
 *
 * @module
 */
import { privateKeyFromRaw, privateKeyToProtobuf, publicKeyFromRaw } from "@libp2p/crypto/keys";
import { peerIdFromPublicKey } from "@libp2p/peer-id";
import { type Identity, identitySecret } from "../core/trust/identity.ts";
import type { TransportKey } from "../runtime/browser_identity.ts";

/**
 * The libp2p private key (protobuf encoding, as `NetNodeOptions.privateKey`
 * takes it) of `identity`: its own, or, when its secret cannot be read (a
 * browser's non-extractable key), the transport key it carries
 * (runtime/browser_identity.ts `TransportKey`); `undefined` when it has
 * neither (a signer made elsewhere, which only signs): the node then gets a
 * new key.
 */
export function peerKeyOf(identity: Identity): Uint8Array | undefined {
  let seed: Uint8Array, publicKey = identity.publicKey;
  try {
    seed = identitySecret(identity);
  } catch {
    const transport = (identity as { readonly transportKey?: TransportKey }).transportKey;
    if (transport === undefined) return undefined;
    seed = transport.seed;
    publicKey = transport.publicKey;
  }
  const raw = new Uint8Array(64);
  raw.set(seed);
  raw.set(publicKey, 32);
  seed.fill(0);
  try {
    return privateKeyToProtobuf(privateKeyFromRaw(raw));
  } finally {
    raw.fill(0);
  }
}

/** The libp2p peer id (`12D3KooW…`) of an Ed25519 public key (32 bytes). */
export function peerIdOf(publicKey: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString();
}
