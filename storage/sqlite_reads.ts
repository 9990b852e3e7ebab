/**
 * The reads of the SQLite engine: a node (from the node cache, else SQLite's
 * body with the journaled records laid over it), fields by key (a run of one
 * soul's keys at a time), live souls in order (`list`) and nodes in seq order
 * (`changes`). Point reads never fold: the journal's memtables are looked up
 * before SQLite. `list` and `changes` fold what is journaled first (cheap:
 * only what came since the last fold), so that SQLite's indexes answer them
 * alone, except while a full disk keeps records journaled
 * (storage/sqlite_held.ts).
 *
 * @module
 */
import { listStart } from "./_check.ts";
import type { NodeData } from "../core/value.ts";
import { nodeData } from "../core/value_encoding.ts";
import { overlay } from "./memtable.ts";
import { bodyData, decodeBody, findField } from "./node_body.ts";
import type { NodeCache } from "./node_cache.ts";
import { changesChunk, changesHeld, heldCount, heldLiveDelta, withHeld } from "./sqlite_held.ts";
import { isDiskFull } from "./disk_full.ts";
import type { Journaled } from "./sqlite_journaled.ts";
import type { NodeTable } from "./sqlite_nodes.ts";
import { text } from "./sqlite_statements.ts";
import type { ChangesOptions, ChangesPage, FieldKey, ListOptions, StoredRecord } from "../core/store.ts";

/** Reads over the node cache, the journaled records and SQLite's `nodes` table. */
export class NodeReads {
  readonly #nodes: NodeTable;
  readonly #j: Journaled;
  readonly #cache: NodeCache | undefined;
  /** The live count last answered, and the seq it was counted at. */
  #counted: { seq: number; n: number } | undefined;

  constructor(nodes: NodeTable, journaled: Journaled, cache: NodeCache | undefined) {
    this.#nodes = nodes;
    this.#j = journaled;
    this.#cache = cache;
  }

  /** Every stored field of `soul`, in field order (BINARY collation = UTF-8 byte order); the caller's own array. */
  node(soul: string): StoredRecord[] {
    const cache = this.#cache;
    const cached = cache?.get(soul);
    if (cached !== undefined) return cached.slice(); // callers get their own array
    let out = this.#nodes.node(soul);
    const j = this.#j;
    const frozen = j.frozen?.mem.nodes.get(soul), active = j.active.nodes.get(soul);
    if (frozen !== undefined || active !== undefined) out = overlay(out, [frozen, active]);
    if (cache?.admit(soul, out)) return out.slice();
    return out;
  }

  /**
   * The live fields of `soul` as data. A node held nowhere but in SQLite,
   * and not due to enter the cache, is decoded from its body straight to
   * data (`bodyData`): a scan of many nodes makes a tenth of the objects.
   * Anything else goes through {@link node}, cache admission included.
   */
  nodeData(soul: string): NodeData | undefined {
    const cache = this.#cache, nodes = this.#nodes, j = this.#j;
    if (
      cache?.get(soul) === undefined && !nodes.isAbsent(soul) &&
      j.frozen?.mem.nodes.get(soul) === undefined && j.active.nodes.get(soul) === undefined
    ) {
      const row = nodes.s.readBody.get(soul);
      // The doorkeeper marks the node as node()'s admission would; seen before, it is admitted there.
      if (row !== undefined && !cache?.seen(soul)) return bodyData(soul, row.body as Uint8Array);
    }
    return nodeData(this.node(soul));
  }

  /**
   * The records of `keys`. Keys are taken a run of one soul at a time (a
   * batch lists each node's fields together): the journaled, cached or
   * SQLite node is looked up once per run, and a node found nowhere answers
   * its whole run at once.
   */
  fields(keys: readonly FieldKey[]): (StoredRecord | undefined)[] {
    const j = this.#j;
    const held = j.active.count > 0 ? j.active.nodes : undefined;
    const folding = j.frozen?.mem.nodes;
    const cache = this.#cache;
    const out: (StoredRecord | undefined)[] = new Array(keys.length);
    // Nodes found in SQLite in this call, for a soul that comes back after another.
    let read: Map<string, StoredRecord[]> | undefined;
    for (let i = 0; i < keys.length;) {
      const soul = keys[i].soul;
      let end = i + 1;
      while (end < keys.length && keys[end].soul === soul) end++;
      const journaled = held?.get(soul), frozen = folding?.get(soul);
      let node = cache?.get(soul);
      for (let k = i; k < end; k++) {
        const field = keys[k].field;
        const r = journaled?.get(field) ?? frozen?.get(field);
        if (r !== undefined) {
          out[k] = r;
          continue;
        }
        if (node === undefined) {
          node = read?.get(soul);
          if (node === undefined) {
            node = this.#nodes.nodeIn(soul); // a miss is remembered there
            if (node.length > 0 && end - i < keys.length) (read ??= new Map()).set(soul, node);
          }
        }
        out[k] = node.length === 0 ? undefined : findField(node, field);
      }
      i = end;
    }
    return out;
  }

