/**
 * The sync data set shared by tests/sync.test.ts and bench/net.bench.ts:
 * realistic user-profile ops and the "N records, D differing" split.
 */
import type { Op } from "../core/op.ts";

/** States are `BASE_MS + version`: an hour ago, so never deferred. */
export const BASE_MS: number = Date.now() - 3_600_000;
export const ACTOR_A = "00000000000000aa", ACTOR_B = "00000000000000bb";

/** `n` in `w` lowercase hex digits. */
export const hex = (n: number, w: number): string => n.toString(16).padStart(w, "0");
/** A state string from ms and counter. */
export const stateOf = (ms: number, counter = 0): string => hex(ms, 12) + hex(counter, 4);

const FIELDS = ["name", "email", "age", "bio", "friend"];

/** A realistic op: field `field` (0–4) of user `i` at `version`, written by `actor`. */
export function userOp(i: number, field: number, version: number, actor: string): Op {
  const values = [
    `User number ${i} v${version}`,
    `user${i}.v${version}@example.org`,
    20 + ((i * 7 + version) % 60),
    `Likes graphs, CRDTs and version ${version} of item ${i}; joined in ${2000 + (i % 25)}.`,
    { "#": `user/${hex((i * 31 + version) % 100_000, 6)}` },
  ];
  return {
    soul: `user/${hex(i, 6)}`,
    field: FIELDS[field],
    value: values[field] as Op["value"],
    state: stateOf(BASE_MS + version),
    actor,
  };
}

/**
 * `n` records (5 fields per user), `d` of them differing and spread evenly:
 * a third only on A, a third only on B, a third in conflicting versions.
 */
export function differingSets(n: number, d: number): {
  common: Op[];
  onlyA: Op[];
  onlyB: Op[];
  confA: Op[];
  confB: Op[];
} {
  const common: Op[] = [], onlyA: Op[] = [], onlyB: Op[] = [], confA: Op[] = [], confB: Op[] = [];
  for (let k = 0; k < n; k++) {
    const i = Math.floor(k / 5), f = k % 5;
    const which = k % (n / d) === 7 ? (k / (n / d)) % 3 | 0 : -1;
    if (which === 0) onlyA.push(userOp(i, f, 1, ACTOR_A));
    else if (which === 1) onlyB.push(userOp(i, f, 1, ACTOR_B));
    else if (which === 2) confA.push(userOp(i, f, 2, ACTOR_A)), confB.push(userOp(i, f, 3, ACTOR_B));
    else common.push(userOp(i, f, 1, ACTOR_A));
  }
  return { common, onlyA, onlyB, confA, confB };
}
