/**
 * `deno task node <id> <config> [--join] [--verbose] [--help]`: runs one replica in this process.
 *
 * Exit codes: 0 after `--help` or a clean stop on SIGINT/SIGTERM; 2 for bad usage or a bad config
 * (reported before anything listens); 1 when a port cannot be bound, the data directory is
 * damaged, or the replica fails (its log cannot be written: it stops instead of going on).
 *
 * @module
 */
import { dirname, join } from "node:path";
import {
  type ClusterConfig,
  clusterId,
  ConfigError,
  findReplica,
  groupConfig,
  loadConfig,
  type ReplicaAddress,
  type Sharding,
} from "../config/config.ts";
import { resolveClusterId } from "../runtime/cluster_identity.ts";
import { readDataDirIdentity } from "../storage/data_dir.ts";
import { discoverClusterId, DiscoveryError } from "../net/cluster_discovery.ts";
import {
  fsyncOption,
  integerInRange,
  intOption,
  parseCommandLine,
} from "../config/command_line.ts";
import { DiskStorage } from "../runtime/disk_storage.ts";
import { DataDirError } from "../storage/data_dir.ts";
import { CorruptionError } from "../storage/record_codec.ts";
import type { FsyncMode } from "../storage/wal.ts";
import { DEFAULT_FAILURE_TIMEOUT_MS, ListenError, ReplicaHost } from "../runtime/replica_host.ts";
import { type LoadingListeners, startLoadingListeners } from "../runtime/loading_listeners.ts";
import { LoadProgress } from "../runtime/load_progress.ts";
import { KeyFileError, loadClusterKey } from "../config/cluster_key.ts";
import {
  DEFAULT_CHECKPOINT_EVERY,
  DEFAULT_SNAPSHOT_EVERY,
  DEFAULT_SNAPSHOT_GROWS_FROM,
  DEFAULT_SNAPSHOT_LOG_PERCENT,
} from "../core/replica.ts";
import { loadTlsMaterial } from "../config/tls_files.ts";
import { TlsContext } from "../net/tls.ts";
import { AclFileError, aclSetup } from "../runtime/acl_setup.ts";
import { Logger } from "../log/logger.ts";
import { READY_EVENT } from "../log/format.ts";
import {
  LIMIT_LOG_INTERVAL_MS,
  MAX_FAILURE_TIMEOUT_MS,
  MIN_FAILURE_TIMEOUT_MS,
} from "../limits.ts";
import { LAMPORTKV_VERSION } from "../version.ts";
import {
  clientAuthOf,
  describeSettings,
  resolveSettings,
  SETTING_NAMES,
  SettingError,
  type SettingLine,
  type Settings,
} from "../config/settings.ts";

