/**
 * Static check "file size": no hand-written module over 500 lines. A file that long holds more than
 * one concept (issue 13 split a 915-line Database class, a 385-line closure and this runner); the
 * limit makes the next one visible when it grows, not a year later.
 *
 * Scope: every module of the repository except tests/ (test files follow the module they test) and
 * generated code (scripts/test/source_scan.mjs GENERATED).
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import { GENERATED, listModules } from "./source_scan.mjs";

export const MAX_LINES = 500;

/** The modules over MAX_LINES lines, longest first ("core/a.ts: 915 lines"). */
export function checkFileSize(root, maxLines = MAX_LINES) {
  const long = [];
  for (const file of listModules(root, [""])) {
    if (file.startsWith("tests/") || GENERATED.includes(file)) continue;
    const text = fs.readFileSync(path.join(root, file), "utf8");
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    if (lines > maxLines) long.push({ file, lines });
  }
  return long.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file))
    .map((f) => `${f.file}: ${f.lines} lines (limit ${maxLines}: split it by concept)`);
}
