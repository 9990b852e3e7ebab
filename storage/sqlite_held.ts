/**
 * The SQLite engine's reads over many nodes — `list` (live souls in order),
 * `changes` (nodes in seq order) and what the journal changes of the live
 * count — as they are while a full disk keeps commits journaled that could
 * not be folded: then the journaled souls, held in memory, are merged into
 * what SQLite answers. Normally everything journaled is folded first, and
 * these reads are SQLite's alone (storage/sqlite.ts).
 *
 * @module
 */
import { compareCodePoints } from "../core/order.ts";
import { isTombstone } from "../core/value_encoding.ts";
import { decodeBody } from "./node_body.ts";
import { overlay } from "./memtable.ts";
import type { Journaled } from "./sqlite_journaled.ts";
import type { NodeTable } from "./sqlite_nodes.ts";
import { text } from "./sqlite_statements.ts";
import type { ChangesPage, StoredRecord } from "../core/store.ts";

/**
 * What the journaled records change of the number of live nodes SQLite
 * holds. Whether a journaled node's SQLite body has a live field is
 * remembered until nodes are written (`NodeTable.live`), so a count asked
 * again and again while writes come in costs map lookups per journaled
 * node, not SQLite reads.
 */
export function heldLiveDelta(j: Journaled, nodes: NodeTable): number {
  const frozen = j.frozen?.mem.nodes, active = j.active.nodes;
  let d = 0;
  for (const map of [frozen, active]) {
    if (map === undefined) continue;
    for (const soul of map.keys()) {
      if (map === active && frozen?.has(soul)) continue; // done with the frozen ones
      const stored = nodes.live(soul);
      d += Number(heldSoulLive(j, nodes, soul, stored)) - Number(stored);
    }
  }
  return d;
}

/**
 * Whether journaled node `soul` has a live field once its journaled records
 * are laid over SQLite's (`stored`: whether SQLite's body has one).
 */
function heldSoulLive(
  j: Journaled,
  nodes: NodeTable,
  soul: string,
  stored: boolean = nodes.live(soul),
): boolean {
  const fz = j.frozen?.mem.nodes.get(soul), ac = j.active.nodes.get(soul);
  if (heldLive(fz, ac)) return true;
  if (!stored) return false;
  // Every journaled field is a tombstone: is any other stored field live?
  return nodes.node(soul).some((r) =>
    !isTombstone(r.value) && ac?.has(r.field) !== true && fz?.has(r.field) !== true
  );
}

/** Souls journaled and not folded yet (the disk being full), with the seq of their last change. */
function heldSeqs(j: Journaled): Map<string, number> {
  const out = new Map<string, number>();
  for (const map of [j.frozen?.mem.nodes, j.active.nodes]) {
    if (map === undefined) continue;
    for (const [soul, fields] of map) {
      let seq = out.get(soul) ?? 0;
      for (const r of fields.values()) if (r.seq > seq) seq = r.seq;
      out.set(soul, seq);
    }
  }
  return out;
}

/**
 * `souls` (a page of SQLite's, in order) with the journaled souls in the
 * same range (after or from `from`, before `end`) merged in, the live ones
 * only: the first `n` (all when `n` < 0). For `list` while the disk is too
 * full to fold; the page it is given must hold `n` plus the number of held
 * souls, as held ones that died may drop out of it.
 */
export function withHeld(
  j: Journaled,
  nodes: NodeTable,
  souls: string[],
  from: string,
  inclusive: boolean,
  end: string | undefined,
  n: number,
): string[] {
  const all = new Set(souls);
  const held = new Set<string>();
  for (const map of [j.frozen?.mem.nodes, j.active.nodes]) {
    if (map === undefined) continue;
    for (const soul of map.keys()) {
      const c = compareCodePoints(soul, from);
      if ((inclusive ? c >= 0 : c > 0) && (end === undefined || compareCodePoints(soul, end) < 0)) {
        held.add(soul);
      }
    }
  }
  // `list` gives live souls only: a journaled node is listed by what its journaled records leave live.
  for (const soul of held) {
    if (heldSoulLive(j, nodes, soul)) all.add(soul);
    else all.delete(soul);
  }
  const out = [...all].sort(compareCodePoints);
  return n < 0 ? out : out.slice(0, n);
}

/** How many journaled souls are held in memory (the disk being too full to fold them). */
export function heldCount(j: Journaled): number {
  return (j.frozen?.mem.nodes.size ?? 0) + j.active.nodes.size;
}

/**
 * `changes` while the disk is too full to fold: SQLite's nodes in
 * seq order, less those with journaled records, then those, in the order
 * of their last journaled change (every journaled record is newer than
 * anything SQLite holds of a node with none). `last`: the store's last seq.
 */
export function changesHeld(
  j: Journaled,
  nodes: NodeTable,
  last: number,
  after: number,
  from: number,
  limit: number,
): ChangesPage {
  const held = heldSeqs(j);
  const records: StoredRecord[] = [];
  const chunk = changesChunk(limit);
  for (let scan = from;;) {
    const rows = nodes.s.changes.all(scan, chunk);
    for (const row of rows) {
      const soul = text(row, "soul", "soul_raw");
      scan = row.seq as number;
      if (held.has(soul)) continue;
      for (const r of decodeBody(soul, row.body as Uint8Array)) if (r.seq > after) records.push(r);
      from = scan;
      if (records.length >= limit) return { records, cursor: from, seq: last };
    }
    if (rows.length < chunk) break;
  }
  const frozen = j.frozen?.mem.nodes, active = j.active.nodes;
  const order = [...held].filter(([, seq]) => seq > from).sort((a, b) => a[1] - b[1]);
  for (const [soul, seq] of order) {
    const node = overlay(nodes.node(soul), [frozen?.get(soul), active.get(soul)]);
    for (const r of node) if (r.seq > after) records.push(r);
    if (records.length >= limit) return { records, cursor: seq, seq: last };
  }
  return { records, seq: last };
}

/**
 * Whether a journaled node's latest fields (`active` over `frozen`) hold a
 * live value.
 */
function heldLive(
  frozen: ReadonlyMap<string, StoredRecord> | undefined,
  active: ReadonlyMap<string, StoredRecord> | undefined,
): boolean {
  if (active !== undefined) { for (const r of active.values()) if (!isTombstone(r.value)) return true; }
  if (frozen !== undefined) {
    for (const [field, r] of frozen) if (!isTombstone(r.value) && active?.has(field) !== true) return true;
  }
  return false;
}

/** Rows asked per query of the `changes` walk for a page of `limit` records. */
export function changesChunk(limit: number): number {
  return Math.max(16, Math.min(1024, limit === Infinity ? 1024 : Math.ceil(limit / 4)));
}
