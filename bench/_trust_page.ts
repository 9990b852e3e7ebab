/**
 * The page side of the `trust` suite in Chromium: bundled and loaded by
 * bench/_trust_browser.ts, it runs {@link measureTrust} in the page. Not a
 * suite: it never runs on a server.
 *
 * @module
 */
export { measureTrust } from "./_trust_measure.ts";
