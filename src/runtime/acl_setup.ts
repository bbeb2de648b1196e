/**
 * A replica's own users, from its security settings, and its ACL file.
 *
 * - `requirepass <password>` gives the `default` user that password (stored as its SHA-256 hash
 *   only), as in Redis.
 * - `aclfile <path>` loads users in Redis's ACL file syntax (`user <name> <rule>...` lines; empty
 *   lines and `#` comment lines are skipped). A file that does not define `default` gets the
 *   `default` of `requirepass` (or, without it, `on nopass ~* &* +@all`).
 *
 * These users are the replica's *local* table: it enforces them until the replicated table has
 * been initialised by the first `__ACL INIT` in the order (see `src/kv/acl.ts`). `ACL SAVE` writes
 * the enforced table to the aclfile (atomically: a temporary file, fsync, rename), `ACL LOAD`
 * reads it again and submits it through the order.
 *
 * @module
 */
import {
  aclFileErrorText,
  type AclTable,
  type AclUser,
  applyRule,
  defaultTable,
  defaultUser,
  describeTable,
  hashPassword,
  parseUserLines,
} from "../kv/acl.ts";
import type { Settings } from "../config/settings.ts";

/** A replica's own users and where its ACL file is. */
export interface AclSetup {
  /** The users this replica enforces until the replicated table is initialised. */
  table: AclTable;
  /** The `default` user of a file that does not define one. */
  defaultUser: () => AclUser;
  /** The ACL file (absolute), if any. */
  file?: string;
  /** True with any security setting: the replica initialises the replicated table. */
  secured: boolean;
}

/** An ACL file that cannot be read or has errors; the message names the file and line. */
export class AclFileError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "AclFileError";
  }
}

/** The setup of a replica without security settings. */
export function openSetup(): AclSetup {
  return { table: defaultTable(), defaultUser, secured: false };
}

/**
 * Reads the ACL file at `path`.
 *
 * @throws {AclFileError} `<path>: cannot read: ...`, or Redis's text of its problems, each with
 * `<path>:<line>`.
 */
export async function readAclFile(path: string, dflt: () => AclUser): Promise<AclTable> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new AclFileError(`${path}: cannot read the ACL file: ${why}`);
  }
  const parsed = parseUserLines(text.replace(/^\uFEFF/, "").split(/\r?\n/), dflt);
  if ("problems" in parsed) {
    throw new AclFileError(aclFileErrorText(path, parsed.problems).trimEnd());
  }
  return parsed.table;
}

/**
 * The setup of a replica from its settings (`requirepass`, `aclfile`).
 *
 * @throws {AclFileError} when the aclfile cannot be read or has errors.
 */
export async function aclSetup(settings: Settings): Promise<AclSetup> {
  const aclFile = settings.aclfile?.path;
  const hash = settings.requirepass === "" ? undefined : hashPassword(settings.requirepass);
  const dflt = (): AclUser => {
    const u = defaultUser();
    if (hash !== undefined) applyRule(u, `#${hash}`);
    return u;
  };
  if (aclFile === undefined) {
    return {
      table: new Map([["default", dflt()]]),
      defaultUser: dflt,
      secured: hash !== undefined,
    };
  }
  return {
    table: await readAclFile(aclFile, dflt),
    defaultUser: dflt,
    file: aclFile,
    secured: true,
  };
}

/** Writes `table` to `path` as `ACL LIST` lines, atomically (temporary file, fsync, rename). */
export async function saveAclFile(path: string, table: AclTable): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  const text = describeTable(table).map((l) => `${l}\n`).join("");
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
}
