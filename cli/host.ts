/**
 * The runtime as the CLI sees it: environment, paths and the two output
 * streams, behind {@link CliHost} so that tests (and embedders) can run
 * `main` in-process with their own streams. {@link processHost} is this
 * process, through `node:` modules, which Deno, Bun and Node all provide.
 *
 * @module
 */
import process from "node:process";
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { OutputClosedError } from "./errors.ts";

/** What the CLI needs from its runtime; {@link processHost} provides it on Deno, Bun and Node. */
export interface CliHost {
  /** An environment variable, or `undefined`. */
  env(name: string): string | undefined;
  /** `path` made absolute against the working directory. */
  resolvePath(path: string): string;
  /** What is at `path`. */
  pathKind(path: string): "directory" | "file" | "missing";
  /** Writes to standard output; resolves once written, rejects if the reader is gone. */
  stdout(text: string): Promise<void>;
  /** Writes to standard error. */
  stderr(text: string): Promise<void>;
  /** All of standard input as text (`lattice identity import -`; a host without it cannot read `-`). */
  stdin?(): Promise<string>;
}

/** The {@link CliHost} of this process, through `node:` modules (which Deno and Bun provide too). */
export function processHost(): CliHost {
  const write =
    (stream: { write(text: string, done: (e?: Error | null) => void): boolean }) =>
    (text: string): Promise<void> =>
      new Promise((done, fail) => {
        stream.write(text, (e) => e ? fail(new OutputClosedError(e.message)) : done());
      });
  // A closed pipe (`lattice list | head -1`) also surfaces as an 'error' event: the write above reports it.
  process.stdout.on("error", () => {});
  return {
    env: (name) => {
      try {
        return process.env[name];
      } catch {
        return undefined; // Deno without --allow-env
      }
    },
    resolvePath: (path) => resolve(path),
    pathKind: (path) => {
      try {
        return statSync(path).isDirectory() ? "directory" : "file";
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return "missing";
        throw e;
      }
    },
    stdout: write(process.stdout),
    stderr: write(process.stderr),
    stdin: async () => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Uint8Array);
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) all.set(c, (at += c.length) - c.length);
      return new TextDecoder().decode(all);
    },
  };
}
