/**
 * A replica's data directory and the identity file that says which replica of which cluster it
 * belongs to, so a replica started with the wrong `--data-dir` refuses to start instead of mixing
 * another replica's (or another cluster's) log into its own.
 *
 * The cluster id is created once, when the cluster is founded (or learned from the cluster by a
 * joining replica), and kept here: once a directory has an identity, its cluster id is the
 * replica's, whatever the config file says later (replica lines may be added, removed or
 * re-addressed). {@link readDataDirIdentity} reads it without creating anything.
 *
 * The founding replicas (ids and addresses of the config file a founding replica first started
 * with) are kept beside it: the replica set is replicated state that starts from them, and a
 * replica replaying its log after the file was edited must start from the same set as the others.
 * (Directories written before this field have none; their replica uses the config file.)
 *
 * Layout:
 *
 * ```text
 * <dir>/IDENTITY         {"format":1,"cluster":"<cluster id>","replica":<id>,"founding":[...]}
 *                        (written atomically; `founding`: the founding replicas, see below)
 * <dir>/LOCK             held (flock) by the replica using the directory
 * <dir>/wal-*.log        the write-ahead log's segments (wal.ts, wal_segments.ts)
 * <dir>/wal-next.tmp     the next segment, preallocated ahead of use
 * <dir>/wal-synced.mark  how far the log is known durable (wal_mark.ts)
 * <dir>/snapshot.bin     the latest snapshot (snapshot_file.ts)
 * ```
 *
 * Temporary files (`<name>.tmp`) are leftovers of a crash during an atomic write and are never
 * read.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { syncDirectory, TEMP_SUFFIX, writeFileAtomically } from "./snapshot_file.ts";

/** Which replica of which cluster a data directory belongs to. */
export interface DataDirIdentity {
  /** The cluster id (the founding config's `clusterId`, kept from then on). */
  cluster: string;
  /** The replica id. */
  replica: number;
  /** The founding replicas (absent: a joining replica, or a directory of an older release). */
  founding?: FoundingReplica[];
}

/** One founding replica as the identity file keeps it. */
export interface FoundingReplica {
  id: number;
  host: string;
  clientPort: number;
  peerPort: number;
  httpPort?: number;
}

/** The paths of the files in a data directory. */
export interface DataDirPaths {
  /** The directory itself, as given. */
  dir: string;
  /** The snapshot file. */
  snapshot: string;
}

/** The data directory cannot be used: it belongs to someone else, or it is not one of ours. */
export class DataDirError extends Error {
  /** Builds the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataDirError";
  }
}

/** Name of the identity file. */
export const IDENTITY_FILE = "IDENTITY";
/** Name of the snapshot file. */
export const SNAPSHOT_FILE = "snapshot.bin";
/** The identity file format this code writes and understands. */
export const DATA_DIR_FORMAT = 1;

/**
 * Opens the data directory `dir` for `identity`. On first use it creates the directory
 * (recursively) and the identity file; later it checks that the identity file matches.
 *
 * @throws {DataDirError} when `dir` belongs to another replica or cluster, has an identity file
 * of an unknown format or that cannot be read, is not empty but has no identity file (not a
 * lamportkv data directory), or is not a directory.
 */
export function openDataDir(dir: string, identity: DataDirIdentity): DataDirPaths {
  if (typeof identity.cluster !== "string" || identity.cluster === "") {
    throw new TypeError("data directory identity: cluster must be a non-empty string");
  }
  if (!Number.isSafeInteger(identity.replica) || identity.replica < 1) {
    throw new TypeError(
      `data directory identity: replica must be a positive integer, not ${identity.replica}`,
    );
  }
  const created = createDirectory(dir);
  const identityPath = join(dir, IDENTITY_FILE);
  const text = readIdentityText(dir, identityPath);
  if (text === undefined) {
    const foreign = listEntries(dir).filter((name) => name !== IDENTITY_FILE + TEMP_SUFFIX);
    if (foreign.length > 0) {
      const shown = foreign.slice(0, 3).join(", ") + (foreign.length > 3 ? ", ..." : "");
      throw new DataDirError(
        `data directory ${dir} is not empty (${shown}) and has no ${IDENTITY_FILE} file: ` +
          `not a lamportkv data directory; use an empty or new directory`,
      );
    }
    const record: Record<string, unknown> = {
      format: DATA_DIR_FORMAT,
      cluster: identity.cluster,
      replica: identity.replica,
    };
    if (identity.founding !== undefined) record.founding = identity.founding;
    writeFileAtomically(identityPath, new TextEncoder().encode(JSON.stringify(record) + "\n"));
    if (created) syncDirectory(dirname(dir));
  } else {
    checkIdentity(dir, identityPath, text, identity);
  }
  return { dir, snapshot: join(dir, SNAPSHOT_FILE) };
}

/** Creates `dir` if missing; returns whether it did. */
function createDirectory(dir: string): boolean {
  try {
    if (!Deno.statSync(dir).isDirectory) {
      throw new DataDirError(`data directory ${dir} is not a directory`);
    }
    return false;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw wrap(e, `cannot use data directory ${dir}`);
  }
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw wrap(e, `cannot create data directory ${dir}`);
  }
  return true;
}