/** The `--help` text. */
export const NODE_USAGE = `Usage: deno task node <id> <config> [options]
       ./lamportkv node <id> <config> [options]

Runs replica <id> of the cluster described by the config file <config>: it serves RESP clients
on its client port and talks to the other replicas on its peer port, as listed in the file.

The cluster id is created once: a new replica founding the cluster computes it from the config
file, a replica joining it (--join) learns it from the replicas of the file, and both keep it in
the data directory. From then on the replica uses the kept id whatever the file says, so replica
lines may be added, removed or re-addressed without restarting from scratch.

Options:
  --join                     join a running cluster instead of founding one: with an empty data
                             directory, learn the cluster id from the replicas of <config>
                             (authenticated with the cluster key, when there is one); also for a
                             replica whose data directory was lost after the file was edited.
                             <id> need not be in the file; if it is not, give its address with:
  --host <host>              the address it listens on and the others reach it at
  --client-port <port>       its port for clients (RESP)
  --peer-port <port>         its port for the other replicas
  --http-port <port>         its HTTP port (optional: no HTTP listener without it)
                             (with --join and <id> in the file, the file's line is used)
  --data-dir <dir>           where this replica keeps its write-ahead log and snapshots
                             (default: data/<id> beside the config file). A directory of
                             another replica or another cluster is refused.
  --fsync <mode>             when log writes reach the disk (default batch):
                               always  an fsync for every record before it counts
                               batch   one fsync per event-loop turn for everything written in
                                       it (group commit); nothing is acknowledged before it
                               never   no fsync: survives a process crash, not a power loss
  --snapshot-every <n>       write a snapshot and truncate the log every n deliveries (default
                             ${DEFAULT_SNAPSHOT_EVERY}; with ${DEFAULT_SNAPSHOT_GROWS_FROM} keys or more, see the next option);
                             members further behind than that catch up by snapshot, and up to
                             twice that many delivered entries are kept in memory for them; also
                             once the log after the last snapshot takes 64 MiB and as many bytes
                             as that snapshot (large values). 0: never (the log grows without
                             end: for tests)
  --snapshot-log-percent <p> with ${DEFAULT_SNAPSHOT_GROWS_FROM} keys or more, also wait as many deliveries as p% of
                             the keys between snapshots (default ${DEFAULT_SNAPSHOT_LOG_PERCENT}; 0..1000; 0: --snapshot-every
                             alone). A snapshot costs in proportion to the keys, and the log after
                             it is what a restart re-delivers: lower restarts faster but spends
                             more on snapshots per write
  --checkpoint-every <n>     compare state digests with the other replicas every n deliveries
                             (default ${DEFAULT_CHECKPOINT_EVERY}); a replica that differs from the majority stops
  --failure-timeout <ms>     suspect a peer after this long without a message (default ${DEFAULT_FAILURE_TIMEOUT_MS};
                             100..60000). Use the same value on every replica.
  --listen-peer-port <port>  listen for peers on this port instead of the config's peer port,
                             when something (a proxy, a NAT) forwards the config's address here
  --log-format text|json     log lines as text (default) or one JSON object per line; each
                             has the time (ISO-8601), level, replica id, event and message
  --log-level <level>        error, warn, info (default) or debug: the least severe events
                             written (errors go to stderr, the rest to stdout)
  -v, --verbose              --log-level debug: also log every delivered operation (its
                             command name) and client connection
  --clock-offset-ms <ms>     for tests: add this to the wall clock stamped on operations (a host
                             whose clock is off; expiry stays consistent, see README)
  --<setting> <value>        a setting, overriding the config file's setting line:
                               maxclients, timeout, proto-max-bulk-len,
                               client-query-buffer-limit, client-output-buffer-limit,
                               maxmemory, maxmemory-clients, client-request-timeout,
                               peer-hello-timeout, cluster-key-file
                             (Redis's names, meanings and size syntax, e.g. 512mb), and TLS:
                               tls-cert-file, tls-key-file, tls-ca-cert-file (PEM files; in
                               the config file relative to it), tls-auth-clients yes|no|optional,
                               tls-replication yes|no, and the security settings
                               requirepass <password> and aclfile <path> (an ACL file in
                               Redis's syntax); log-format and log-level (as above) may be
                               setting lines too
  --cluster-key-file <path>  the cluster key (make one with "deno task keygen <path>"): peers
                             then prove to each other that they hold it, and every peer frame
                             carries a MAC. All replicas need the same key, or none. On a
                             config file line the path is relative to the config file.
  -h, --help                 show this help and exit

Stop it with Ctrl-C (SIGINT) or SIGTERM. With TLS, SIGHUP reads the certificate, key and CA
files again: new connections use them (a bad file is logged and the old ones are kept).`;

/** Parsed command line of the node entry point. */
export interface NodeArgs {
  id: number;
  configPath: string;
  verbose: boolean;
  /** Milliseconds of silence before a peer is suspected. */
  failureTimeoutMs: number;
  /** Peer listening port override (undefined: the config's). */
  listenPeerPort?: number;
  /** Data directory (undefined: data/<id> beside the config file). */
  dataDir?: string;
  fsync: FsyncMode;
  /** Deliveries between snapshots (also the entries kept in memory for lagging members). */
  snapshotEvery: number;
  /** From 100,000 keys on, the least deliveries between snapshots, as a percentage of the keys. */
  snapshotLogPercent: number;
  /** Deliveries between the checkpoints whose digests replicas compare. */
  checkpointEvery: number;
  /** Settings given as `--<name> <value>` (they win over the config file's). */
  settings: SettingLine[];
  /** Added to the wall clock stamped on operations (tests of clock skew). */
  clockOffsetMs: number;
  /** Join a running cluster (`--join`) instead of founding one. */
  join: boolean;
  /** With `--join`: this replica's address when its id is not in the config file. */
  address: { host?: string; clientPort?: number; peerPort?: number; httpPort?: number };
}

