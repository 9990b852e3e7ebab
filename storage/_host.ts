/**
 * The operating system calls storage makes (files, paths, the process), as
 * the small subset of `node:fs`, `node:path`, `node:os` and `node:process`
 * it uses. On Bun and Node those modules are the implementation. On Deno
 * (except Windows) it is the `Deno` namespace instead: importing `node:fs`
 * there loads Deno's Node compatibility layer, which costs about 10 MB of
 * resident memory in every process that opens a database (measured on Deno
 * 2.9: RSS 35 → 45 MB for the import alone), and is no faster (a 120-byte
 * append: 0.6 µs either way).
 *
 * File descriptors are numbers on both sides; on Deno they index a table of
 * open `Deno.FsFile`s. Errors keep the Node codes callers test (`EEXIST`,
 * `ENOENT`).
 *
 * @module
 */
import { importRuntimeModule, runtimeName } from "../runtime/detect.ts";
import { systemWorld } from "../core/world.ts";

/** The part of `node:fs` storage uses. */
export interface HostFs {
  /** Opens `path`: `ax` creates for appending (fails if it exists), `wx` creates for writing, `r` reads. */
  openSync(path: string, flags: "ax" | "wx" | "r", mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  /** Reads up to `length` bytes at the file's position into `buffer` at `offset`; 0 at the end. */
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  ftruncateSync(fd: number, length: number): void;
  fdatasyncSync(fd: number): void;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  readFileSync(path: string): Uint8Array;
  readdirSync(path: string): string[];
  unlinkSync(path: string): void;
  mkdirSync(path: string, options: { recursive: true }): unknown;
  renameSync(from: string, to: string): void;
  linkSync(existing: string, created: string): void;
}

/** Files, paths and the process, as storage needs them. */
export interface Host {
  readonly fs: HostFs;
  /** The path separator. */
  readonly sep: string;
  join(...parts: string[]): string;
  /** The absolute, normalized form of `path`. */
  resolve(path: string): string;
  basename(path: string): string;
  /** This machine's host name. */
  readonly hostname: string;
  /** When this machine booted (ms since the epoch, approximate). */
  readonly bootTime: number;
  readonly pid: number;
  /** The command line: executable, script, arguments (as `process.argv`). */
  readonly argv: readonly string[];
  /**
   * Whether process `pid` is running (true when it is but is not ours to
   * signal). A zombie — exited, not yet reaped by its parent — is not: it
   * still answers `kill(pid, 0)`, but holds nothing (on Linux it is told
   * from `/proc`; elsewhere it counts as running).
   */
  isAlive(pid: number): boolean;
  /** Runs `listener` when the process exits normally. */
  onExit(listener: () => void): void;
}

let loaded: Promise<Host> | undefined;

/** The host interface of this runtime (loaded once). */
export function loadHost(): Promise<Host> {
  return loaded ??= runtimeName() === "deno" && denoNamespace().build.os !== "windows"
    ? Promise.resolve(denoHost())
    : nodeHost();
}

/** Bytes free to this process on the file system of a path, or `undefined` where that cannot be told. */
export type FreeBytes = (path: string) => number | undefined;

let freeBytes: Promise<FreeBytes> | undefined;

/**
 * Loads {@link FreeBytes} (`statfs`: available blocks × block size). A store
 * loads it only once its journal is first folded or its disk first fills:
 * on Deno it is `node:fs`, whose compatibility layer costs ~10 MB of RSS that
 * a process that only opens a database and reads should not pay. Resolves to
 * a function answering `undefined` where `statfs` is missing.
 */
export function loadFreeBytes(): Promise<FreeBytes> {
  return freeBytes ??= importRuntimeModule<{ statfsSync?(path: string): { bavail: number; bsize: number } }>(
    "node:fs",
  ).then((fs) => (path: string) => {
    try {
      const s = fs.statfsSync!(path);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return undefined;
    }
  }, () => () => undefined);
}

// ---------------------------------------------------------------- Bun, Node (and Deno on Windows)

interface NodeModules {
  fs: HostFs;
  path: {
    sep: string;
    join(...p: string[]): string;
    resolve(p: string): string;
    basename(p: string): string;
  };
  os: { hostname(): string; uptime(): number };
  process: {
    pid: number;
    argv: string[];
    platform: string;
    kill(pid: number, signal: number): boolean;
    on(event: "exit", listener: () => void): void;
  };
}

async function nodeHost(): Promise<Host> {
  const [fs, path, os, proc] = await Promise.all([
    importRuntimeModule<NodeModules["fs"]>("node:fs"),
    importRuntimeModule<NodeModules["path"]>("node:path"),
    importRuntimeModule<NodeModules["os"]>("node:os"),
    importRuntimeModule<{ default: NodeModules["process"] }>("node:process"),
  ]);
  const process = proc.default;
  return {
    fs,
    sep: path.sep,
    join: path.join,
    resolve: (p) => path.resolve(p),
    basename: (p) => path.basename(p),
    hostname: os.hostname(),
    bootTime: systemWorld.now() - os.uptime() * 1000,
    pid: process.pid,
    argv: process.argv,
    isAlive(pid) {
      try {
        process.kill(pid, 0);
      } catch (e) {
        return (e as { code?: string }).code !== "ESRCH"; // EPERM: alive, just not ours
      }
      return process.platform !== "linux" || !exitedOnLinux(fs.readFileSync, pid);
    },
    onExit: (listener) => process.on("exit", listener),
  };
}

// ---------------------------------------------------------------- Deno

/** The part of the `Deno` namespace used here. */
interface DenoFile {
  writeSync(p: Uint8Array): number;
  readSync(p: Uint8Array): number | null;
  truncateSync(len: number): void;
  syncDataSync(): void;
  syncSync(): void;
  close(): void;
}
interface DenoNamespace {
  build: { os: string };
  pid: number;
  args: string[];
  mainModule: string;
  execPath(): string;
  cwd(): string;
  hostname(): string;
  osUptime(): number;
  kill(pid: number, signal: number): void;
  openSync(
    path: string,
    options: { read?: boolean; write?: boolean; append?: boolean; createNew?: boolean; mode?: number },
  ): DenoFile;
  readFileSync(path: string): Uint8Array;
  readDirSync(path: string): Iterable<{ name: string }>;
  removeSync(path: string): void;
  mkdirSync(path: string, options: { recursive: boolean }): void;
  renameSync(from: string, to: string): void;
  linkSync(existing: string, created: string): void;
  errors: { NotFound: new (...a: never[]) => Error };
}

function denoNamespace(): DenoNamespace {
  return (globalThis as unknown as { Deno: DenoNamespace }).Deno;
}

function denoHost(): Host {
  const D = denoNamespace();
  const files = new Map<number, DenoFile>();
  let nextFd = 1;
  const file = (fd: number): DenoFile => {
    const f = files.get(fd);
    if (f === undefined) {
      throw Object.assign(new Error(`EBADF: bad file descriptor ${fd}`), { code: "EBADF" });
    }
    return f;
  };
  const open = (path: string, flags: "ax" | "wx" | "r", mode?: number): number => {
    const f = D.openSync(
      path,
      flags === "r"
        ? { read: true }
        : { write: true, createNew: true, append: flags === "ax", ...(mode === undefined ? {} : { mode }) },
    );
    const fd = nextFd++;
    files.set(fd, f);
    return fd;
  };
  // Deno writes a whole Uint8Array: the view of the last write is kept, for the next one of the
  // same bytes (a journal writes its frames from the start of one buffer).
  let view: Uint8Array = new Uint8Array(0);
  const fs: HostFs = {
    openSync: open,
    writeSync(fd, buffer, offset, length) {
      if (
        view.buffer !== buffer.buffer || view.byteOffset !== buffer.byteOffset + offset ||
        view.length !== length
      ) {
        view = buffer.subarray(offset, offset + length);
      }
      return file(fd).writeSync(view);
    },
    readSync: (fd, buffer, offset, length) =>
      file(fd).readSync(buffer.subarray(offset, offset + length)) ?? 0,
    ftruncateSync: (fd, length) => file(fd).truncateSync(length),
    fdatasyncSync: (fd) => file(fd).syncDataSync(),
    fsyncSync: (fd) => file(fd).syncSync(),
    closeSync(fd) {
      const f = file(fd);
      files.delete(fd);
      f.close();
    },
    readFileSync: (path) => D.readFileSync(path),
    readdirSync: (path) => Array.from(D.readDirSync(path), (e) => e.name),
    unlinkSync: (path) => D.removeSync(path),
    mkdirSync: (path, options) => D.mkdirSync(path, options),
    renameSync: (from, to) => D.renameSync(from, to),
    linkSync: (existing, created) => D.linkSync(existing, created),
  };
  const main = D.mainModule.startsWith("file:")
    ? decodeURIComponent(new URL(D.mainModule).pathname)
    : D.mainModule;
  return {
    fs,
    sep: "/",
    join: (...parts) => normalize(parts.filter((p) => p !== "").join("/") || "."),
    resolve: (p) => normalize(p.startsWith("/") ? p : `${D.cwd()}/${p}`),
    basename: (p) => p.replace(/\/+$/, "").split("/").pop() ?? "",
    hostname: D.hostname(),
    bootTime: systemWorld.now() - D.osUptime() * 1000,
    pid: D.pid,
    argv: [execPath(D), main, ...D.args],
    isAlive(pid) {
      try {
        D.kill(pid, 0);
      } catch (e) {
        return !(e instanceof D.errors.NotFound); // ESRCH; anything else (EPERM): alive
      }
      return D.build.os !== "linux" || !exitedOnLinux(D.readFileSync, pid);
    },
    onExit: (listener) => globalThis.addEventListener("unload", listener),
  };
}

/**
 * Whether Linux reports process `pid` as exited although `kill(pid, 0)`
 * found it: a zombie (state `Z`, its parent has not reaped it yet, as for a
 * moment after a SIGKILL) or dead (`X`). The state is the field after the
 * command name in `/proc/<pid>/stat`, which is in parentheses and may hold
 * spaces and parentheses itself, hence the last `)`. When the file cannot be
 * read, the process counts as running: a lock is never taken on a guess.
 */
function exitedOnLinux(readFile: (path: string) => Uint8Array, pid: number): boolean {
  let stat: string;
  try {
    stat = new TextDecoder().decode(readFile(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
  const state = stat.charAt(stat.lastIndexOf(")") + 2);
  return state === "Z" || state === "X";
}

/** Deno's executable, or `deno` without the read permission it takes (it only names the holder of a lock). */
function execPath(D: DenoNamespace): string {
  try {
    return D.execPath();
  } catch {
    return "deno";
  }
}

/** A POSIX path with `.` and `..` resolved and repeated or trailing slashes removed (as `node:path`). */
export function normalize(path: string): string {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(part);
  }
  const joined = out.join("/");
  return absolute ? "/" + joined : joined || ".";
}