  /**
   * How many nodes have a live field, at seq `seq`: the count kept in `meta`
   * (for what SQLite holds, after folding what is journaled, as `list` does)
   * plus what the journaled records change of it, node by node, when the
   * disk is too full to fold them: on a full disk it folds and writes
   * nothing, and answers all the same. The answer is remembered until the
   * next commit. Where the kept count is missing or not right (see
   * `NodeTable.keptLive`), the nodes are counted once, body by body, and
   * the count is kept from then on (when the disk has room for it).
   *
   * Folding first is what keeps the count cheap while writes come in: the
   * journal may hold 100k records, and adding up what they change took
   * 17–100 ms per count (Deno, 60k journaled nodes), where a fold of what
   * came since the last count takes 0.2 ms.
   */
  countLive(seq: number): number {
    if (this.#counted?.seq === seq) return this.#counted.n;
    this.#j.foldWhenRoom(); // what stays journaled (a full disk) is added below
    const nodes = this.#nodes;
    let n = nodes.keptLive();
    if (n === undefined) {
      const counted = n = nodes.countLiveBodies();
      try {
        nodes.transaction(() => nodes.keepLive(counted));
      } catch (e) {
        if (!isDiskFull(e)) throw e; // counted again next time
      }
    }
    n += heldLiveDelta(this.#j, nodes);
    this.#counted = { seq, n };
    return n;
  }

  /**
   * Live souls in BINARY order, by a range on the index of live souls
   * (`prefix ≤ soul < prefixEnd(prefix)`): nodes whose fields are all
   * tombstones are not read at all.
   */
  list(options: ListOptions): string[] {
    const { prefix = "", limit } = options;
    if (!(limit > 0)) return [];
    const j = this.#j;
    const held = !j.foldWhenRoom(); // a full disk: journaled souls are merged in below
    const n = limit === Infinity ? -1 : Math.floor(limit);
    const end = prefix === "" ? undefined : prefixEnd(prefix);
    const { from, past } = listStart(options);
    const s = this.#nodes.s;
    const stmt = past
      ? (end === undefined ? s.listAfter : s.listAfterTo)
      : (end === undefined ? s.listFrom : s.listFromTo);
    const rows = stmt.all(from, end ?? null, held && n >= 0 ? n + heldCount(j) : n);
    const out: string[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = text(rows[i], "soul", "soul_raw");
    return held ? withHeld(j, this.#nodes, out, from, !past, end, n) : out;
  }

  /** The records of nodes changed after seq `after`, in seq order (`last`: the store's last seq). */
  changes(after: number, options: ChangesOptions, last: number): ChangesPage {
    const limit = options.limit;
    let from = options.cursor ?? after;
    const records: StoredRecord[] = [];
    if (from >= last) return { records, seq: last };
    if (!this.#j.foldWhenRoom()) return changesHeld(this.#j, this.#nodes, last, after, from, limit);
    const chunk = changesChunk(limit);
    for (;;) {
      const rows = this.#nodes.s.changes.all(from, chunk);
      for (const row of rows) {
        const soul = text(row, "soul", "soul_raw");
        for (const r of decodeBody(soul, row.body as Uint8Array)) if (r.seq > after) records.push(r);
        from = row.seq as number;
        if (records.length >= limit) return { records, cursor: from, seq: last };
      }
      if (rows.length < chunk) return { records, seq: last };
    }
  }
}

/**
 * The least string above every string that starts with `prefix`, in code
 * point (UTF-8 byte) order, or `undefined` when there is none (a prefix of
 * U+10FFFF only).
 */
function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      // Surrogate code points are not characters: U+D7FF is followed by U+E000.
      return cps.join("") + String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1);
    }
  }
  return undefined;
}
