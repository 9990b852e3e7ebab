/**
 * Range-based set reconciliation (Meyer, "Range-Based Set Reconciliation";
 * negentropy) over the item ids of an {@link IndexSnapshot}: one side's
 * ranges are answered against the other's snapshot, matching ranges dropped,
 * mismatched ones split into fingerprinted sub-ranges or listed as ids, and
 * a range that differs by exactly one item peeled (the difference of the two
 * sums is that item's id). Bytes exchanged grow with the difference, not
 * with the dataset.
 *
 * @module
 */
import { FINGERPRINT_BYTES, type IndexSnapshot } from "./index_snapshot.ts";
import { ID_BYTES } from "./item_id.ts";
import { compareBounds, type SyncRange } from "./messages.ts";
import { MODE_FINGERPRINT, MODE_IDS, MODE_PEEL, MODE_SKIP } from "./protocol.ts";

/** How many sub-ranges a mismatched range is split into. */
const BUCKETS = 8;
/** A mismatched range with at most this many local items is answered with its ids. */
const ID_LIST_MAX = 8;

const ZERO = new Uint8Array(0);

interface Reply {
  ranges: SyncRange[];
  /** Snapshot positions of records the peer lacks. */
  send: number[];
  /** Ids the peer holds and this side lacks, 16 bytes each. */
  need: Uint8Array[];
}

/** Builds reply ranges; fingerprints are filled in one batch at the end. */
class ReplyBuilder {
  readonly ranges: { upper: Uint8Array | null; mode: SyncRange["mode"]; payload?: Uint8Array }[] = [];
  readonly #fp: { at: number; start: number; end: number }[] = [];
  #lastUpper: Uint8Array = ZERO;
  bytes = 0;

  constructor(readonly snap: IndexSnapshot) {}

