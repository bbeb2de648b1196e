/**
 * Which cluster a replica belongs to: the cluster id is created once and kept in the data
 * directory's identity file (`src/storage/data_dir.ts`), so that editing the config file (adding,
 * removing or re-addressing replica lines) never changes it.
 *
 * - A data directory with an identity: its cluster id, whatever the config file says now.
 * - An empty data directory of a founding replica: the fingerprint of the config file
 *   (`clusterId`), so the replicas of a new cluster started from one file agree without talking.
 * - An empty data directory of a joining replica (`--join`): the id learned from the cluster's
 *   replicas (`src/net/cluster_discovery.ts`).
 *
 * The caller then opens the data directory with the id ({@link DiskStorage.open}), which stores it
 * in a new directory.
 *
 * @module
 */
import { DataDirError, readDataDirIdentity } from "../storage/data_dir.ts";

/** Where a replica's cluster id came from. */
export type ClusterIdSource = "stored" | "founding" | "learned";

/** What {@link resolveClusterId} needs. */
export interface ClusterIdOptions {
  /** The data directory (may not exist yet). */
  dir: string;
  /** This replica's id. */
  replica: number;
  /** The replica joins a running cluster (`--join`) rather than founding one. */
  join: boolean;
  /** The founding config's fingerprint (`clusterId(config)`), for a founding replica. */
  founding: () => string;
  /** Asks the cluster for its id, for a joining replica (called only then). */
  learn: () => Promise<string>;
}

/**
 * The cluster id this replica uses, and where it came from.
 *
 * @throws {DataDirError} when the data directory's identity is unreadable or names another
 * replica; or whatever `learn` throws.
 */
export async function resolveClusterId(
  options: ClusterIdOptions,
): Promise<{ cluster: string; source: ClusterIdSource }> {
  const stored = readDataDirIdentity(options.dir);
  if (stored !== undefined) {
    if (stored.replica !== options.replica) {
      throw new DataDirError(
        `data directory ${options.dir} belongs to replica ${stored.replica}, ` +
          `not ${options.replica}`,
      );
    }
    return { cluster: stored.cluster, source: "stored" };
  }
  if (!options.join) return { cluster: options.founding(), source: "founding" };
  return { cluster: await options.learn(), source: "learned" };
}