/** An optional integer option (undefined when not given). */
function optionalInt(name: string, text: string | undefined, min: number, max: number) {
  return text === undefined ? undefined : intOption(name, text, min, max, UsageError);
}

/** A signed integer option within ±1 day in ms. */
function signedInt(name: string, text: string): number {
  const n = /^-?[0-9]{1,9}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || Math.abs(n) > 86_400_000) {
    throw new UsageError(`--${name} must be an integer from -86400000 to 86400000, got "${text}"`);
  }
  return n;
}

/** One string option per setting. */
const SETTING_FLAGS: Record<string, { type: "string" }> = Object.fromEntries(
  SETTING_NAMES.map((name) => [name, { type: "string" as const }]),
);

/** A command line that cannot be run. */
export class UsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses the node command line; `"help"` when help was asked for.
 *
 * @throws {UsageError} on unknown options, missing or extra arguments, or a bad id.
 */
export function parseNodeArgs(args: string[]): NodeArgs | "help" {
  const parsed = parseCommandLine(args, {
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
    "failure-timeout": { type: "string" },
    "listen-peer-port": { type: "string" },
    "data-dir": { type: "string" },
    fsync: { type: "string" },
    "snapshot-every": { type: "string" },
    "snapshot-log-percent": { type: "string" },
    "checkpoint-every": { type: "string" },
    "clock-offset-ms": { type: "string" },
    join: { type: "boolean" },
    host: { type: "string" },
    "client-port": { type: "string" },
    "peer-port": { type: "string" },
    "http-port": { type: "string" },
    ...SETTING_FLAGS,
  }, UsageError);
  if (parsed.values.help) return "help";
  const [idText, configPath, ...extra] = parsed.positionals;
  if (idText === undefined || configPath === undefined) {
    throw new UsageError("expected a replica id and a config file");
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const id = integerInRange(idText, 1);
  if (id === null) {
    throw new UsageError(`replica id must be a positive integer, got "${idText}"`);
  }
  const failureTimeoutMs = optionalInt(
    "failure-timeout",
    parsed.values["failure-timeout"],
    MIN_FAILURE_TIMEOUT_MS,
    MAX_FAILURE_TIMEOUT_MS,
  ) ??
    DEFAULT_FAILURE_TIMEOUT_MS;
  const listenPeerPort = optionalInt(
    "listen-peer-port",
    parsed.values["listen-peer-port"],
    1,
    65535,
  );
  const join = parsed.values.join ?? false;
  const host = parsed.values.host;
  if (host !== undefined && (host === "" || /\s/.test(host))) {
    throw new UsageError(`--host must be a host name or address, got "${host}"`);
  }
  const address = {
    host,
    clientPort: optionalInt("client-port", parsed.values["client-port"], 1, 65535),
    peerPort: optionalInt("peer-port", parsed.values["peer-port"], 1, 65535),
    httpPort: optionalInt("http-port", parsed.values["http-port"], 1, 65535),
  };
  const given = ADDRESS_FLAGS.filter((f) => parsed.values[f] !== undefined);
  if (!join && given.length > 0) {
    throw new UsageError(
      `--${given[0]} is only for a joining replica (--join) that is not in the config file`,
    );
  }
  return {
    id,
    configPath,
    verbose: parsed.values.verbose ?? false,
    failureTimeoutMs,
    listenPeerPort,
    dataDir: parsed.values["data-dir"],
    fsync: fsyncOption(parsed.values.fsync ?? "batch", UsageError),
    // 0: never (tests that need a log holding everything); else at least 10.
    snapshotEvery: parsed.values["snapshot-every"] === "0"
      ? 0
      : optionalInt("snapshot-every", parsed.values["snapshot-every"], 10, 100_000_000) ??
        DEFAULT_SNAPSHOT_EVERY,
    snapshotLogPercent:
      optionalInt("snapshot-log-percent", parsed.values["snapshot-log-percent"], 0, 1000) ??
        DEFAULT_SNAPSHOT_LOG_PERCENT,
    checkpointEvery:
      optionalInt("checkpoint-every", parsed.values["checkpoint-every"], 1, 100_000_000) ??
        DEFAULT_CHECKPOINT_EVERY,
    clockOffsetMs: parsed.values["clock-offset-ms"] === undefined
      ? 0
      : signedInt("clock-offset-ms", parsed.values["clock-offset-ms"]),
    settings: SETTING_NAMES.flatMap((name) => {
      const value = (parsed.values as Record<string, unknown>)[name];
      return typeof value === "string" ? [{ name, value, where: `--${name}` }] : [];
    }),
    join,
    address,
  };
}

/** The flags giving a joining replica's address. */
const ADDRESS_FLAGS = ["host", "client-port", "peer-port", "http-port"] as const;

/**
 * This replica's address: its line of the config file when there is one; else, for a joining
 * replica, the address flags; `ignored` says whether address flags were given but the file's line
 * is used.
 *
 * @throws {ConfigError} when the id is not in the file and the replica does not join.
 * @throws {UsageError} when it joins, is not in the file, and an address flag is missing.
 */
export function replicaAddress(
  config: ClusterConfig,
  args: Pick<NodeArgs, "id" | "join" | "address">,
): { address: ReplicaAddress; ignored: boolean } {
  const { id, join, address } = args;
  const line = config.replicas.find((r) => r.id === id);
  const given = Object.values(address).some((v) => v !== undefined);
  if (line !== undefined) return { address: line, ignored: given };
  if (!join) findReplica(config, id); // throws the usual "no replica with id" error
  const missing = [
    address.host === undefined ? "--host" : undefined,
    address.clientPort === undefined ? "--client-port" : undefined,
    address.peerPort === undefined ? "--peer-port" : undefined,
  ].filter((f) => f !== undefined);
  if (missing.length > 0) {
    throw new UsageError(
      `replica ${id} is not in ${config.path}: to join, give its address with --host, ` +
        `--client-port and --peer-port (and optionally --http-port); missing ${missing.join(", ")}`,
    );
  }
  const { host, clientPort, peerPort, httpPort } = address;
  return {
    address: httpPort === undefined
      ? { id, host: host!, clientPort: clientPort!, peerPort: peerPort! }
      : { id, host: host!, clientPort: clientPort!, peerPort: peerPort!, httpPort },
    ignored: false,
  };
}

/**
 * The replica set replica `id` belongs to: for a file with groups, its group's config
 * (`groupConfig`) and the whole file as `sharding`; else the file as it is.
 *
 * @throws {ConfigError} when the file has groups and `id` has no line in it (a replica of a
 * sharded cluster must be listed, with its group, even when it joins).
 */
export function replicaGroup(
  file: ClusterConfig,
  id: number,
): { config: ClusterConfig; sharding?: Sharding } {
  if (file.groups === undefined) return { config: file };
  // In a file with groups every line has one (parseConfig).
  const group = findReplica(
    file,
    id,
    "in a file with groups every replica, a joining one too, needs its line with group=<name>",
  ).group!;
  return { config: groupConfig(file, group), sharding: { config: file, group } };
}

/**
 * The settings of this replica: the config file's lines, then the flags (which win).
 *
 * @throws {SettingError} naming the file and line, or the flag, at fault.
 */
export function resolveNodeSettings(file: SettingLine[], flags: SettingLine[]): Settings {
  return resolveSettings([...file, ...flags]);
}

/** `data/<id>` beside the config file. */
export function defaultDataDir(configPath: string, id: number): string {
  return join(dirname(configPath), "data", String(id));
}

/** Runs the node entry point with `args`; returns only for `--help` and usage/config errors. */
export async function main(args: string[]): Promise<number> {
  let parsed: NodeArgs | "help";
  try {
    parsed = parseNodeArgs(args);
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${NODE_USAGE}`);
    return 2;
  }
  if (parsed === "help") {
    console.log(NODE_USAGE);
    return 0;
  }
  const { id, configPath, verbose, failureTimeoutMs, listenPeerPort, fsync } = parsed;

  let host: ReplicaHost;
  // The host stops itself when its log fails; main then ends with status 1.
  let failed: () => void = () => {};
  const failure = new Promise<number>((resolve) => failed = () => resolve(1));
  let storage: DiskStorage | undefined;
  let loading: LoadingListeners | undefined;
  let tls: TlsContext | undefined;
  let tlsSettings: Settings | undefined;
  let log: Logger;
  try {
    // With groups, this replica's replica set is its group: everything below sees its lines only.
    const { config, sharding } = replicaGroup(await loadConfig(configPath), id);
    const { address, ignored } = replicaAddress(config, parsed);
    const settings = resolveNodeSettings(config.settings ?? [], parsed.settings);
    log = new Logger({
      id,
      level: verbose ? "debug" : settings.logLevel,
      format: settings.logFormat,
    });
    log.addSecret(settings.requirepass);
    const dir = parsed.dataDir ?? defaultDataDir(configPath, id);
    const of = sharding === undefined ? "" : ` of group ${sharding.group}`;
    log.info("node.start", `starting lamportkv ${LAMPORTKV_VERSION} replica ${id}${of}`, {
      version: LAMPORTKV_VERSION,
      config: configPath,
      ...(sharding === undefined ? {} : { group: sharding.group }),
      dataDir: dir,
      fsync,
      failureTimeoutMs,
      snapshotEvery: parsed.snapshotEvery,
      snapshotLogPercent: parsed.snapshotLogPercent,
      checkpointEvery: parsed.checkpointEvery,
      settings: describeSettings(settings),
    });
    let clusterKey: Uint8Array | undefined;
    if (settings.clusterKeyFile !== undefined) {
      const { path, where } = settings.clusterKeyFile;
      try {
        clusterKey = await loadClusterKey(path);
      } catch (err) {
        if (!(err instanceof KeyFileError)) throw err;
        throw new SettingError(`${where}: cluster-key-file: ${err.message}`);
      }
    }
    const material = await loadTlsMaterial(settings);
    tls = material === undefined ? undefined : new TlsContext(material);
    tlsSettings = settings;
    const acl = await aclSetup(settings);
    if (ignored) {
      log.warn(
        "node.address_flags_ignored",
        `replica ${id} is in ${configPath}: its line there is used, not --host/--*-port`,
      );
    }
    const peerTls = settings.tlsReplication ? tls : undefined;
    const { cluster, source } = await resolveClusterId({
      dir,
      replica: id,
      join: parsed.join,
      founding: () => clusterId(config),
      learn: async () =>
        (await discoverClusterId({
          self: id,
          peers: config.replicas,
          clusterKey,
          log,
          tls: peerTls === undefined ? undefined : () => {
            const m = peerTls.material;
            return { caCerts: m.ca === undefined ? [] : [m.ca], cert: m.cert, key: m.key };
          },
        })).cluster,
    });
    const from = {
      stored: "kept in the data directory",
      founding: "of the founding config file",
      learned: "learned from the cluster",
    }[source];
    log.info("node.cluster_id", `cluster id ${cluster} (${from})`, { cluster, source });
    // The founding replicas: kept in the data directory once written (the file may be edited
    // later); a founding replica's new directory keeps the file's; a joiner has none.
    const kept = readDataDirIdentity(dir)?.founding;
    const founding = kept ?? (parsed.join ? undefined : config.replicas);
    // Restoring a large data directory holds this thread for a while: meanwhile a worker answers
    // LOADING on the client port and 503 on the HTTP port (closed again before they open below).
    loading = await startLoadingListeners({
      id,
      hostname: address.host,
      clientPort: address.clientPort,
      ...(address.httpPort === undefined ? {} : { httpPort: address.httpPort }),
      maxClients: settings.maxclients,
      ...(tls === undefined
        ? {}
        : { tls: { material: tls.material, clientAuth: clientAuthOf(settings) } }),
    });
    if (!loading.listening) {
      log.debug("node.loading_listeners", `no LOADING listeners: ${loading.failure}`);
    }
    const listeners = loading;
    const progress = new LoadProgress((loaded, total) => listeners.progress(loaded, total));
    storage = await DiskStorage.open({ dir, cluster, replica: id, fsync, log, founding, progress });
    host = new ReplicaHost({
      onRestoreProgress: (restored, keys) => progress.restored(restored, keys),
      config,
      founding,
      id,
      address,
      cluster,
      join: parsed.join,
      verbose,
      log,
      storage,
      onFatal: () => failed(),
      failureTimeoutMs,
      core: {
        snapshotEvery: parsed.snapshotEvery,
        snapshotLogPercent: parsed.snapshotLogPercent,
        checkpointEvery: parsed.checkpointEvery,
      },
      listen: listenPeerPort === undefined ? undefined : { peerPort: listenPeerPort },
      settings,
      acl,
      clockOffsetMs: parsed.clockOffsetMs,
      clusterKey,
      tls,
      sharding,
    });
  } catch (err) {
    await storage?.close();
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${NODE_USAGE}`);
      return 2;
    }
    if (
      err instanceof ConfigError || err instanceof DataDirError || err instanceof SettingError ||
      err instanceof AclFileError || err instanceof DiscoveryError
    ) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    if (err instanceof CorruptionError) {
      log!.error(
        "node.cannot_start",
        `cannot start: ${err.message}. ` +
          `The data directory is damaged before its last record reported durable; refusing to ` +
          `guess. Restore it ` +
          `from a backup, or move it away to let this replica rejoin empty (the others hold the ` +
          `data as long as a majority of them is intact).`,
      );
      return 1;
    }
    throw err;
  } finally {
    await loading?.close();
  }

  try {
    await host.start();
  } catch (err) {
    if (err instanceof ListenError) {
      const hint = err.inUse ? " (is another replica or program using that port?)" : "";
      log.error("node.cannot_listen", `error: ${err.message}${hint}`, { address: err.address });
      return 1;
    }
    throw err;
  }
  const c = host.clientAddr;
  const p = host.peerAddr;
  const h = host.httpAddr;
  const clients = `${c.hostname}:${c.port}`;
  const peers = `${p.hostname}:${p.port}`;
  const http = h === undefined ? undefined : `http://${h.hostname}:${h.port}/`;
  log.info(
    READY_EVENT,
    `ready: clients ${clients}, peers ${peers}` + (http === undefined ? "" : `, http ${http}`),
    { clients, peers, http },
  );
  if (tls !== undefined && tlsSettings !== undefined) reloadOnHangup(log, tls, tlsSettings);
  // Counts of rate-limited events are written once a flood has stopped, not only at its next one.
  const flusher = setInterval(() => log.flushSuppressed(), LIMIT_LOG_INTERVAL_MS);
  Deno.unrefTimer(flusher);

  const stopped = new Promise<number>((resolve) => {
    let stopping: Deno.Signal | undefined;
    const onSignal = (signal: Deno.Signal) => {
      // Ctrl-C under `deno task cluster` brings SIGINT from the terminal and SIGTERM from the
      // supervisor: a different second signal is ignored, the same one twice forces an exit.
      if (stopping === signal) {
        log.error("node.exit", `${signal} again, exiting now`, { signal });
        Deno.exit(1);
      }
      if (stopping !== undefined) return;
      stopping = signal;
      log.info("node.stopping", `${signal}, stopping`, { signal });
      host.stop().then(() => resolve(0), (err) => {
        log.error("node.stop_failed", `error while stopping: ${err}`);
        resolve(1);
      });
    };
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      try {
        Deno.addSignalListener(signal, () => onSignal(signal));
      } catch {
        // SIGTERM cannot be listened for on Windows.
      }
    }
  });
  return await Promise.race([stopped, failure]);
}

/** On SIGHUP, reads the TLS files again; new connections use them (a bad one is only logged). */
function reloadOnHangup(log: Logger, tls: TlsContext, settings: Settings): void {
  let reloading = false;
  const reload = async () => {
    if (reloading) return;
    reloading = true;
    try {
      const material = await loadTlsMaterial(settings);
      if (material !== undefined) tls.update(material);
      log.info("tls.reloaded", "SIGHUP: TLS certificate files reloaded for new connections");
    } catch (err) {
      log.error(
        "tls.reload_failed",
        `SIGHUP: keeping the TLS certificates in use: ${(err as Error).message}`,
      );
    } finally {
      reloading = false;
    }
  };
  try {
    Deno.addSignalListener("SIGHUP", () => void reload());
  } catch {
    // no SIGHUP on Windows
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
