/**
 * What the source checks (scripts/test/check_*.mjs) read: the repository's own modules, their text
 * with comments (and, for word searches, string contents) blanked out, and their import statements.
 * A scanner rather than a parser: plain Node with no dependencies, so the checks run before anything
 * is installed, and fast enough to read the whole repository in well under a second. Blanking keeps
 * every newline, so line numbers stay those of the file.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";

/** The library's own sources: what the World and layering rules govern. */
export const LIBRARY_ROOTS = ["core", "storage", "net", "runtime", "cli", "mod.ts", "cli.ts", "version.ts"];

/** Generated files: never edited by hand, so no rule about their shape applies. */
export const GENERATED = ["core/kernels/_wasm_bytes.ts", "web/_inspector_html.ts"];

const SKIP_DIRS = new Set(["node_modules", "dist", "data"]);
const MODULE_EXT = /\.(?:ts|tsx|mts|js|mjs)$/;

/** Repository-relative paths (with "/") of the modules under `roots` (folders or files) of `root`. */
export function listModules(root, roots) {
  const out = [];
  const walk = (rel) => {
    const abs = path.join(root, rel);
    let stat;
    try {
      stat = fs.statSync(abs);
    } catch {
      return;
    }
    if (stat.isFile()) {
      if (MODULE_EXT.test(rel)) out.push(rel);
      return;
    }
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      if (e.name.startsWith(".") || SKIP_DIRS.has(e.name)) continue;
      walk(rel ? `${rel}/${e.name}` : e.name);
    }
  };
  for (const r of roots) walk(r);
  return [...new Set(out)].sort();
}

/**
 * The text with comments replaced by spaces and, with `strings: true`, the contents of string and
 * template literals too (their quotes stay; the code inside a template's `${…}` stays). Regular
 * expression literals are not recognised: a `//` or quote inside one could blank too much, which
 * only makes a check miss, never fail wrongly on a comment.
 */
export function blank(text, { strings = false } = {}) {
  const out = text.split("");
  const wipe = (from, to) => {
    if (!strings) return;
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  const n = text.length;
  // One entry per open template whose `${…}` we are in: the brace depth inside it.
  const templates = [];
  let i = 0;
  const scanTemplate = () => {
    // At the character after "`" or after the "}" closing a `${…}`: up to the closing "`" or "${".
    let j = i;
    while (j < n && text[j] !== "`" && !(text[j] === "$" && text[j + 1] === "{")) {
      j += text[j] === "\\" ? 2 : 1;
    }
    wipe(i, Math.min(j, n));
    if (j < n && text[j] === "$") {
      templates.push(0);
      i = j + 2;
    } else i = j + 1;
  };
  while (i < n) {
    const c = text[i];
    const d = text[i + 1];
    if (c === "/" && d === "/") {
      const end = text.indexOf("\n", i);
      const stop = end < 0 ? n : end;
      for (let k = i; k < stop; k++) out[k] = " ";
      i = stop;
    } else if (c === "/" && d === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (out[k] !== "\n") out[k] = " ";
      i = stop;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      wipe(i + 1, Math.min(j, n));
      i = j + 1;
    } else if (c === "`") {
      i++;
      scanTemplate();
    } else if (templates.length && c === "{") {
      templates[templates.length - 1]++;
      i++;
    } else if (templates.length && c === "}") {
      if (templates[templates.length - 1] === 0) {
        templates.pop();
        i++;
        scanTemplate();
      } else {
        templates[templates.length - 1]--;
        i++;
      }
    } else i++;
  }
  return out.join("");
}

/** The local names an import clause binds: `a, { b, type c as d }` → a, b, d; `* as ns` → ns. */
function boundNames(clause) {
  const names = [];
  const braces = /\{([\s\S]*)\}/.exec(clause);
  if (braces) {
    for (const part of braces[1].split(",")) {
      const words = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/);
      if (words[0]) names.push(words[words.length - 1].trim());
    }
  }
  const outside = clause.replace(/\{[\s\S]*\}/, "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const part of outside) names.push(part.replace(/^\*\s+as\s+/, "").trim());
  return names;
}

const lineOf = (text, index) => text.slice(0, index).split("\n").length;

/**
 * The import and re-export statements of a module: `{ specifier, kind, reExport, names, line }`
 * (names: the local names an import binds) where kind is
 * "value" (loaded when the module loads), "type" (`import type`, `export type`, or every named
 * binding marked `type`: erased by TypeScript) or "dynamic" (`import("…")` with a literal).
 */
export function parseImports(text) {
  const code = blank(text);
  const found = [];
  const statement =
    /^[ \t]*(import|export)\s+(type\s+)?([^;"'`]*?)\s*\bfrom\s*(["'])([^"'\n]+)\4|^[ \t]*import\s*(["'])([^"'\n]+)\6/gm;
  for (const m of code.matchAll(statement)) {
    if (m[7] !== undefined) {
      found.push({ specifier: m[7], kind: "value", reExport: false, names: [], line: lineOf(code, m.index) });
      continue;
    }
    const clause = m[3];
    let kind = m[2] ? "type" : "value";
    const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
    if (kind === "value" && braces) {
      const names = braces[1].split(",").map((s) => s.trim()).filter(Boolean);
      if (names.length && names.every((s) => /^type\s/.test(s))) kind = "type";
    }
    found.push({
      specifier: m[5],
      kind,
      reExport: m[1] === "export",
      names: boundNames(clause),
      line: lineOf(code, m.index),
    });
  }
  for (const m of code.matchAll(/\bimport\(\s*(["'])([^"'\n]+)\1\s*[,)]/g)) {
    found.push({ specifier: m[2], kind: "dynamic", reExport: false, names: [], line: lineOf(code, m.index) });
  }
  return found.sort((a, b) => a.line - b.line);
}

/** The repository-relative module a relative specifier of `from` names, or null (a package, a URL). */
export function resolveImport(root, from, specifier) {
  if (!specifier.startsWith(".")) return null;
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  if (target.startsWith("..")) return null;
  return fs.existsSync(path.join(root, target)) ? target : null;
}

/**
 * The import graph of `files`: module → [{ to, kind, line }] for every import that resolves to a
 * module of the repository.
 */
export function importGraph(root, files) {
  const graph = new Map();
  for (const file of files) {
    const text = fs.readFileSync(path.join(root, file), "utf8");
    const edges = [];
    for (const imp of parseImports(text)) {
      const to = resolveImport(root, file, imp.specifier);
      if (to) edges.push({ to, kind: imp.kind, line: imp.line });
    }
    graph.set(file, edges);
  }
  return graph;
}
