/**
 * Where errors go that have no caller to reject: those thrown by watch
 * callbacks and commit listeners, and those of the deferral timer. They must
 * not stop the database, so they are logged.
 *
 * @module
 */

/** Logs an error no caller can be told of. */
export function reportError(e: unknown): void {
  console.error("lattice:", e);
}