  /** Describes this side's items `[a, b)` of the range `[lower, upper)`: their ids, or split fingerprints. */
  describe(lower: Uint8Array, upper: Uint8Array | null, a: number, b: number): void {
    if (compareBounds(lower, this.#lastUpper) !== 0) this.#push(lower, MODE_SKIP);
    const c = b - a;
    if (c <= ID_LIST_MAX) {
      const ids = new Uint8Array(ID_BYTES * c);
      this.snap.copyIds(a, b, ids, 0);
      this.#push(upper, MODE_IDS, ids);
      return;
    }
    const buckets = Math.min(BUCKETS, c);
    for (let k = 0; k < buckets; k++) {
      const s = a + Math.floor((c * k) / buckets), e = a + Math.floor((c * (k + 1)) / buckets);
      const up = k === buckets - 1 ? upper : this.#boundBetween(e - 1, e);
      this.#fp.push({ at: this.ranges.length, start: s, end: e });
      this.#push(up, MODE_FINGERPRINT, new Uint8Array(FINGERPRINT_BYTES));
    }
  }

  /** Asks the peer for the one item `id` it is believed to hold more in `[lower, upper)`. */
  peel(lower: Uint8Array, upper: Uint8Array | null, id: Uint8Array): void {
    if (compareBounds(lower, this.#lastUpper) !== 0) this.#push(lower, MODE_SKIP);
    this.#push(upper, MODE_PEEL, id);
  }

  /** The shortest prefix of item `j`'s id that sorts above item `i`'s id. */
  #boundBetween(i: number, j: number): Uint8Array {
    const x = this.snap.id(i), y = this.snap.id(j);
    let n = 0;
    while (n < ID_BYTES - 1 && x[n] === y[n]) n++;
    return y.slice(0, n + 1);
  }

  #push(upper: Uint8Array | null, mode: SyncRange["mode"], payload?: Uint8Array): void {
    this.ranges.push(mode === MODE_SKIP ? { upper, mode } : { upper, mode, payload });
    this.bytes += 6 + (upper?.length ?? 0) +
      (payload?.length ?? 0);
    this.#lastUpper = upper ?? ZERO;
  }

  finish(): SyncRange[] {
    if (this.#fp.length > 0) {
      const fps = this.snap.fingerprints(this.#fp.map((f) => f.start), this.#fp.map((f) => f.end));
      this.#fp.forEach((f, k) => {
        this.ranges[f.at].payload = fps.subarray(FINGERPRINT_BYTES * k, FINGERPRINT_BYTES * (k + 1));
      });
    }
    // A trailing skip says nothing.
    while (this.ranges.length > 0 && this.ranges[this.ranges.length - 1].mode === MODE_SKIP) {
      this.ranges.pop();
    }
    return this.ranges;
  }
}

function countOf(fp: Uint8Array): number {
  return ((fp[16] << 24) | (fp[17] << 16) | (fp[18] << 8) | fp[19]) >>> 0;
}

/** The sum part of `a` minus that of `b`, modulo 2^128: an id. */
function subtract(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(ID_BYTES);
  let borrow = 0;
  for (let i = ID_BYTES - 1; i >= 0; i--) {
    const d = a[i] - b[i] - borrow;
    out[i] = d & 0xff;
    borrow = d < 0 ? 1 : 0;
  }
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The first message of a session: the whole id space. */
export function initialRanges(snap: IndexSnapshot): SyncRange[] {
  if (snap.size <= ID_LIST_MAX) {
    const ids = new Uint8Array(ID_BYTES * snap.size);
    snap.copyIds(0, snap.size, ids, 0);
    return [{ upper: null, mode: MODE_IDS, payload: ids }];
  }
  return [{ upper: null, mode: MODE_FINGERPRINT, payload: snap.fingerprints([0], [snap.size]) }];
}

/**
 * Answers a peer's ranges against `snap`: matching ranges are dropped,
 * mismatched ones are split or listed, and id lists are compared (what the
 * peer lacks goes to `send`, what it has and this side lacks to `need`).
 * When the reply grows beyond `budget` bytes, the rest of the id space is
 * described as one range, to be continued in the next round.
 */
export function reconcile(snap: IndexSnapshot, ranges: readonly SyncRange[], budget: number): Reply {
  const reply: Reply = { ranges: [], send: [], need: [] };
  const out = new ReplyBuilder(snap);
  // Our fingerprints of every fingerprint range, in one hashing batch.
  const bounds: number[] = [0];
  for (const r of ranges) bounds.push(snap.lowerBound(r.upper));
  const fpAt: number[] = [], starts: number[] = [], ends: number[] = [];
  ranges.forEach((r, i) => {
    if (r.mode === MODE_FINGERPRINT) {
      fpAt[i] = starts.length;
      starts.push(bounds[i]);
      ends.push(bounds[i + 1]);
    }
  });
  const ours = snap.fingerprints(starts, ends);
  let lower: Uint8Array = ZERO, needBytes = 0;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i], a = bounds[i], b = bounds[i + 1];
    if (out.bytes + needBytes > budget) {
      out.describe(lower, null, a, snap.size);
      break;
    }
    if (r.mode === MODE_FINGERPRINT) {
      const k = fpAt[i];
      const mine = ours.subarray(FINGERPRINT_BYTES * k, FINGERPRINT_BYTES * (k + 1));
      const theirs = r.payload as Uint8Array;
      if (equalBytes(mine, theirs)) {
        // the range matches
      } else if (countOf(mine) === countOf(theirs) + 1) {
        // We may hold exactly one item more: our sum minus theirs is its id.
        const p = snap.find(subtract(mine, theirs));
        if (p >= a && p < b) reply.send.push(p);
        else out.describe(lower, r.upper, a, b);
      } else if (countOf(theirs) === countOf(mine) + 1) {
        // They may hold exactly one item more: ask for it, they check it.
        const id = subtract(theirs, mine);
        const inRange = compareBounds(id, lower) >= 0 && (r.upper === null || compareBounds(id, r.upper) < 0);
        if (inRange && snap.find(id) < 0) out.peel(lower, r.upper, id);
        else out.describe(lower, r.upper, a, b);
      } else out.describe(lower, r.upper, a, b);
    } else if (r.mode === MODE_PEEL) {
      const p = snap.find(r.payload as Uint8Array);
      if (p >= a && p < b) reply.send.push(p); // without it our range equals theirs
      else out.describe(lower, r.upper, a, b);
    } else if (r.mode === MODE_IDS) {
      const theirs = r.payload as Uint8Array;
      let j = 0;
      const n = theirs.length / ID_BYTES;
      for (let p = a; p < b || j < n;) {
        const c = p >= b ? 1 : j >= n ? -1 : compareBounds(snap.id(p), theirs.subarray(ID_BYTES * j));
        if (c < 0) reply.send.push(p++);
        else if (c > 0) {
          reply.need.push(theirs.subarray(ID_BYTES * j, ID_BYTES * ++j));
          needBytes += ID_BYTES;
        } else (p++, j++);
      }
    }
    lower = r.upper ?? ZERO;
  }
  reply.ranges = out.finish();
  return reply;
}
