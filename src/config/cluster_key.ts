/**
 * The cluster key file (`cluster-key-file <path>`): one line of at least 64 hex digits (32 bytes
 * or more, an even number of digits, at most 1024), e.g. from `deno task keygen <path>` or
 * `openssl rand -hex 32`. Surrounding whitespace and a final newline are fine; anything else is
 * refused. So is a file that group or others may read or write (like OpenSSH with private keys):
 * `chmod 600 <path>` fixes that. On Windows, where Deno reports no mode, the mode is not checked.
 *
 * @module
 */
import { fromHex, toHex } from "../kv/bytes.ts";
import { MIN_KEY_BYTES } from "../net/peer_auth.ts";

/** Most hex digits accepted (512 bytes; HMAC-SHA-256 hashes longer keys anyway). */
const MAX_KEY_HEX_DIGITS = 1024;

/** A key file that cannot be used; the message says why (without the setting's file:line). */
export class KeyFileError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "KeyFileError";
  }
}

/**
 * The key bytes of a key file's text.
 *
 * @throws {KeyFileError} when it is not one line of 64..1024 hex digits (an even number).
 */
export function parseKeyText(text: string): Uint8Array {
  const content = text.trim();
  if (content === "") {
    throw new KeyFileError(
      `is empty; expected one line of at least ${2 * MIN_KEY_BYTES} hex digits`,
    );
  }
  if (/[\r\n]/.test(content)) {
    throw new KeyFileError("has more than one line; expected one line of hex digits");
  }
  const bad = /[^0-9a-fA-F]/.exec(content);
  if (bad !== null) {
    const ch = JSON.stringify(bad[0]);
    throw new KeyFileError(`is not hex: ${ch} at column ${bad.index + 1}`);
  }
  if (content.length < 2 * MIN_KEY_BYTES) {
    throw new KeyFileError(
      `is too short: ${content.length} hex digits, at least ${2 * MIN_KEY_BYTES} ` +
        `(${MIN_KEY_BYTES} bytes) are needed; make one with "deno task keygen <path>"`,
    );
  }
  if (content.length > MAX_KEY_HEX_DIGITS) {
    throw new KeyFileError(
      `is too long: ${content.length} hex digits, at most ${MAX_KEY_HEX_DIGITS}`,
    );
  }
  if (content.length % 2 !== 0) {
    throw new KeyFileError(`has an odd number of hex digits (${content.length})`);
  }
  return fromHex(content);
}

/** Refuses a mode that gives group or others any access (null: not reported, not checked). */
export function checkKeyMode(mode: number | null): void {
  if (mode === null) return;
  if ((mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, "0");
    throw new KeyFileError(
      `may be read or written by group or others (mode ${octal}); run "chmod 600" on it`,
    );
  }
}

/**
 * Reads and checks the key file at `path`.
 *
 * @throws {KeyFileError} `<path>: <problem>` when it is missing, unreadable, not a file, too
 * open, or not a valid key.
 */
export async function loadClusterKey(path: string): Promise<Uint8Array> {
  const fail = (problem: string): never => {
    throw new KeyFileError(`${path}: ${problem}`);
  };
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    return fail(`cannot read: ${reason(err)}`);
  }
  if (!info.isFile) fail("is not a regular file");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    return fail(`cannot read: ${reason(err)}`);
  }
  try {
    checkKeyMode(info.mode);
    return parseKeyText(text);
  } catch (err) {
    if (err instanceof KeyFileError) fail(err.message);
    throw err;
  }
}

function reason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The text of a new key file: 64 random hex digits (32 bytes) and a newline. */
export function newKeyText(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(MIN_KEY_BYTES));
  return toHex(bytes) + "\n";
}

/**
 * Writes a new key file at `path` with mode 0600. Without `force` an existing file is kept and
 * this throws; with it the file is made 0600 and then overwritten.
 *
 * @throws {KeyFileError} `<path>: ...` when it exists (without `force`) or cannot be written.
 */
export async function writeKeyFile(path: string, force = false): Promise<void> {
  const text = newKeyText();
  try {
    if (force) {
      try {
        await Deno.chmod(path, 0o600);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
      await Deno.writeTextFile(path, text, { mode: 0o600 });
    } else {
      await Deno.writeTextFile(path, text, { mode: 0o600, createNew: true });
    }
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new KeyFileError(`${path}: already exists; refusing to overwrite it (use --force)`);
    }
    throw new KeyFileError(`${path}: cannot write: ${reason(err)}`);
  }
}
