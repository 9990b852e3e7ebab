/**
 * The `codec` suite: why Lattice's MessagePack is hand-written. A batch of
 * 10k ops, as peers send them, is encoded and decoded by Lattice's op codec
 * (`core/op.ts` over `core/msgpack.ts`) and by msgpackr, side by side.
 *
 * msgpackr runs with the options closest to Lattice's needs: plain maps, no
 * record or string-bundling extensions (`useRecords: false`,
 * `bundleStrings: false`), `mapsAsObjects`, `variableMapSize` (fixmap for
 * small maps, as MessagePack canonical form wants), 64-bit integers as
 * numbers. It packs the same tuple layout (`[1, [soul, field, value, state,
 * actor], ...]`, state and actor as 8-byte bins), so both sides carry the
 * same data; setup checks that each side decodes the other's bytes to the
 * same tree, and notes where the bytes differ and what msgpackr accepts that
 * Lattice rejects (docs/ARCHITECTURE.md, "Why the codec is hand-written").
 *
 * Impls: `lattice` is the real path (`encodeOps`; `decodeOps`, checked Op
 * objects); `lattice-records` is `decodeOpRecords`, what `applyOps(bytes)`
 * runs; `lattice-tree` is msgpack.ts's general `decode` (a checked tree, the
 * job msgpackr's `unpack` does unchecked); `msgpackr` packs tuples built from
 * the ops (hex states to bins by a lookup loop, as `encodeOps` does inside) and unpacks to a
 * tree; `msgpackr-tuples` packs prebuilt tuples (the codec alone);
 * `msgpackr+ops` unpacks and builds Op objects, without any check.
 *
 * Run: `deno task bench codec` or `bun scripts/bench.ts codec`.
 *
 * @module
 */
import { Packr, Unpackr } from "msgpackr";
import { formatHlc } from "../core/clock.ts";
import { decode, encode, type MsgValue } from "../core/msgpack.ts";
import { bytesToHex64, decodeOpRecords, decodeOps, encodeOps, hex64ToBytes, type Op } from "../core/op.ts";
import type { Value } from "../core/value.ts";
import type { BenchSetup, BenchSuite } from "../scripts/bench.ts";
import { prng } from "./_prng.ts";

/** Ops in the batch. */
const OPS = 10_000;
/** Fields per node, so souls repeat as in a real batch. */
const FIELDS = 4;
/** Seed of the inputs. */
const SEED = 0xc0dec;

/** msgpackr's options closest to what Lattice needs (see the module doc). */
export const MSGPACKR_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  bundleStrings: false,
  int64AsType: "number",
} as const;

/** A batch as a peer sends it: nodes of four fields (name, count, flag, timestamp or score), three writers. */
function makeOps(n: number): Op[] {
  const next = prng(SEED);
  const actors = ["00000000000000a1", "00000000000000b2", "00000000000000c3"];
  const base = 1_700_000_000_000;
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const node = Math.floor(i / FIELDS), f = i % FIELDS;
    const r = next();
    const value: Value = f === 0
      ? `node ${node}`
      : f === 1
      ? r % 100_000
      : f === 2
      ? r % 2 === 0
      : r % 2 === 0
      ? base + (r % 86_400_000) // a millisecond timestamp: above 2^32
      : (r % 10_000) / 100;
    ops.push({
      soul: `n/${node.toString().padStart(6, "0")}`,
      field: ["name", "count", "ok", "at"][f],
      value,
      state: formatHlc(base + i, i % 3),
      actor: actors[node % actors.length],
    });
  }
  return ops;
}

type Tuple = [string, string, MsgValue, Uint8Array, Uint8Array];

/** Value of each hex digit's char code (lowercase, as states and actors are written). */
const NIBBLE = new Uint8Array(128);
for (let i = 0; i < 16; i++) NIBBLE["0123456789abcdef".charCodeAt(i)] = i;

/** 16 hex digits → 8 bytes, as fast as a loop goes (the bench's own, so msgpackr's side is not slowed by it). */
function hexToBin8(hex: string): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) {
    out[i] = (NIBBLE[hex.charCodeAt(2 * i)] << 4) | NIBBLE[hex.charCodeAt(2 * i + 1)];
  }
  return out;
}

/** The op batch layout of `encodeOps`, as plain values msgpackr can pack. */
function toTuples(ops: readonly Op[]): [number, ...Tuple[]] {
  const out: [number, ...Tuple[]] = [1];
  for (const op of ops) {
    out.push([op.soul, op.field, op.value as MsgValue, hexToBin8(op.state), hexToBin8(op.actor)]);
  }
  return out;
}

/** Op objects from a msgpackr tree, as `decodeOps` returns them, without any of its checks. */
function fromTuples(root: unknown[]): Op[] {
  const ops: Op[] = new Array(root.length - 1);
  for (let i = 1; i < root.length; i++) {
    const t = root[i] as Tuple;
    ops[i - 1] = {
      soul: t[0],
      field: t[1],
      value: t[2] as Value,
      state: bytesToHex64(t[3]),
      actor: bytesToHex64(t[4]),
    };
  }
  return ops;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** What a decoder makes of `bytes`: its value as JSON, or its error. */
function outcome(run: () => unknown): string {
  try {
    const v = run();
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      const own = Object.getOwnPropertyNames(v);
      return `accepts: keys ${JSON.stringify(own)}`;
    }
    return `accepts: ${typeof v === "string" ? JSON.stringify(v) : String(v)}`;
  } catch (e) {
    return `rejects (${(e as Error).name}: ${(e as Error).message})`;
  }
}

