/**
 * The replica list the core is constructed with: the founding configuration.
 *
 * @module
 */
import type { ClusterConfig } from "../config/config.ts";
import type { ReplicaId } from "../core/types.ts";

/**
 * The replicas the core of replica `id` starts with. A founding replica: every replica of the
 * config file. A joining replica (`--join`): only itself, since it is in no replicated
 * configuration yet; it learns the configuration from the cluster (the core must not count this
 * list as a cluster of one: the membership change of the core decides how a joiner waits).
 */
export function foundingReplicas(config: ClusterConfig, id: ReplicaId, join: boolean): ReplicaId[] {
  return join ? [id] : config.replicas.map((r) => r.id);
}
