/**
 * Stage "checks": the static checks, each reported as ok or FAIL with its output. First the source
 * checks that run in this process on the repository's text (check_*.mjs: import cycles, layers,
 * World, file size, and examples, which reads `deno doc --json mod.ts`), then the tools in two lanes
 * side by side (the generated files are up to date, fmt, lint, the doc tests; type-check and publish
 * dry-run).
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { CHECK_TIMEOUT_MS, ROOT } from "./config.mjs";
import { dim, green, header, indent, log, plural, red, secs } from "./output.mjs";
import { describeExit, runCommand } from "./process.mjs";
import { readJson, rel, walk } from "./files.mjs";
import { checkCycles } from "./check_cycles.mjs";
import { checkLayers } from "./check_layers.mjs";
import { checkWorld } from "./check_world.mjs";
import { checkFileSize } from "./check_file_size.mjs";
import { checkExamples } from "./check_examples.mjs";
import { docTestArgs, docTestSummary } from "./check_doc_tests.mjs";

/** The checks that read the sources in this process: name → (root, deno) → problems (none when ok). */
const SOURCE_CHECKS = [
  ["import cycles", checkCycles],
  ["layers", checkLayers],
  ["World", checkWorld],
  ["file size", (root) => checkFileSize(root)], // (not given deno: its second parameter is the limit)
  ["examples", checkExamples],
];

/** Runs one source check with the result shape of runCommand. */
function runSourceCheck(check, deno) {
  const started = Date.now();
  try {
    const problems = check(ROOT, deno);
    const out = problems.join("\n");
    return { code: problems.length ? 1 : 0, out, ms: Date.now() - started, problems: problems.length };
  } catch (e) {
    return { code: 1, out: String(e?.stack ?? e), ms: Date.now() - started };
  }
}

function hasTs(dir) {
  return walk(path.join(ROOT, dir)).some((f) => /\.tsx?$/.test(f));
}

/** `deno fmt --check` prints whole diffs; name the files first (the first diffs follow). */
function fmtSummary(out) {
  const files = [...out.matchAll(/^from (.+):$/gm)].map((m) => rel(m[1]));
  if (!files.length) return out;
  const more = files.length > 20 ? `\n  … and ${files.length - 20} more` : "";
  const diffs = out.slice(out.indexOf("\nfrom ") + 1).split("\n").slice(0, 30).join("\n");
  return `not formatted (run \`deno fmt\`):\n  ${files.slice(0, 20).join("\n  ")}${more}\n\n${diffs}`;
}

/** Runs every check; `tmp` is the run's temporary directory (the doc tests get a fresh cwd in it). */
export async function stageChecks(deno, tmp) {
  header("checks");
  const started = Date.now();
  const steps = [];
  const laneA = [];
  const laneB = [];
  if (fs.existsSync(path.join(ROOT, "scripts", "build-wasm.mjs"))) {
    laneA.push({
      name: "build-wasm --check",
      cmd: process.execPath,
      args: ["scripts/build-wasm.mjs", "--check"],
    });
  }
  laneA.push({
    name: "build-inspector --check",
    cmd: process.execPath,
    args: ["scripts/build-inspector.mjs", "--check"],
  });
  laneA.push({ name: "deno fmt --check", cmd: deno, args: ["fmt", "--check"], summarize: fmtSummary });
  laneA.push({ name: "deno lint", cmd: deno, args: ["lint"] });
  const docCwd = path.join(tmp, "doc-tests");
  fs.mkdirSync(docCwd, { recursive: true });
  laneA.push({
    name: "doc tests (deno test --doc)",
    cmd: deno,
    args: docTestArgs(ROOT),
    cwd: docCwd,
    summarize: docTestSummary,
  });
  // The published entry points (deno.json "exports") are checked even outside these folders.
  const exportsField = readJson(path.join(ROOT, "deno.json"))?.exports ?? {};
  const exported = (typeof exportsField === "string" ? [exportsField] : Object.values(exportsField))
    .filter((f) => typeof f === "string" && /\.tsx?$/.test(f))
    .map((f) => f.replace(/^\.\//, ""));
  const targets = [
    ...new Set([...["mod.ts", "cli.ts"], ...exported].filter((f) => fs.existsSync(path.join(ROOT, f)))),
    ...["core", "storage", "net", "runtime", "tests", "bench"].filter(hasTs).map((d) => `${d}/`),
    ...(fs.existsSync(path.join(ROOT, "scripts"))
      ? fs.readdirSync(path.join(ROOT, "scripts")).filter((f) => f.endsWith(".ts")).map((f) => `scripts/${f}`)
      : []),
  ];
  if (targets.length) laneB.push({ name: "deno check", cmd: deno, args: ["check", ...targets] });
  // deno check above already type-checks the published modules; publish still checks slow types.
  laneB.push({
    name: "deno publish --dry-run",
    cmd: deno,
    args: ["publish", "--dry-run", "--allow-dirty", ...(targets.length ? ["--no-check"] : [])],
  });
  for (const [name, check] of SOURCE_CHECKS) steps.push({ name, result: runSourceCheck(check, deno) });
  steps.push(...laneA, ...laneB);
  const runLane = async (lane) => {
    for (const s of lane) {
      s.result = await runCommand(s.cmd, s.args, { timeoutMs: CHECK_TIMEOUT_MS, cwd: s.cwd });
    }
  };
  await Promise.all([runLane(laneA), runLane(laneB)]);
  const failed = [];
  for (const s of steps) {
    const r = s.result;
    if (r.code === 0 && !r.error && !r.timedOut) {
      log(`  ${green("ok")}   ${s.name} ${dim(`(${secs(r.ms)})`)}`);
    } else {
      failed.push(s.name);
      const why = r.problems === undefined ? describeExit(r) : plural(r.problems, "problem");
      log(`  ${red("FAIL")} ${s.name} (${why}, ${secs(r.ms)})`);
      log(indent(s.summarize ? s.summarize(r.out) : r.out, { pad: "       ", max: 60 }));
    }
  }
  const ms = Date.now() - started;
  const summary = failed.length
    ? `checks: ${red(`${failed.length} of ${steps.length} failed`)} (${failed.join(", ")}) (${secs(ms)})`
    : `checks: ok, ${plural(steps.length, "check")} (${secs(ms)})`;
  log(summary);
  return { label: "checks", failed: failed.length, passed: 0, line: summary, ms };
}
