/**
 * The founding configuration a replica's state starts from.
 *
 * @module
 */
import type { ClusterConfig, ReplicaAddress } from "../config/config.ts";

/**
 * The founding replicas of the cluster, as replica `options` sees them: those kept in its data
 * directory (`options.founding`, the file it was first started with), else the config file's; a
 * joining replica (`--join`) has none: it is in no replicated configuration yet, announces itself
 * to the config file's replicas and learns the replica set in force from the snapshot its first
 * view gives it (see src/core/README.md, Membership changes).
 */
export function foundingReplicas(
  config: ClusterConfig,
  options: { join?: boolean; founding?: readonly ReplicaAddress[] },
): ReplicaAddress[] | undefined {
  if (options.founding !== undefined) return [...options.founding];
  return options.join ? undefined : config.replicas;
}
