// @server-only: identity files live in database directories (node:fs)
/**
 * Persistent identities (storage/identity_file.ts, `open({ identity,
 * passphrase })` in mod.ts, net/peer_key.ts): a directory keeps one key
 * across opens (mode 0600), sealed with a passphrase when given; without it,
 * or with a wrong one, or for a corrupt file, `open` refuses with a clear
 * error and leaves the file as it is; a given identity writes under its
 * actor; the peer id is the key's, so it survives a restart.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIdentity, exportIdentity, importIdentity, isKeyActor, open } from "../mod.ts";
import {
  encryptIdentity,
  IDENTITY_FILE,
  inspectIdentityFile,
  loadOrCreateIdentity,
  readIdentityFile,
  SCRYPT_N,
  writeIdentityFile,
} from "../storage/identity_file.ts";
import { peerIdOf } from "../net/peer_key.ts";
import {
  CERT_RENEW_MS,
  createWebRtcCertificate,
  loadOrCreateWebRtcCertificate,
  WEBRTC_CERT_FILE,
} from "../net/webrtc_cert.ts";
import { systemWorld } from "../core/world.ts";
import { missingInterface, WEBRTC_HOST } from "./_peer_fixture.ts";
import { webRtcCertCommand } from "./_webrtc_cert_child.ts";
import { run } from "./_procs.ts";
import { networkInterfaces } from "node:os";

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lattice-identity-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SLOW = { timeout: 60_000 };

describe("identity file", () => {
  it("the first open of a directory creates identity.json (mode 0600); later opens keep it", async () => {
    await withDir(async (dir) => {
      const a = await open({ path: dir });
      const id = a.identity!.id, actor = a.actor;
      await a.close();
      assert.equal(statSync(join(dir, IDENTITY_FILE)).mode & 0o777, 0o600);
      assert.equal(actor, a.identity!.actor);
      assert.ok(isKeyActor(actor));
      const file = JSON.parse(readFileSync(join(dir, IDENTITY_FILE), "utf8"));
      assert.equal(file.type, "lattice-identity");
      const b = await open({ path: dir });
      assert.equal(b.identity!.id, id);
      assert.equal(b.actor, actor);
      await b.close();
    });
  });

  it("memory storage has no identity (keyless, as before)", async () => {
    const db = await open({ storage: "memory" });
    assert.equal(db.identity, undefined);
    assert.ok(!isKeyActor(db.actor));
    await db.close();
  });

  it("a given identity writes under its actor and leaves the directory's file alone", async () => {
    const me = await createIdentity();
    for (const given of [me, exportIdentity(me), JSON.stringify(exportIdentity(me))]) {
      await withDir(async (dir) => {
        const db = await open({ path: dir, identity: given });
        assert.equal(db.identity!.id, me.id);
        assert.equal(db.actor, me.actor);
        await db.put("alice", { name: "Alice" });
        const { ops } = await db.exportOps();
        assert.ok(ops.length > 0);
        for (const op of ops) assert.equal(op.actor, me.actor);
        await db.close();
        assert.equal(await inspectIdentityFile(dir), undefined);
      });
    }
    const mem = await open({ storage: "memory", identity: exportIdentity(me) });
    assert.equal(mem.actor, me.actor);
    await mem.close();
  });

  it("a malformed identity is a TypeError before anything opens", async () => {
    await withDir(async (dir) => {
      await assert.rejects(open({ path: dir, identity: '{"type":"x"}' }), TypeError);
      await assert.rejects(open({ path: dir, identity: "not json" }), TypeError);
      assert.equal(await inspectIdentityFile(dir), undefined);
    });
  });

  it("export → import gives the same id and actor", async () => {
    await withDir(async (dir) => {
      const db = await open({ path: dir });
      const again = await importIdentity(exportIdentity(db.identity!));
      assert.equal(again.id, db.identity!.id);
      assert.equal(again.actor, db.actor);
      await db.close();
      const fromFile = await readIdentityFile(dir);
      assert.equal(fromFile!.id, again.id);
    });
  });

  it(
    "with a passphrase the key is sealed; without it, or with a wrong one, open refuses and the directory is free",
    SLOW,
    async () => {
      await withDir(async (dir) => {
        const a = await open({ path: dir, passphrase: "correct horse" });
        const id = a.identity!.id;
        await a.close();
        const path = join(dir, IDENTITY_FILE);
        const before = readFileSync(path);
        const sealed = JSON.parse(before.toString("utf8"));
        assert.equal(sealed.type, "lattice-identity-encrypted");
        assert.deepEqual(
          { name: sealed.kdf.name, N: sealed.kdf.N, cipher: sealed.cipher },
          { name: "scrypt", N: SCRYPT_N, cipher: "AES-GCM" },
        );
        assert.ok(!before.toString("utf8").includes(exportIdentity(a.identity!).secretKey));
        assert.equal(statSync(path).mode & 0o777, 0o600);
        assert.equal((await inspectIdentityFile(dir))!.encrypted, true);

        await assert.rejects(
          open({ path: dir }),
          (e: Error) =>
            e.name === "IdentityFileError" && /encrypted/.test(e.message) &&
            /LATTICE_PASSPHRASE/.test(e.message),
        );
        await assert.rejects(
          open({ path: dir, passphrase: "wrong" }),
          (e: Error) =>
            e.name === "IdentityFileError" && /passphrase .* is wrong/.test(e.message) &&
            /LATTICE_PASSPHRASE/.test(e.message),
        );
        assert.deepEqual(readFileSync(path), before);
        // The refusals closed the store: the directory opens again, with the same key.
        const b = await open({ path: dir, passphrase: "correct horse" });
        assert.equal(b.identity!.id, id);
        await b.close();
      });
    },
  );

  it("a sealed file whose public key was swapped does not open", SLOW, async () => {
    await withDir(async (dir) => {
      const me = await createIdentity(), other = await createIdentity();
      const sealed = await encryptIdentity(me, "pw");
      writeFileSync(
        join(dir, IDENTITY_FILE),
        JSON.stringify({ ...sealed, publicKey: exportIdentity(other).publicKey }),
        { mode: 0o600 },
      );
      await assert.rejects(readIdentityFile(dir, "pw"), (e: Error) => e.name === "IdentityFileError");
    });
  });

  for (
    const [what, content] of [
      ["not JSON", "{ half a file"],
      ["another type", JSON.stringify({ type: "something-else" })],
      [
        "a bad secret key",
        JSON.stringify({ type: "lattice-identity", version: 1, publicKey: "AA", secretKey: "!!" }),
      ],
      [
        "an absurd scrypt cost",
        JSON.stringify({
          type: "lattice-identity-encrypted",
          version: 1,
          publicKey: "AA",
          kdf: { name: "scrypt", N: 2 ** 30, r: 8, p: 1, salt: "AA" },
          cipher: "AES-GCM",
          nonce: "AA",
          ciphertext: "AA",
        }),
      ],
    ]
  ) {
    it(`a corrupt file (${what}) is an error, and the file is left untouched`, async () => {
      await withDir(async (dir) => {
        const path = join(dir, IDENTITY_FILE);
        writeFileSync(path, content, { mode: 0o600 });
        await assert.rejects(
          open({ path: dir, passphrase: "pw" }),
          (e: Error) =>
            e.name === "IdentityFileError" && /cannot be read/.test(e.message) && e.message.includes(path),
        );
        assert.equal(readFileSync(path, "utf8"), content);
      });
    });
  }

  it("writeIdentityFile creates only where there is none, unless replace", async () => {
    await withDir(async (dir) => {
      const a = await createIdentity(), b = await createIdentity();
      assert.equal(await writeIdentityFile(dir, a), true);
      assert.equal(await writeIdentityFile(dir, b), false);
      assert.equal((await readIdentityFile(dir))!.id, a.id);
      assert.equal(await writeIdentityFile(dir, b, { replace: true }), true);
      assert.equal((await readIdentityFile(dir))!.id, b.id);
      assert.equal(statSync(join(dir, IDENTITY_FILE)).mode & 0o777, 0o600);
      const both = await Promise.all([loadOrCreateIdentity(dir), loadOrCreateIdentity(dir)]);
      assert.equal(both[0].identity.id, b.id);
      assert.equal(both[1].identity.id, b.id);
    });
  });
});

describe("peer id = identity key", () => {
  it("open with a network twice on one directory keeps the peer id, and it is the key's", SLOW, async () => {
    await withDir(async (dir) => {
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const db = await open({ path: dir, network: { space: "identity-test" } });
        ids.push(db.network!.peerId);
        assert.equal(db.network!.peerId, peerIdOf(db.identity!.publicKey));
        assert.ok(db.network!.addrs().every((a) => a.endsWith(`/p2p/${ids[0]}`)));
        await db.close();
      }
      assert.equal(ids[0], ids[1]);
    });
  });

  it(
    "a directory's node started later, as serve starts it, signs for the space it serves",
    SLOW,
    async () => {
      await withDir(async (dir) => {
        const { startNetwork } = await import("../net/network.ts");
        const db = await open({ path: dir, space: "identity-later" });
        const net = await startNetwork(db, { space: "identity-later", listen: [], bootstrap: [] });
        const peer = await open({
          storage: "memory",
          network: { space: "identity-later", bootstrap: net.addrs() },
        });
        try {
          await db.put("signed", { by: db.identity!.id });
          for (let t = 0; t < 200 && (await peer.get("signed")) === undefined; t++) {
            await new Promise((r) => setTimeout(r, 50));
          }
          // Signed for another space, the peer would refuse it.
          assert.deepEqual(await peer.get("signed"), { by: db.identity!.id });
        } finally {
          await peer.close();
          await net.stop();
          await db.close();
        }
      });
    },
  );

  it("a replica without an identity gets a new peer id at each open", SLOW, async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const db = await open({ storage: "memory", network: { space: "identity-test" } });
      ids.add(db.network!.peerId);
      await db.close();
    }
    assert.equal(ids.size, 2);
  });
});

describe("WebRTC-Direct certificate", () => {
  it("is a DER certificate whose hash is its certhash, valid a year", async () => {
    const cert = await createWebRtcCertificate();
    const body = cert.pem.replace(/-----[A-Z ]+-----|\n/g, "");
    const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
    assert.equal(der[0], 0x30);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
    const multihash = Uint8Array.from([0x12, 0x20, ...digest]);
    const b64 = btoa(String.fromCharCode(...multihash)).replaceAll("+", "-").replaceAll("/", "_").replace(
      /=+$/,
      "",
    );
    assert.equal(cert.certhash, "u" + b64);
    assert.match(cert.privateKey, /^-----BEGIN PRIVATE KEY-----\n/);
    const year = cert.notAfter - Date.now();
    assert.ok(year > 364 * 86400_000 && year <= 365 * 86400_000, String(year));
  });

  it("is kept in <dir>/webrtc-cert.json (0600) and replaced when about to expire or unreadable", async () => {
    await withDir(async (dir) => {
      const a = await loadOrCreateWebRtcCertificate(dir);
      assert.equal(statSync(join(dir, WEBRTC_CERT_FILE)).mode & 0o777, 0o600);
      assert.deepEqual(await loadOrCreateWebRtcCertificate(dir), a);
      const later = { ...systemWorld, now: () => a.notAfter - CERT_RENEW_MS + 1 };
      const renewed = await loadOrCreateWebRtcCertificate(dir, later);
      assert.notEqual(renewed.certhash, a.certhash);
      writeFileSync(join(dir, WEBRTC_CERT_FILE), "garbage");
      assert.notEqual((await loadOrCreateWebRtcCertificate(dir)).certhash, renewed.certhash);
    });
  });

  it(
    "a node's /webrtc-direct address keeps its certhash across restarts, and peers dial it",
    SLOW,
    async () => {
      // Like tests/browser_peer.test.ts: WebRTC skips loopback, so the test needs the interface.
      const hasHost = Object.values(networkInterfaces()).some((l) =>
        l?.some((a) => a.address === WEBRTC_HOST)
      );
      if (!hasHost) assert.fail(missingInterface());
      await withDir(async (dir) => {
        // In a process of its own (see tests/_webrtc_cert_child.ts): two opens, a peer dialing the second.
        const [cmd, args] = webRtcCertCommand([dir, WEBRTC_HOST]);
        const r = await run(cmd, args, { timeoutMs: 50_000 });
        assert.equal(r.code, 0, `the child failed:\n${r.stderr}\n${r.stdout}`);
        const { hashes, got } = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
        assert.deepEqual(got, { text: "hi" }, "a peer reached the node over its stored certificate");
        assert.equal(hashes[0], hashes[1]);
        const stored = JSON.parse(readFileSync(join(dir, WEBRTC_CERT_FILE), "utf8"));
        assert.equal(stored.certhash, hashes[0]);
      });
    },
  );
});
