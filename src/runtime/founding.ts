/**
 * The replica list the core is constructed with: the founding configuration.
 *
 * @module
 */
import type { ClusterConfig } from "../config/config.ts";
import type { ReplicaId } from "../core/types.ts";

/**
 * The replicas the core of replica `id` starts with. A founding replica: every replica of the
 * config file. A joining replica (`--join`): none, since it is in no replicated configuration
 * yet: it announces itself to the config file's replicas and learns the configuration in force
 * from the snapshot its first view gives it (see src/core/README.md, Membership changes).
 */
export function foundingReplicas(config: ClusterConfig, id: ReplicaId, join: boolean): ReplicaId[] {
  return join ? [] : config.replicas.map((r) => r.id);
}
