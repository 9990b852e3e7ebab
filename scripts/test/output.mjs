/**
 * Output of the test runner: colours (only on a TTY, never with NO_COLOR), headers, indented blocks
 * and the --verbose switch. Everything the runner prints goes through `log`, which falls silent once
 * a signal has interrupted the run so that the stopping message is the last thing printed.
 *
 * @module
 */

import process from "node:process";

let verbose = false;
let interrupted = false;

/** Turns the extra progress lines of --verbose on. */
export function setVerbose(on) {
  verbose = on;
}

/** Whether --verbose is on (tools then stream their output as they run). */
export function isVerbose() {
  return verbose;
}

/** Silences further output (after SIGINT/SIGTERM). */
export function setInterrupted() {
  interrupted = true;
}

const COLOR = !!process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code) => (s) => COLOR ? `\x1b[${code}m${s}\x1b[0m` : String(s);
export const red = paint("31");
export const green = paint("32");
export const bold = paint("1");
export const dim = paint("2");

export function log(line = "") {
  if (!interrupted) process.stdout.write(line + "\n");
}

/** Extra progress lines, only with --verbose. */
export function detail(line) {
  if (verbose) log(dim(`   ${line}`));
}

export function header(title) {
  log(bold(`== ${title}`));
}

export function secs(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Indents text, keeping at most `max` lines (the first ones, or the last ones with `tail`). */
export function indent(text, { pad = "    ", max = 40, tail = false } = {}) {
  let lines = String(text).replace(/\s+$/, "").split("\n");
  let note = "";
  if (lines.length > max) {
    note = `${pad}${dim(`… ${lines.length - max} more lines`)}`;
    lines = tail ? lines.slice(-max) : lines.slice(0, max);
  }
  const body = lines.map((l) => pad + l).join("\n");
  if (!note) return body;
  return tail ? `${note}\n${body}` : `${body}\n${note}`;
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function lastLines(text, n) {
  const lines = String(text).replace(/\s+$/, "").split("\n");
  return lines.slice(-n).join("\n");
}
