/**
 * Small files only the directory's owner may read (mode 0600), written
 * atomically: whole under a temporary name, fsynced, then linked into place
 * (a new file: of two writers one wins, the other learns it lost) or renamed
 * over the old one (a replacement), and the directory fsynced. A crash leaves
 * the old file or the new one, never half of one. The identity
 * (storage/identity_file.ts) and the WebRTC-Direct certificate
 * (net/webrtc_cert.ts) are kept this way.
 *
 * @module
 */
import { systemWorld } from "../core/world.ts";
import { loadHost } from "./_host.ts";
import { syncDir } from "./journal.ts";

/** `<dir>/<name>`, with the separator of the path given. */
export function pathIn(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + name : `${dir}/${name}`;
}

/** The bytes of `<dir>/<name>`, or `undefined` when there is no such file. */
export async function readPrivateFile(dir: string, name: string): Promise<Uint8Array | undefined> {
  const host = await loadHost();
  try {
    return host.fs.readFileSync(pathIn(dir, name));
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Writes `text` to `<dir>/<name>` with mode 0600 (the directory must exist).
 * Without `replace` it only creates: `false` when the file was already there
 * (left as it is). With `replace` it always writes (`true`).
 */
export async function writePrivateFile(
  dir: string,
  name: string,
  text: string,
  options: { readonly replace?: boolean } = {},
): Promise<boolean> {
  const host = await loadHost();
  const path = pathIn(dir, name);
  const suffix = Array.from(
    systemWorld.randomBytes(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  );
  const temp = `${path}.${suffix.join("")}.tmp`;
  const bytes = new TextEncoder().encode(text);
  const fd = host.fs.openSync(temp, "wx", 0o600);
  let placed = false, wrote = false;
  try {
    try {
      for (let at = 0; at < bytes.length;) at += host.fs.writeSync(fd, bytes, at, bytes.length - at);
      host.fs.fsyncSync(fd);
    } finally {
      host.fs.closeSync(fd);
    }
    if (options.replace) {
      host.fs.renameSync(temp, path);
      placed = wrote = true;
    } else {
      try {
        host.fs.linkSync(temp, path);
        wrote = true;
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e;
      }
    }
  } finally {
    if (!placed) {
      try {
        host.fs.unlinkSync(temp);
      } catch {
        // already gone
      }
    }
  }
  if (wrote) syncDir(host.fs, dir);
  return wrote;
}