/** Hostile or non-canonical inputs, and what each decoder does with them: the strictness notes. */
function strictnessNotes(unpackr: Unpackr, packr: Packr): string[] {
  const utf8 = (s: string) => [...new TextEncoder().encode(s)];
  const probes: [string, Uint8Array][] = [
    ["nesting 40 deep", new Uint8Array([...new Array(40).fill(0x91), 0xc0])],
    ["nesting 200k deep", new Uint8Array([...new Array(200_000).fill(0x91), 0xc0])],
    ["map key __proto__", new Uint8Array([0x81, 0xa9, ...utf8("__proto__"), 0x01])],
    ["duplicate map key", new Uint8Array([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02])],
    ["integer map key", new Uint8Array([0x81, 0x01, 0x02])],
    ["invalid UTF-8", new Uint8Array([0xa1, 0xff])],
    ["uint64 2^60", new Uint8Array([0xcf, 0x10, 0, 0, 0, 0, 0, 0, 0])],
    ["ext type 0x72 (msgpackr's record extension)", new Uint8Array([0xd4, 0x72, 0x40])],
    ["ext type 5", new Uint8Array([0xd4, 0x05, 0x00])],
  ];
  const notes = probes.map(([what, bytes]) =>
    `${what}: msgpackr ${outcome(() => unpackr.unpack(bytes))}; lattice ${outcome(() => decode(bytes))}`
  );
  const canon: [string, number][] = [["-0", -0], ["2^32", 2 ** 32], ["1.7e12 (a ms timestamp)", 1.7e12], [
    "-(2^40)",
    -(2 ** 40),
  ]];
  for (const [what, v] of canon) {
    notes.push(`${what} encodes as: msgpackr ${hex(packr.pack(v))}; lattice ${hex(encode(v))}`);
  }
  return notes;
}

async function setup(): Promise<BenchSetup> {
  const ops = makeOps(OPS);
  const packr = new Packr(MSGPACKR_OPTIONS);
  const unpackr = new Unpackr(MSGPACKR_OPTIONS);
  const wire = encodeOps(ops);
  const tuples = toTuples(ops);
  if (ops.some((op) => hex(hexToBin8(op.state)) !== hex(hex64ToBytes(op.state)))) {
    throw new Error("hexToBin8 disagrees with hex64ToBytes");
  }
  const theirs = packr.pack(tuples);

  // Same data both ways: each decodes the other's bytes to the same tree.
  const same = (a: unknown, b: unknown) => JSON.stringify(a, jsonBytes) === JSON.stringify(b, jsonBytes);
  if (!same(unpackr.unpack(wire), decode(wire)) || !same(decode(theirs), unpackr.unpack(theirs))) {
    throw new Error("msgpackr and Lattice decode the batch to different trees");
  }
  if (!same(fromTuples(unpackr.unpack(theirs)), decodeOps(wire))) {
    throw new Error("msgpackr+ops does not rebuild the ops decodeOps returns");
  }
  let differ = 0;
  for (let i = 0; i < ops.length; i++) {
    if (hex(encode(ops[i].value as MsgValue)) !== hex(packr.pack(ops[i].value))) differ++;
  }

  const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  return {
    cases: [
      {
        name: `encode ${OPS / 1000}k ops`,
        subject: "lattice",
        impls: {
          lattice: () => encodeOps(ops),
          msgpackr: () => packr.pack(toTuples(ops)),
          "msgpackr-tuples": () => packr.pack(tuples),
        },
      },
      {
        name: `decode ${OPS / 1000}k ops`,
        subject: "lattice",
        impls: {
          lattice: () => decodeOps(wire),
          "lattice-records": () => decodeOpRecords(wire),
          "lattice-tree": () => decode(wire, { maxBytes: 64 * 1024 * 1024 }),
          msgpackr: () => unpackr.unpack(wire),
          "msgpackr+ops": () => fromTuples(unpackr.unpack(wire)),
        },
      },
    ],
    notes: [
      `batch: ${OPS} ops, ${kb(wire.length)} from encodeOps, ${kb(theirs.length)} from msgpackr; ` +
      `${differ} of ${OPS} values encode to other bytes (integers >= 2^32 as float64 in msgpackr)`,
      ...strictnessNotes(unpackr, packr),
      `msgpackr options: ${JSON.stringify(MSGPACKR_OPTIONS)}; inputs from seed 0x${SEED.toString(16)}`,
    ],
  };
}

/** JSON.stringify replacer that writes byte arrays as hex, so trees compare by content. */
function jsonBytes(_key: string, v: unknown): unknown {
  return v instanceof Uint8Array ? `bin:${hex(v)}` : v;
}

/** The codec suite. */
export const suite: BenchSuite = {
  description: "Op batch codec: core/msgpack.ts (encodeOps/decodeOps) beside msgpackr",
  setup,
};
