/**
 * The options of a {@link Database} (`Database.create`), and how a database
 * finds its identity in its store: the random 64-bit actor id made on the
 * first open and kept in the store's metadata.
 *
 * @module
 */
import type { Kernels } from "../kernels/types.ts";
import { isHex64 } from "../op.ts";
import type { QueryBudget } from "../query_budget.ts";
import type { Store } from "../store.ts";
import type { World } from "../world.ts";
import type { Embedder } from "./embedding.ts";
import { type Identity, isKeyActor } from "../trust/identity.ts";

/** Options of `Database.create` (core/database.ts). */
export interface DatabaseOptions {
  readonly store: Store;
  readonly kernels: Kernels;
  /**
   * Time, timers and randomness (core/world.ts; default `systemWorld`): the
   * wall clock of the HLC, the deferral timer, the query budget's clock and
   * the random actor id of a new store.
   */
  readonly world?: World;
  /** Wall clock in ms (default `world.now`); wins over `world` when given. */
  readonly now?: () => number;
  /** States further ahead of the wall clock than this are deferred (default 10 min). */
  readonly maxDrift?: number;
  /**
   * States further ahead of the wall clock than this are refused, not
   * deferred (ms, default one day; at least `maxDrift`; `Infinity` for none).
   */
  readonly horizon?: number;
  /** Most ops deferred at once (default 100,000); past it more are refused. */
  readonly maxDeferred?: number;
  /** Most ops deferred at once from one source, a peer or (local calls) an op's actor (default 10,000). */
  readonly maxDeferredPerSource?: number;
  /** Limits on the work of one `query` (core/query_budget.ts; defaults `DEFAULT_QUERY_BUDGET`). */
  readonly queryBudget?: Partial<QueryBudget>;
  /** The application's text → vector function, for indexed fields that hold text (core/db/embedding.ts). */
  readonly embed?: Embedder;
  /**
   * The key that signs this replica's writes (core/trust/identity.ts): its
   * actor id is the key's. Without one, writes are unsigned under a random
   * actor id whose top bit is clear (public souls only).
   */
  readonly identity?: Identity;
  /**
   * The space the signed writes are for (default `default`): part of what
   * each signature covers, so an op signed for one space is refused in
   * another. `open` takes it from `network.space`.
   */
  readonly space?: string;
}

/**
 * The actor id of a replica: its identity's, else the one kept in `store`
 * (`meta.actor`) when it is a keyless one (top bit clear), else a new random
 * keyless one from `world`, committed before it is returned. (A stored id
 * with the top bit set predates key-bound actor ids: peers would take its
 * unsigned ops for forgeries, so it is replaced.)
 */
export async function restoreActor(store: Store, world: World, identity?: Identity): Promise<string> {
  if (identity) return identity.actor;
  let actor = await store.getMeta("actor");
  if (!isHex64(actor) || isKeyActor(actor)) {
    const b = world.randomBytes(new Uint8Array(8));
    b[0] &= 0x7f;
    actor = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    await store.commit({ meta: { actor } });
  }
  return actor;
}
