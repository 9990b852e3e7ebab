/**
 * The test files: every tests/**\/*.test.ts, narrowed by the FILTER arguments, and the tags a file
 * carries in its first 5 lines (`@server-only` keeps it out of Chromium, `@peer-fixture` asks for
 * the WebRTC-Direct interface and a `lattice serve` node).
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./config.mjs";

export function walk(dir, out = []) {
  let entries = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export const rel = (abs) => path.relative(ROOT, abs).split(path.sep).join("/");

export function findTestFiles(filters) {
  const all = walk(path.join(ROOT, "tests")).filter((f) => f.endsWith(".test.ts")).map(rel).sort();
  if (!filters.length) return all;
  const wanted = filters.map((f) => {
    const abs = path.resolve(f);
    const asRel = fs.existsSync(abs) ? rel(abs) : f.replace(/^\.\//, "");
    return asRel;
  });
  return all.filter((f) => wanted.some((w) => f.includes(w)));
}

function hasTag(file, tag) {
  const head = fs.readFileSync(path.join(ROOT, file), "utf8").split("\n", 5).join("\n");
  return head.includes(tag);
}

export function isServerOnly(file) {
  return hasTag(file, "@server-only");
}

/** Files that replicate with a `lattice serve` node: see tests/_peer_fixture.ts. */
export function needsPeerFixture(file) {
  return hasTag(file, "@peer-fixture");
}

export function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}