/** The identity file's text, or undefined if there is none. */
function readIdentityText(dir: string, identityPath: string): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Deno.readFileSync(identityPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw wrap(e, `data directory ${dir}: identity file ${identityPath} is unreadable`);
  }
}

function listEntries(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
  } catch (e) {
    throw wrap(e, `cannot list data directory ${dir}`);
  }
}

/**
 * The identity kept in `dir`, or undefined when `dir` or its identity file does not exist yet.
 * Creates nothing.
 *
 * @throws {DataDirError} when the identity file cannot be read, is not valid, or has an unknown
 * format version.
 */
export function readDataDirIdentity(dir: string): DataDirIdentity | undefined {
  const identityPath = join(dir, IDENTITY_FILE);
  const text = readIdentityText(dir, identityPath);
  return text === undefined ? undefined : parseIdentity(dir, identityPath, text);
}

/** The identity in `text` (the identity file's contents), validated. */
function parseIdentity(dir: string, identityPath: string, text: string): DataDirIdentity {
  const unreadable = (why: string) =>
    new DataDirError(`data directory ${dir}: identity file ${identityPath} is unreadable: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw unreadable(e instanceof Error ? e.message : String(e));
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw unreadable("not a JSON object");
  }
  const { format, cluster, replica, founding } = parsed as Record<string, unknown>;
  if (format !== DATA_DIR_FORMAT) {
    throw new DataDirError(
      `data directory ${dir}: identity file ${identityPath} has unknown format version ` +
        `${JSON.stringify(format)} (this lamportkv understands version ${DATA_DIR_FORMAT})`,
    );
  }
  if (typeof cluster !== "string" || cluster === "") throw unreadable("no cluster id");
  if (typeof replica !== "number" || !Number.isSafeInteger(replica) || replica < 1) {
    throw unreadable("no valid replica id");
  }
  if (founding === undefined) return { cluster, replica };
  const port = (p: unknown) =>
    Number.isSafeInteger(p) && (p as number) >= 1 && (p as number) <= 65535;
  if (
    !Array.isArray(founding) || founding.length === 0 ||
    !founding.every((f) =>
      f !== null && typeof f === "object" && Number.isSafeInteger(f.id) && f.id >= 1 &&
      typeof f.host === "string" && port(f.clientPort) && port(f.peerPort) &&
      (f.httpPort === undefined || port(f.httpPort))
    )
  ) throw unreadable("malformed founding replicas");
  return { cluster, replica, founding: founding as FoundingReplica[] };
}

function checkIdentity(
  dir: string,
  identityPath: string,
  text: string,
  expected: DataDirIdentity,
): void {
  const { cluster, replica } = parseIdentity(dir, identityPath, text);
  if (cluster !== expected.cluster) {
    throw new DataDirError(
      `data directory ${dir} belongs to cluster ${cluster}, not ${expected.cluster}: ` +
        `wrong --data-dir, or a data directory of another cluster`,
    );
  }
  if (replica !== expected.replica) {
    throw new DataDirError(
      `data directory ${dir} belongs to replica ${replica}, not ${expected.replica}`,
    );
  }
}

function wrap(e: unknown, context: string): Error {
  if (e instanceof DataDirError) return e;
  return new DataDirError(`${context}: ${e instanceof Error ? e.message : String(e)}`, {
    cause: e,
  });
}
