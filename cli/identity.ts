/**
 * `lattice identity show|export|import`: the key of a database directory,
 * `<dir>/identity.json` (storage/identity_file.ts), which signs the node's
 * writes and is its peer id. These commands read and write that file only:
 * they never open the database, so `show` works beside a running node.
 *
 * An encrypted file needs `LATTICE_PASSPHRASE` to export; `import` seals the
 * file it writes with it when it is set, as the first `open` does.
 *
 * @module
 */
import { actorOf, exportIdentity, type Identity, importIdentity, toHex } from "../core/trust/identity.ts";
import {
  identityPath,
  inspectIdentityFile,
  PASSPHRASE_ENV,
  readIdentityFile,
  writeIdentityFile,
} from "../storage/identity_file.ts";
import type { Parsed } from "./args.ts";
import type { Context } from "./context.ts";
import { CliError, EXIT_ERROR, EXIT_OK, UsageError } from "./errors.ts";

/** Runs `lattice identity ACTION [FILE]`. */
export async function identity(ctx: Context, p: Parsed): Promise<number> {
  const [action, file] = p.positionals;
  if (action !== "import" && file !== undefined) {
    throw new UsageError(`identity ${action} takes no FILE argument`, "identity");
  }
  if (action !== "import" && p.flags.has("force")) {
    throw new UsageError("--force goes with identity import", "identity");
  }
  switch (action) {
    case "show":
      return await show(ctx);
    case "export":
      return await exportCommand(ctx);
    case "import":
      if (file === undefined) {
        throw new UsageError("identity import needs FILE (or - for standard input)", "identity");
      }
      return await importCommand(ctx, file, p.flags.has("force"));
    default:
      throw new UsageError(
        `unknown action ${
          JSON.stringify(action)
        }: use identity show, identity export or identity import FILE`,
        "identity",
      );
  }
}

/** The passphrase for identity files: `LATTICE_PASSPHRASE` (an empty one counts as none). */
export function passphraseOf(ctx: Context): string | undefined {
  return ctx.host.env(PASSPHRASE_ENV) || undefined;
}

function noIdentity(ctx: Context): CliError {
  return new CliError(
    `No identity in ${ctx.path}; create one with "lattice init --path ${ctx.path}" or "lattice identity import FILE"`,
    EXIT_ERROR,
  );
}

/** `identity show`: id, actor, peer id and whether the key is encrypted (no passphrase needed). */
async function show(ctx: Context): Promise<number> {
  const info = await fileStep(() => inspectIdentityFile(ctx.path));
  if (!info) throw noIdentity(ctx);
  const { peerIdOf } = await import("../net/peer_key.ts");
  const s = {
    path: info.path,
    id: toHex(info.publicKey),
    actor: actorOf(info.publicKey),
    peerId: peerIdOf(info.publicKey),
    encrypted: info.encrypted,
  };
  if (ctx.json) {
    await ctx.out.line(JSON.stringify(s));
  } else {
    await ctx.out.line(`identity:  ${s.id}`);
    await ctx.out.line(`actor:     ${s.actor}`);
    await ctx.out.line(`peer id:   ${s.peerId}`);
    await ctx.out.line(`encrypted: ${s.encrypted ? "yes" : "no"}`);
    await ctx.out.line(`file:      ${s.path}`);
  }
  return EXIT_OK;
}

/** `identity export`: the ExportedIdentity JSON on stdout (the secret), a warning on stderr. */
async function exportCommand(ctx: Context): Promise<number> {
  const found = await fileStep(() => readIdentityFile(ctx.path, passphraseOf(ctx)));
  if (!found) throw noIdentity(ctx);
  await ctx.host.stderr(
    "lattice identity export: this is the directory's secret key; whoever holds it can write as this node. " +
      "Keep it private.\n",
  );
  await ctx.out.line(JSON.stringify(exportIdentity(found)));
  return EXIT_OK;
}

/** `identity import FILE|-`: writes the identity into a directory that has none (or any, with --force). */
async function importCommand(ctx: Context, file: string, force: boolean): Promise<number> {
  let text: string;
  try {
    text = file === "-" ? await readStdin(ctx) : await readText(ctx.host.resolvePath(file));
  } catch (e) {
    throw new CliError(
      `Cannot read ${file === "-" ? "standard input" : file}: ${(e as Error).message}`,
      EXIT_ERROR,
    );
  }
  let imported: Identity;
  try {
    imported = await importIdentity(text.trim());
  } catch (e) {
    throw new CliError(
      `${file === "-" ? "Standard input" : file} is not an exported identity: ${(e as Error).message}`,
      EXIT_ERROR,
    );
  }
  const kind = ctx.host.pathKind(ctx.path);
  if (kind === "file") throw new CliError(`${ctx.path} is a file, not a database directory.`, EXIT_ERROR);
  if (kind === "missing") await mkdirs(ctx.path);
  if (!force && ctx.host.pathKind(identityPath(ctx.path)) !== "missing") {
    throw new CliError(
      `${identityPath(ctx.path)} already holds an identity; give --force to replace it (the directory's ` +
        "actor and peer id change, and its old key is lost unless exported)",
      EXIT_ERROR,
    );
  }
  const passphrase = passphraseOf(ctx);
  const wrote = await writeIdentityFile(ctx.path, imported, { passphrase, replace: force });
  if (!wrote) {
    throw new CliError(
      `${identityPath(ctx.path)} was created meanwhile; give --force to replace it`,
      EXIT_ERROR,
    );
  }
  if (ctx.json) {
    await ctx.out.line(
      JSON.stringify({
        path: identityPath(ctx.path),
        id: imported.id,
        actor: imported.actor,
        encrypted: passphrase !== undefined,
      }),
    );
  } else {
    await ctx.out.line(
      `Imported identity ${imported.id} into ${identityPath(ctx.path)}${passphrase ? " (encrypted)" : ""}`,
    );
  }
  return EXIT_OK;
}

/** Runs a file step; an unreadable or locked identity file is one sentence, not a stack trace. */
async function fileStep<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if ((e as Error).name === "IdentityFileError") throw new CliError((e as Error).message, EXIT_ERROR);
    throw e;
  }
}

function readStdin(ctx: Context): Promise<string> {
  if (!ctx.host.stdin) throw new Error("this host gives no standard input");
  return ctx.host.stdin();
}

async function readText(path: string): Promise<string> {
  const fs = await import("node:fs/promises");
  return await fs.readFile(path, "utf8");
}

async function mkdirs(path: string): Promise<void> {
  const fs = await import("node:fs/promises");
  await fs.mkdir(path, { recursive: true });
}
