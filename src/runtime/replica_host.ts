/**
 * Runs one replica: drives the pure core (`Replica` over a `KvStore`) with real sockets and timers.
 *
 * - Inputs become events: peer frames (`peer`), client operations (`request`), a 10 ms timer
 *   (`tick`), and an outgoing link coming up (`link-up`).
 * - Actions are carried out in order: `send` appends the message to the peer's outbox for this
 *   turn (dropped if the link is down), `reply` answers the client request with that id, `deliver`
 *   is only logged with `verbose`.
 * - End of turn: after any input, one flush is scheduled (a microtask, so everything processed in
 *   the same turn shares it): it calls `step({type:"flush"})` (coalesced acks) and writes each
 *   peer's outbox as one frame.
 * - Reject: a peer message the core refused (`Replica.check`) closes the incoming connection it
 *   came on; nothing of it reached the core's state.
 * - Link-up: the link calls back synchronously right after connecting (hello queued); the host
 *   calls `step({type:"link-up"})` and writes the sends for that peer at once, before anything
 *   else reaches that link.
 *
 * @module
 */
import type { ClusterConfig, ReplicaAddress, Sharding } from "../config/config.ts";
import { clusterId, findReplica } from "../config/config.ts";
import {
  acceptRecordOf,
  DEFAULT_SUSPECT_TICKS,
  Replica,
  timingsForSuspicion,
} from "../core/replica.ts";
import type {
  Action,
  Command,
  Event,
  Outcome,
  PeerMessage,
  ReplicaId,
  ReplicaOptions,
  ReplicaStatus,
} from "../core/types.ts";
import { KvStore } from "../kv/store.ts";
import { ClientServer } from "../net/client_server.ts";
import { errorText } from "../net/conn_writer.ts";
import { PeerLink } from "../net/peer_link.ts";
import { PeerLinks } from "./peer_links.ts";
import { foundingReplicas } from "./founding.ts";
import { MemoryStorage, type ReplicaStorage } from "./storage.ts";
import { PeerServer } from "../net/peer_server.ts";
import { yieldToLoop } from "../yield_to_loop.ts";
import {
  clientAuthOf,
  DEFAULT_SETTINGS,
  describeSettings,
  type Settings,
} from "../config/settings.ts";
import { REDACTED } from "../log/redact.ts";
import type { TlsContext } from "../net/tls.ts";
import { DEFAULT_RESP_LIMITS } from "../net/resp.ts";
import type { AclHost } from "../net/session.ts";
import { describeTable } from "../kv/acl.ts";
import { AclFileError, type AclSetup, openSetup, readAclFile, saveAclFile } from "./acl_setup.ts";
import { HttpServer } from "../http/http_server.ts";
import { healthRoutes, notReadyReason, type StatusReport } from "../http/health.ts";
import { dashboardRoutes } from "../http/dashboard.ts";
import { restRoutes } from "../http/rest.ts";
import { HttpLimits } from "../http/request_limits.ts";
import { LAMPORTKV_VERSION } from "../version.ts";
import { OpStats } from "./op_stats.ts";
import { metricsRoutes, type MetricsSource, ReplicaMetrics } from "../http/metrics.ts";
import type { PeerReport } from "../http/health.ts";
import { CommandStats } from "./command_stats.ts";
import { ViewHistory } from "./view_history.ts";
import { LoopLagMonitor } from "./loop_lag.ts";
import { ByteTraffic } from "../net/traffic.ts";
import { type Log, Logger } from "../log/logger.ts";
import { viewCause, type ViewPeople } from "./view_cause.ts";
import { formatNotifyFlags } from "../kv/notify.ts";
import { BlockedClients } from "./blocked_clients.ts";
import { ReplicaSetHost } from "./replica_set_host.ts";
import { Shards } from "./shards.ts";
import { clusterCommand, type ClusterCommandDeps } from "./cluster_command.ts";
import { foundingReplicaSet } from "../kv/replica_set.ts";
import { initialSlotMap } from "../kv/slot_map.ts";
import { MemoryGuard } from "./memory_guard.ts";

/** A byte string for a log line: quoted, escaped, and cut to 40 characters. */
function clip(s: string): string {
  const shown = s.length > 40 ? `${s.slice(0, 40)}...(${s.length} bytes)` : s;
  return JSON.stringify(shown);
}

/**
 * Commands whose arguments or result may hold a password: the debug `deliver` line shows only
 * their name (as Redis's MONITOR hides AUTH, HELLO and ACL SETUSER). A transaction (`__exec`) may
 * hold any of them.
 */
const SECRET_BEARING = new Set(["acl", "__acl", "auth", "hello", "config", "__config", "__exec"]);

/** The lowercase command name of a submitted operation (internal ones start with `__`). */
function commandName(cmd: Command): string {
  const name = (cmd.op.argv[0] ?? "").toLowerCase();
  // A command sent after ASKING (`__ASKING <stamp> <command> ...`) counts as itself.
  return name === "__asking" ? (cmd.op.argv[2] ?? "").toLowerCase() : name;
}

/** A listener could not be bound (port in use, address not available, no permission). */
export class ListenError extends Error {
  /** Which listener failed. */
  readonly role: "clients" | "peers" | "http";
  /** The address that could not be bound, `host:port`. */
  readonly address: string;
  /** True when the port is already in use. */
  readonly inUse: boolean;

  /** Builds the error from the `Deno.listen` failure `cause`. */
  constructor(role: "clients" | "peers" | "http", address: string, cause: unknown) {
    const inUse = cause instanceof Deno.errors.AddrInUse;
    const reason = inUse ? "address already in use" : errorText(cause);
    super(`cannot listen for ${role} on ${address}: ${reason}`, { cause });
    this.name = "ListenError";
    this.role = role;
    this.address = address;
    this.inUse = inUse;
  }
}

/**
 * A replica out of service longer than this before a view was away (crashed, partitioned), not
 * just changing views: the view's cause says it rejoined.
 */
const REJOINED_AFTER_MS = 3000;

/** The host's tick period in ms: logical time advances one tick of the core this often. */
export const DEFAULT_TICK_MS = 10;

/** The failure timeout (ms) of a host with the default tick and the core's default suspicion. */
export const DEFAULT_FAILURE_TIMEOUT_MS = DEFAULT_SUSPECT_TICKS * DEFAULT_TICK_MS;

/** Options of a {@link ReplicaHost}. */
export interface ReplicaHostOptions {
  /** The cluster config; this replica listens where its own line says (or {@link address}). */
  config: ClusterConfig;
  /** This replica's id (must be in the config unless {@link address} is given). */
  id: ReplicaId;
  /**
   * This replica's own address, for a joining replica whose id is not in the config file
   * (default: its line of the config).
   */
  address?: ReplicaAddress;
  /**
   * The cluster id (the one kept in the data directory, `src/runtime/cluster_identity.ts`).
   * Default: the config's fingerprint (`clusterId(config)`), as for a new founding replica.
   */
  cluster?: string;
  /**
   * This replica joins a running cluster (`--join`) instead of founding it: the core starts
   * from {@link foundingReplicas} of a joiner. Default false.
   */
  join?: boolean;
  /**
   * The founding replicas kept in the data directory (see `src/storage/data_dir.ts`); default:
   * the config file's (none when joining).
   */
  founding?: readonly ReplicaAddress[];
  /** Log per-operation detail (deliveries, client connections). */
  verbose?: boolean;
  /** Where events are logged (default: a text {@link Logger} on stdout at `info`). */
  log?: Log;
  /** Tick period in ms (default {@link DEFAULT_TICK_MS}). */
  tickMs?: number;
  /** Core tunables (ticks). */
  core?: Omit<ReplicaOptions, "id" | "replicas">;
  /**
   * Milliseconds of silence after which a peer is suspected; the core derives its other failure
   * timings from it ({@link timingsForSuspicion}). Overrides those in `core`.
   */
  failureTimeoutMs?: number;
  /** Override the listening ports (tests use 0); peers are still reached at their config ports. */
  listen?: { clientPort?: number; peerPort?: number; httpPort?: number };
  /** Reconnect back-off bounds of the peer links (default 50 ms .. 1 s). */
  backoff?: { minMs?: number; maxMs?: number };
  /** Durable storage, already opened (default: in memory, nothing survives the process). */
  storage?: ReplicaStorage;
  /**
   * Called once when the replica cannot go on because its storage failed (a log write or fsync
   * error): by then it has stopped (it acknowledges nothing more, listeners and links are closed).
   * Default: nothing beyond the log line.
   */
  onFatal?: (error: Error) => void;
  /**
   * Told how far restoring the recovered snapshot has come (`restored` of `keys` keys) while the
   * host is constructed: a restart's loading progress.
   */
  onRestoreProgress?: (restored: number, keys: number) => void;
  /**
   * Added to this host's wall clock for the times stamped on operations (tests: a replica whose
   * clock is off; expiry must stay consistent). Default 0.
   */
  clockOffsetMs?: number;
  /** Resource limits and TLS settings (default {@link DEFAULT_SETTINGS}). */
  settings?: Settings;
  /**
   * The cluster key (`cluster-key-file`): peer connections are then mutually authenticated and
   * every frame carries a MAC (`src/net/peer_auth.ts`). Default: none, peers are not keyed.
   */
  clusterKey?: Uint8Array;
  /**
   * The TLS material (loaded from the settings' files): given, the client port speaks TLS, and
   * with `tls-replication yes` the peer port and links too. Absent: plain TCP everywhere.
   */
  tls?: TlsContext;
  /** This replica's own users and aclfile (default: no security settings). */
  acl?: AclSetup;
  /**
   * A sharded cluster (a config file with `group=`): the whole file and this replica's group.
   * {@link config} is then this group's config (`groupConfig`); keys of slots other groups own
   * are redirected (MOVED). Absent: one replica set owning every slot.
   */
  sharding?: Sharding;
}

/** Ticks between checks whether expired keys are due for the background sweep. */
const SWEEP_CHECK_TICKS = 10;
/** Most keys one sweep operation deletes. */
const SWEEP_BATCH = 1000;

/** One replica process's worth of sockets and timers around the core. */
export class ReplicaHost {
  /** This replica's id. */
  readonly id: ReplicaId;
  readonly #self: ReplicaAddress;
  readonly #verbose: boolean;
  readonly #log: Log;
  readonly #tickMs: number;
  readonly #replica: Replica;
  readonly #store: KvStore;
  readonly #clockOffsetMs: number;
  #ticks = 0;
  /** A background expiry sweep is in the order and not answered yet. */
  #sweeping = false;
  /** This replica's own users (enforced until the replicated table is initialised). */
  readonly #aclSetup: AclSetup;
  /** An `__ACL INIT` is in the order and not answered yet. */
  #aclIniting = false;
  readonly #peerServer: PeerServer;
  readonly #clientServer: ClientServer;
  /** When client writes are refused for memory (`maxmemory`). */
  readonly #memory: MemoryGuard;
  /** The HTTP port (monitoring, REST, dashboard); absent when the config gives none. */
  readonly #httpServer: HttpServer | undefined;
  readonly #startedAt = Date.now();
  /** The clients of blocking commands (BLPOP, ...) waiting at this replica. */
  readonly #blocked: BlockedClients;
  /** The replica set: peer links follow the core's peers, REPLICASET, promotions, refusals. */
  readonly #replicaSet: ReplicaSetHost;
  /** The shards (replica groups) of the cluster: CLUSTER's replies and MOVED's targets. */
  readonly #shards: Shards;
  /** Client operations answered and their latency (status, dashboard, metrics). */
  readonly opStats: OpStats = new OpStats();
  /** Monitoring (`/metrics`, `/status`): per-command counts, views, loop lag, bytes per port. */
  readonly #commandStats = new CommandStats();
  readonly #viewHistory = new ViewHistory();
  /** The settings in force for `/status` (names as in the config file, secrets hidden). */
  readonly #settingsReport: Record<string, string>;
  readonly #loopLag: LoopLagMonitor;
  readonly #traffic = { client: new ByteTraffic(), peer: new ByteTraffic() };
  /** The outgoing links, one per peer (see {@link setPeers}). */
  readonly #links: PeerLinks;
  /** Every peer's address and ours, ascending by id. */
  #addresses: ReplicaAddress[];
  /** Messages for each peer queued during this turn; written as one frame per peer at flush. */
  readonly #outbox = new Map<ReplicaId, PeerMessage[]>();
  /** Client requests waiting for their `reply` action. */
  readonly #pending = new Map<number, (outcome: Outcome) => void>();
  #nextRequestId = 1;
  #flushScheduled = false;
  readonly #storage: ReplicaStorage;
  readonly #onFatal: (error: Error) => void;
  /** A sync is running; another is needed after it when records were appended meanwhile. */
  #syncing = false;
  /** The highest `synced` reported to the core. */
  #syncedReported = 0;
  /** The last serving state logged (see #logStanding). */
  #lastStanding = "";
  /** Who was in the last view this replica served in (undefined: none yet). */
  #lastView: ViewPeople | undefined;
  /** When this replica last stopped serving (for the cause of the next view it serves in). */
  #outSince = 0;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #state: "new" | "starting" | "started" | "stopped" = "new";
  /** Peers authenticate with a cluster key. */
  readonly #keyed: boolean;

  /**
   * Builds the replica and its servers; nothing listens until {@link ReplicaHost.start}.
   *
   * @throws {ConfigError} when `id` is not in the config and no `address` is given.
   */
  constructor(options: ReplicaHostOptions) {
    const { config, id } = options;
    const founding = foundingReplicas(config, options);
    this.id = id;
    this.#self = options.address === undefined
      ? findReplica(config, id)
      : { ...options.address, id };
    this.#addresses = withSelf(config.replicas, this.#self);
    this.#verbose = options.verbose ?? false;
    this.#log = options.log ?? new Logger({ id });
    this.#tickMs = options.tickMs ?? DEFAULT_TICK_MS;
    const cluster = options.cluster ?? clusterId(config);
    this.#storage = options.storage ?? new MemoryStorage();
    this.#onFatal = options.onFatal ?? (() => {});
    const timings: Partial<ReturnType<typeof timingsForSuspicion>> =
      options.failureTimeoutMs === undefined
        ? {}
        : timingsForSuspicion(options.failureTimeoutMs / this.#tickMs);
    // The failure timeout the core will use (the timings win over options.core, as passed below).
    const suspectTicks = timings.suspectTicks ?? options.core?.suspectTicks ??
      DEFAULT_SUSPECT_TICKS;
    const failureMs = suspectTicks * this.#tickMs;
    this.#loopLag = new LoopLagMonitor({
      stallMs: failureMs,
      onStall: (lagMs) =>
        this.#log.limited(
          "warn",
          "node.stalled",
          "event-loop",
          `the event loop was held ${(lagMs / 1000).toFixed(1)} s, past the failure timeout ` +
            `(${failureMs} ms): peers may suspect this replica and change views. With a large ` +
            "data set this is a full garbage collection of the heap (see README, Limits); " +
            "raise --failure-timeout on every replica",
          { lagMs: Math.round(lagMs), failureTimeoutMs: failureMs },
        ),
    });
    this.#clockOffsetMs = options.clockOffsetMs ?? 0;
    this.#keyed = options.clusterKey !== undefined;
    const settings = options.settings ?? DEFAULT_SETTINGS;
    this.#settingsReport = Object.fromEntries(
      Object.entries(describeSettings(settings)).map((
        [name, v],
      ) => [name, name === "requirepass" ? REDACTED : String(v)]),
    );
    const groups = options.sharding?.config.groups;
    this.#store = new KvStore(
      undefined,
      settings.notifyKeyspaceEvents,
      founding === undefined ? undefined : foundingReplicaSet(founding),
      // A sharded group's slot state starts from the config's epoch-0 map.
      options.sharding === undefined || groups === undefined
        ? undefined
        : { group: options.sharding.group, map: initialSlotMap(groups) },
    );
    this.#aclSetup = options.acl ?? openSetup();
    this.#store.onRestoreProgress = options.onRestoreProgress;
    this.#replica = new Replica(
      {
        ...options.core,
        ...timings,
        id,
        replicas: founding?.map((r) => r.id) ?? [],
        seeds: config.replicas.map((r) => r.id).filter((r) => r !== id),
        recovered: this.#storage.takeRecovered(),
      },
      this.#store,
    );
    this.#store.onRestoreProgress = undefined;
    this.#blocked = new BlockedClients({
      id,
      submit: (cmd, respond) => this.#submit(cmd, respond),
      now: () => this.#now(),
      waiters: () => this.#store.waiters,
      members: () => {
        const s = this.#replica.standing;
        return s.state === "normal" ? [...s.members] : null;
      },
      leads: () => this.#replica.leads,
    });
    this.#replicaSet = new ReplicaSetHost({
      id,
      replicaSet: () => this.#store.membership,
      membership: () => this.#replica.membership,
      standing: () => this.#replica.standing,
      peers: () => this.#replica.peers,
      waitingToJoin: () => this.#replica.waitingToJoin(),
      caughtUpLearners: () => this.#replica.caughtUpLearners(),
      submit: (cmd, respond) => this.#submit(cmd, respond),
      now: () => this.#now(),
      setPeers: (addresses) => this.setPeers(addresses),
      seeds: config.replicas,
      logChange: (message, fields) => this.#log.info("membership.changed", message, fields),
    });
    this.#shards = new Shards({
      id,
      rows: () => this.#replicaSet.rows(),
      standing: () => this.#replica.standing,
      membership: () => this.#replica.membership,
      delivered: () => this.#replica.status().delivered,
      clusterId: cluster,
      sharding: options.sharding,
      slots: () => this.#store.slots,
      loadMap: (args) => this.#loadSlotMap(args),
    });
    const routing = this.#shards.routing();
    const clusterDeps: ClusterCommandDeps = {
      id,
      shards: this.#shards,
      serving: () => this.#replica.standing.state === "normal",
      submit: (cmd, respond) => this.#submit(cmd, respond),
      now: () => this.#now(),
      sharded: routing !== undefined,
    };
    const log = this.#log;
    const tls = options.tls;
    this.opStats.observe(this.#commandStats.observer);
    const peerTls = settings.tlsReplication ? tls : undefined;

    this.#peerServer = new PeerServer({
      hostname: this.#self.host,
      port: options.listen?.peerPort ?? this.#self.peerPort,
      self: id,
      cluster,
      log,
      onMessages: (from, msgs) => this.#input({ type: "peer", from, msgs }),
      prepare: (from, msgs, documents) => this.#prepareStates(from, msgs, documents),
      onProgress: (from) => this.#input({ type: "peer-alive", from }),
      helloTimeoutMs: settings.peerHelloTimeout * 1000,
      clusterKey: options.clusterKey,
      traffic: this.#traffic.peer,
      // Replicas authenticate each other: a peer must present a certificate signed by the CA.
      tls: peerTls === undefined ? undefined : {
        context: peerTls,
        clientAuth: "yes",
        handshakeTimeoutMs: settings.peerHelloTimeout * 1000,
      },
    });
    this.#memory = new MemoryGuard({ maxmemory: settings.maxmemory });
    this.#clientServer = new ClientServer({
      hostname: this.#self.host,
      port: options.listen?.clientPort ?? this.#self.clientPort,
      log,
      verbose: this.#verbose,
      limits: { ...DEFAULT_RESP_LIMITS, maxBulkBytes: settings.protoMaxBulkLen },
      maxClients: settings.maxclients,
      queryBufferLimit: settings.clientQueryBufferLimit,
      outputBufferLimit: settings.clientOutputBufferLimit,
      pubsubOutputBufferLimit: settings.clientOutputBufferLimitPubsub,
      idleTimeoutMs: settings.timeout * 1000,
      requestTimeoutMs: settings.clientRequestTimeout * 1000,
      maxMemoryClients: settings.maxmemoryClients,
      memory: this.#memory,
      tls: tls === undefined ? undefined : { context: tls, clientAuth: clientAuthOf(settings) },
      traffic: this.#traffic.client,
      handler: {
        submit: (cmd, respond, gone) => {
          const startedAt = this.opStats.now();
          const answer = (outcome: Outcome) => {
            const code = outcome.ok ? undefined : outcome.code;
            this.opStats.record(commandName(cmd), outcome.ok, startedAt, code);
            respond(outcome);
          };
          const refused = this.#replicaSet.refusal();
          if (refused !== null) return answer(refused);
          if (BlockedClients.isBlocking(cmd)) this.#blocked.submit(cmd, answer, gone);
          else this.#submit(cmd, answer);
        },
        status: () => {
          // INFO's lamportkv section also says how stale a READONLY read here may be: how long
          // ago this replica last heard the member of its view it heard from least recently.
          const stale = this.#replica.staleness();
          const status = this.#replica.status();
          return stale === null
            ? status
            : { ...status, readonly_staleness_ms: stale * this.#tickMs };
        },
        now: () => this.#now(),
        expires: () => this.#store.keyspace.expiring,
        blockedClients: () => this.#blocked.size,
        acl: () => this.#aclHost(),
        notifyKeyspaceEvents: () => formatNotifyFlags(this.#store.notifyFlags),
        replicaSet: () => (argv, respond) => this.#replicaSet.command(argv, respond),
        cluster: () => (argv, respond) => clusterCommand(clusterDeps, argv, respond),
        routing: () => routing,
      },
    });
    // Each replica publishes what the order delivers (PUBLISH, keyspace notifications) to its
    // own subscribers, at the operation's place in the order.
    this.#store.onPublish = (channel, message) => this.#clientServer.publish(channel, message);
    const httpPort = options.listen?.httpPort ?? this.#self.httpPort;
    const httpLimits = new HttpLimits();
    this.#httpServer = httpPort === undefined ? undefined : new HttpServer({
      hostname: this.#self.host,
      port: httpPort,
      log,
      limits: httpLimits,
      routes: [
        ...healthRoutes({ report: () => this.report() }),
        ...metricsRoutes(new ReplicaMetrics(this.#metricsSource())),
        ...restRoutes(this.#clientServer, httpLimits),
        ...dashboardRoutes(),
      ],
    });
    this.#links = new PeerLinks({
      self: id,
      create: (peer) =>
        new PeerLink({
          self: id,
          peer: peer.id,
          hostname: peer.host,
          port: peer.peerPort,
          cluster,
          log,
          minBackoffMs: options.backoff?.minMs,
          maxBackoffMs: options.backoff?.maxMs,
          onUp: () => this.#linkUp(peer.id),
          clusterKey: options.clusterKey,
          traffic: this.#traffic.peer,
          handshakeTimeoutMs: settings.peerHelloTimeout * 1000,
          tls: peerTls === undefined ? undefined : () => {
            const m = peerTls.material;
            return { caCerts: m.ca === undefined ? [] : [m.ca], cert: m.cert, key: m.key };
          },
        }),
    });
    this.#links.update(config.replicas);
  }

  /**
   * Makes the peers this replica talks to those of `addresses`: the replicas the core talks to
   * (ours may be listed; it is skipped for links, and our own address stays the one we listen
   * on). Links to new peers are opened, those of peers no longer listed closed, and a
   * peer whose host or peer port changed is dialled at its new address. `/status`, `/metrics` and
   * the dashboard report this set from now on. Incoming connections are not affected: the peer
   * server accepts any replica of the cluster, and the core decides about its messages.
   *
   * @throws {Error} when an id is listed twice.
   */
  setPeers(addresses: readonly ReplicaAddress[]): void {
    const change = this.#links.update(addresses);
    this.#addresses = withSelf(addresses, this.#self);
    for (const peer of [...change.removed, ...change.readdressed]) this.#outbox.delete(peer);
    if (change.added.length + change.removed.length + change.readdressed.length > 0) {
      this.#log.info(
        "peer.set",
        `peers now ${this.#links.peers.join(",") || "none"}` +
          ` (added ${change.added.join(",") || "none"}, removed ` +
          `${change.removed.join(",") || "none"}, re-addressed ` +
          `${change.readdressed.join(",") || "none"})`,
        { peers: this.#links.peers, ...change },
      );
    }
  }

  /** Says where writes will be refused for memory; warns when the heap limit lowers maxmemory. */
  #logMemoryLimit(): void {
    const m = this.#memory;
    const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
    const fields = { limit: m.limit, maxmemory: m.maxmemory, heapLimit: m.heapLimit };
    if (m.cappedByHeap) {
      this.#log.warn(
        "memory.limit",
        `maxmemory ${mib(m.maxmemory)} is above what the JavaScript heap limit (${
          mib(m.heapLimit)
        }) admits: writes are refused above ${mib(m.limit)} of used memory; raise the heap ` +
          "limit with DENO_V8_FLAGS=--max-old-space-size=<MiB>",
        fields,
      );
      return;
    }
    this.#log.info(
      "memory.limit",
      `writes that add data are refused (OOM) above ${mib(m.limit)} of used memory (${
        m.maxmemory > 0 ? "maxmemory" : `no maxmemory; heap limit ${mib(m.heapLimit)}`
      })`,
      fields,
    );
  }

  /** The peers this replica links to now, ascending. */
  get peers(): ReplicaId[] {
    return this.#links.peers;
  }

  /** The bound client address (after {@link ReplicaHost.start}). */
  get clientAddr(): Deno.NetAddr {
    return this.#clientServer.addr;
  }

  /** The bound peer address (after {@link ReplicaHost.start}). */
  get peerAddr(): Deno.NetAddr {
    return this.#peerServer.addr;
  }

  /** Peers whose outgoing link is up, and peers with an accepted incoming connection. */
  connectedPeers(): { outgoing: ReplicaId[]; incoming: ReplicaId[] } {
    const outgoing = this.#links.links().filter((l) => l.up).map((l) => l.peer);
    return { outgoing: outgoing.sort((a, b) => a - b), incoming: this.#peerServer.connectedPeers };
  }

  /** The bound HTTP address (after {@link ReplicaHost.start}); undefined without an HTTP port. */
  get httpAddr(): Deno.NetAddr | undefined {
    return this.#httpServer?.addr;
  }

  /** The core's status. */
  status(): ReplicaStatus {
    return this.#replica.status();
  }

  /** Everything `GET /status` reports. */
  report(): StatusReport {
    const s = this.#replica.status();
    const reason = notReadyReason(s, s.voters.length);
    const storage = this.#storage.stats?.();
    return {
      id: this.id,
      version: LAMPORTKV_VERSION,
      uptimeSeconds: Math.floor((Date.now() - this.#startedAt) / 1000),
      state: s.state,
      ready: reason === null,
      ...(reason === null ? {} : { reason }),
      view: s.view,
      members: s.members,
      learners: s.learners,
      role: s.role,
      voters: s.voters,
      delivered: s.delivered,
      holdback: s.holdback,
      unacked: s.unacked,
      pending: s.pending,
      clock: s.clock,
      keys: s.keys,
      replicas: this.#addresses.map((r) => ({ ...r })),
      peers: this.#peerReports(),
      ops: { total: this.opStats.total, errors: this.opStats.errors },
      latency: this.opStats.recent(),
      ...(storage === undefined ? {} : {
        storage: {
          dir: storage.dir,
          walBytes: storage.walBytes,
          walSegments: storage.walSegments,
          snapshotBytes: storage.snapshotBytes,
          snapshotIndex: storage.snapshotIndex,
        },
      }),
      viewChanges: this.#viewHistory.list(),
      settings: this.#settingsReport,
    };
  }

  /**
   * Every peer (the peer set, {@link setPeers}): links,
   * silence and acknowledgement lag (null where the core has no record of the peer).
   */
  #peerReports(): PeerReport[] {
    const { outgoing, incoming } = this.connectedPeers();
    const health = new Map(this.#replica.peerHealth().map((p) => [p.id, p]));
    return this.#links.peers.map((id) => {
      const p = health.get(id);
      const silent = p?.silentTicks ?? null;
      return {
        id,
        linkUp: outgoing.includes(id),
        incoming: incoming.includes(id),
        lastHeardMs: silent === null ? null : silent * this.#tickMs,
        ackedBehind: p?.ackedBehind ?? null,
      };
    });
  }

  /** What `/metrics` reads when scraped. */
  #metricsSource(): MetricsSource {
    const storage = this.#storage.stats === undefined ? undefined : () => this.#storage.stats!();
    return {
      version: LAMPORTKV_VERSION,
      replicas: () => this.#addresses.map((r) => r.id),
      status: () => this.#replica.status(),
      ready: () => {
        const s = this.#replica.status();
        return notReadyReason(s, s.voters.length) === null;
      },
      viewChanges: () => this.#viewHistory.count,
      connectedClients: () => this.#clientServer.connections,
      peers: () => this.#peerReports(),
      commands: this.#commandStats,
      ...(storage === undefined ? {} : { storage }),
      traffic: this.#traffic,
      loopLag: this.#loopLag,
      memory: this.#memory,
    };
  }

  /**
   * Binds both listeners, then starts the peer links and the tick timer. Resolves once listening.
   *
   * @throws {ListenError} when a port cannot be bound (nothing is left open).
   */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("ReplicaHost.start called twice");
    this.#state = "starting";
    const host = this.#self.host;
    try {
      await this.#peerServer.open();
    } catch (err) {
      this.#state = "stopped";
      throw new ListenError("peers", `${host}:${this.#self.peerPort}`, err);
    }
    try {
      await this.#clientServer.open();
    } catch (err) {
      this.#state = "stopped";
      await this.#peerServer.close();
      throw new ListenError("clients", `${host}:${this.#self.clientPort}`, err);
    }
    try {
      await this.#httpServer?.open();
    } catch (err) {
      this.#state = "stopped";
      await Promise.all([this.#peerServer.close(), this.#clientServer.close()]);
      throw new ListenError("http", `${host}:${this.#self.httpPort}`, err);
    }
    if (this.#state !== "starting") {
      // stop() was called meanwhile: it found nothing to close yet.
      await Promise.all([
        this.#peerServer.close(),
        this.#clientServer.close(),
        this.#httpServer?.close(),
      ]);
      return;
    }
    this.#state = "started";
    const c = this.clientAddr;
    const p = this.peerAddr;
    const h = this.#httpServer?.addr;
    this.#log.debug(
      "node.listening",
      `listening for clients on ${c.hostname}:${c.port}, peers on ${p.hostname}:${p.port}` +
        (h === undefined ? "" : `, http on ${h.hostname}:${h.port}`),
    );
    this.#logMemoryLimit();
    if (this.#keyed) {
      this.#log.info(
        "peer.keyed",
        "peer connections are authenticated with the cluster key (cluster-key-file)",
      );
    }
    this.#links.start();
    this.#loopLag.start();
    this.#shards.start();
    this.#ticker = setInterval(() => this.#onTick(), this.#tickMs);
  }

  /** Closes listeners, links and connections, clears timers; resolves when all are closed. */
  async stop(): Promise<void> {
    const wasStarted = this.#state === "started";
    this.#state = "stopped";
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#loopLag.stop();
    this.#shards.stop();
    this.#outbox.clear();
    this.#pending.clear();
    this.#blocked.stop();
    await Promise.all([
      this.#peerServer.close(),
      this.#clientServer.close(),
      this.#httpServer?.close(),
      this.#links.close(),
    ]);
    await this.#storage.close();
    if (wasStarted) this.#log.info("node.stopped", "stopped");
  }

  /** Wall-clock ms stamped on operations (with the test offset). */
  #now(): number {
    return Date.now() + this.#clockOffsetMs;
  }

  #onTick(): void {
    this.#input({ type: "tick" });
    if (++this.#ticks % SWEEP_CHECK_TICKS === 0) {
      this.#maybeSweep();
      this.#maybeInitAcl();
      if (this.#state === "started") this.#blocked.reconcile();
    }
  }

  /** The users sessions enforce, and this replica's aclfile. */
  #aclHost(): AclHost {
    const setup = this.#aclSetup;
    const table = () => this.#store.acl.table ?? setup.table;
    const file = setup.file;
    return {
      table,
      initialised: () => this.#store.acl.table !== null,
      initArgv: () => this.#aclInitArgv(),
      save: file === undefined ? undefined : async () => {
        try {
          await saveAclFile(file, table());
        } catch (err) {
          this.#log.error("acl.save_failed", `ACL SAVE: cannot write ${file}: ${errorText(err)}`);
          throw err;
        }
      },
      load: file === undefined ? undefined : async () => {
        try {
          const loaded = await readAclFile(file, setup.defaultUser);
          return { lines: describeTable(loaded) };
        } catch (err) {
          if (!(err instanceof AclFileError)) throw err;
          return {
            error: `${err.message} WARNING: ACL errors detected, no change to the previously ` +
              `active ACL rules was performed`,
          };
        }
      },
    };
  }

  /**
   * A replica with security settings initialises the replicated user table from its own users
   * while it was never initialised: one `__ACL INIT` at a time; the first in the order wins.
   */
  #maybeInitAcl(): void {
    if (!this.#aclSetup.secured || this.#aclIniting || this.#state !== "started") return;
    if (this.#store.acl.table !== null) return;
    if (this.#replica.standing.state !== "normal") return;
    this.#aclIniting = true;
    this.#submitInternal(this.#aclInitArgv(), (outcome) => {
      this.#aclIniting = false;
      if (outcome.ok && outcome.result === 1) {
        this.#log.info(
          "acl.initialised",
          "initialised the replicated user table from this replica's settings",
        );
      }
    });
  }

  /** The operation that initialises the replicated user table from this replica's users. */
  #aclInitArgv(): string[] {
    return ["__ACL", "INIT", ...describeTable(this.#aclSetup.table)];
  }

  /** Submits `cmd` to the core; `respond` gets its outcome (REFUSED once stopping). */
  #submit(cmd: Command, respond: (outcome: Outcome) => void): void {
    if (this.#state !== "started") {
      respond({ ok: false, code: "REFUSED", message: "replica is shutting down" });
      return;
    }
    const requestId = this.#nextRequestId++;
    this.#pending.set(requestId, respond);
    this.#input({ type: "request", id: requestId, cmd });
  }

  /**
   * Submits `CLUSTER LOADSLOTMAP <args>` (a newer map the group probe read from the control
   * group) when this replica leads its view (one replica of the group is enough; a duplicate
   * would be a no-op); resolves when answered (a refusal is logged).
   */
  #loadSlotMap(args: string[]): Promise<void> {
    if (!this.#replica.leads) return Promise.resolve();
    return new Promise((resolve) => {
      this.#submitInternal(["__RESHARD", "LOADSLOTMAP", ...args], (outcome) => {
        const reply = outcome.ok ? outcome.result : { err: outcome.code };
        if (reply === 1) {
          this.#log.info(
            "slotmap.loaded",
            `adopted the control group's slot map of epoch ${args[0]}`,
            {
              epoch: args[0],
            },
          );
        } else if (reply !== null && typeof reply === "object" && "err" in reply) {
          this.#log.warn(
            "slotmap.refused",
            `slot map of epoch ${args[0]} not adopted: ${reply.err}`,
            {
              epoch: args[0],
            },
          );
        }
        resolve();
      });
    });
  }

  /** Submits an operation of the replica's own (no client asked for it), stamped now. */
  #submitInternal(argv: string[], respond: (outcome: Outcome) => void): void {
    this.#submit({ op: { argv, time: this.#now() } }, respond);
  }

  /**
   * Expired keys are removed through the order: the replica that leads its view (the core says
   * which, {@link Replica.leads}) sends one `__EXPIRE` operation when a key's time has passed by
   * max(ordered time, its clock), the time reads compare TTLs with (reads already hide such
   * keys). The ordered time matters when it runs ahead of this replica's clock (another replica's
   * clock is ahead): the keys' expiry times are then ahead too, and this clock alone would not
   * reach them until it caught up.
   */
  #maybeSweep(): void {
    if (this.#sweeping || this.#state !== "started" || !this.#replica.leads) return;
    const next = this.#store.keyspace.nextExpiry();
    if (next === null || next > Math.max(this.#now(), this.#store.time)) return;
    this.#sweeping = true;
    this.#submitInternal(["__EXPIRE", String(SWEEP_BATCH)], () => (this.#sweeping = false));
  }

  /**
   * Before peer messages go to the core: a view change that hands this replica a state (an
   * install with a snapshot) is restored first, in slices with the event loop running between
   * them (`KvStore.preparing`), and the record that accepting it logs is encoded the same way
   * (`encodingAhead`; a message that came streamed on its own is logged as the documents it came
   * in, which only need framing). The core's check of that state then answers at once, its log
   * append only queues bytes, and meanwhile this replica goes on ticking and sending heartbeats
   * instead of falling silent for a second or more per million keys (a learner silent for ten
   * failure timeouts is dropped from the view, and would receive the state again). The sender
   * counts as heard meanwhile, as during a streamed message; its later frames wait
   * (`PeerServer`). Undefined when there is nothing to restore; never rejects (what cannot be
   * restored or encoded is left to the core, which refuses it or fails the same way).
   */
  #prepareStates(
    from: ReplicaId,
    msgs: PeerMessage[],
    documents: readonly Uint8Array[] | undefined,
  ): Promise<void> | undefined {
    const installs = msgs.filter((m): m is Extract<PeerMessage, { type: "newview" }> =>
      m.type === "newview" && m.install.snapshot !== undefined
    );
    if (installs.length === 0) return undefined;
    // The documents are those of the install's own frame only when it is the frame's one message.
    return this.#prepareInSlices(from, installs, msgs.length === 1 ? documents : undefined);
  }

  async #prepareInSlices(
    from: ReplicaId,
    installs: Extract<PeerMessage, { type: "newview" }>[],
    documents: readonly Uint8Array[] | undefined,
  ): Promise<void> {
    const store = this.#store;
    const storage = this.#storage;
    function* slices(): Generator<unknown> {
      for (const msg of installs) {
        yield* store.preparing(msg.install.snapshot!.state);
        yield* storage.encodingAhead?.(acceptRecordOf(msg), documents) ?? [];
      }
    }
    for (const _ of slices()) {
      this.#input({ type: "peer-alive", from });
      await yieldToLoop();
      if (this.#state !== "started") return;
    }
  }

  /** Feeds one input event to the core, carries out its actions, and schedules the flush. */
  #input(event: Event): void {
    if (this.#state !== "started") return;
    this.#carryOut(this.#replica.step(event));
    this.#logStanding();
    this.#scheduleFlush();
  }

  /** One log line whenever the replica starts or stops serving, or installs another view. */
  #logStanding(): void {
    const { state, view } = this.#replica.standing;
    const serving = state === "normal";
    const key = serving ? `normal ${view}` : "out";
    if (key === this.#lastStanding) return;
    const wasServing = this.#lastStanding.startsWith("normal");
    this.#lastStanding = key;
    if (!serving && wasServing) this.#outSince = Date.now();
    if (serving) {
      const { members, learners, delivered } = this.#replica.status();
      // Out for longer than a view change takes: it was away, not just changing views.
      const rejoined = !wasServing && Date.now() - this.#outSince > REJOINED_AFTER_MS;
      const cause = viewCause(this.#lastView, { members, learners }, rejoined);
      this.#lastView = { members, learners };
      this.#viewHistory.installed(view, members, Date.now(), cause.text);
      this.#log.info(
        "view.installed",
        `serving in view ${view}: members ${members.join(",")}` +
          (learners.length > 0 ? `, learners ${learners.join(",")}` : "") +
          `, delivered ${delivered} (${cause.text})`,
        {
          view,
          members,
          learners,
          delivered,
          cause: cause.text,
          joined: cause.joined,
          left: cause.left,
        },
      );
    } else if (wasServing) {
      this.#log.info("view.lost", `not serving (${state}): view change, or no majority in reach`, {
        state,
      });
    }
  }

  #linkUp(peer: ReplicaId): void {
    if (this.#state !== "started") return;
    // Anything still queued for this peer was meant for the previous connection, which is gone;
    // the core resends what the peer has not acknowledged.
    this.#outbox.delete(peer);
    this.#carryOut(this.#replica.step({ type: "link-up", peer }));
    this.#writeOutbox(peer);
    this.#scheduleFlush();
  }

  #carryOut(actions: Action[]): void {
    this.#carryOutActions(actions);
    // The log grew large in bytes against the last snapshot (large values): the core decides
    // whether to take one (not with --snapshot-every 0, not during a view change).
    if (
      this.#state !== "stopped" && actions.some((a) => a.type === "persist") &&
      this.#storage.snapshotDue?.() === true
    ) {
      this.#carryOutActions(this.#replica.step({ type: "snapshot-due" }));
    }
    this.#replicaSet.afterStep();
    // Waiters handed something (or dropped) in this step: their owners look at them.
    this.#blocked.afterStep();
  }

  #carryOutActions(actions: Action[]): void {
    for (const action of actions) {
      switch (action.type) {
        case "send": {
          if (!this.#links.get(action.to)?.up) break; // link down: dropped, the core resends
          let queue = this.#outbox.get(action.to);
          if (queue === undefined) this.#outbox.set(action.to, queue = []);
          queue.push(action.msg);
          break;
        }
        case "reply": {
          const respond = this.#pending.get(action.id);
          this.#pending.delete(action.id);
          respond?.(action.outcome);
          break;
        }
        case "persist":
          this.#storage.append(action.record);
          break;
        case "snapshot":
          // Written in the background; the log it covers is dropped only once it is durable.
          this.#storage.writeSnapshot(action.snapshot);
          break;
        case "reject":
          // Peer input the core refused: close the connection it came on (logged there).
          this.#commandStats.countError("peer_rejected");
          this.#peerServer.disconnect(action.peer, action.reason);
          break;
        case "diverged": {
          // Our state differs from the majority's at the same index: never serve it.
          const error = new Error(
            `DIVERGED: at delivered index ${action.index} this replica's state digest is ` +
              `${action.mine}, replicas ${action.agreeing.join(", ")} have ${action.majority}; ` +
              "stopping. Move this replica's data directory away and restart it: it rejoins " +
              "with a copy of the others' state.",
          );
          this.#log.error("replica.diverged", `fatal: ${error.message}`, { index: action.index });
          this.stop().catch(() => {}).finally(() => this.#onFatal(error));
          return;
        }
        case "deliver":
          if (this.#verbose) {
            // Arguments and result, clipped; only the name of a command that can carry a
            // password (ACL SETUSER, AUTH, HELLO, CONFIG SET, EXEC of such, ...).
            const { entry, index, result } = action;
            const argv = entry.cmd.op.argv;
            const command = commandName(entry.cmd).toUpperCase();
            const secret = SECRET_BEARING.has(command.toLowerCase());
            const what = secret ? clip(command) : argv.slice(0, 4).map(clip).join(" ");
            const got = secret ? "(hidden)" : clip(JSON.stringify(result) ?? "null");
            this.#log.debug(
              "deliver",
              `deliver #${index} ${what} -> ${got} ` +
                `(view ${entry.view} origin ${entry.origin} seq ${entry.seq} ts ${entry.ts})`,
              { index, command, view: entry.view, origin: entry.origin, seq: entry.seq },
            );
          }
          break;
      }
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      if (this.#state !== "started") return;
      this.#carryOut(this.#replica.step({ type: "flush" }));
      for (const peer of [...this.#outbox.keys()]) this.#writeOutbox(peer);
      this.#syncStorage();
    });
  }

  /** Group commit: one sync covers everything appended so far; the core hears when it is done. */
  #syncStorage(): void {
    if (this.#syncing) return;
    const target = this.#storage.appended;
    if (target === this.#syncedReported) return;
    this.#syncing = true;
    this.#storage.sync().then((upTo) => {
      this.#syncing = false;
      this.#syncedReported = Math.max(this.#syncedReported, upTo);
      this.#input({ type: "synced", upTo });
      this.#syncStorage();
    }, (err) => {
      // A replica that cannot make its log durable must not go on acknowledging.
      if (this.#state !== "started") return;
      this.#log.error(
        "wal.failed",
        `fatal: cannot write the write-ahead log: ${errorText(err)}; stopping`,
      );
      const error = err instanceof Error ? err : new Error(String(err));
      this.stop().catch(() => {}).finally(() => this.#onFatal(error));
    });
  }

  /** Writes everything queued for `peer` as one frame (dropped if the link went down). */
  #writeOutbox(peer: ReplicaId): void {
    const msgs = this.#outbox.get(peer);
    this.#outbox.delete(peer);
    if (msgs === undefined || msgs.length === 0) return;
    this.#links.get(peer)?.send(msgs);
  }
}

/** `addresses` with `self` in place of any line of our id, ascending by id. */
function withSelf(addresses: readonly ReplicaAddress[], self: ReplicaAddress): ReplicaAddress[] {
  const others = addresses.filter((a) => a.id !== self.id).map((a) => ({ ...a }));
  return [...others, { ...self }].sort((a, b) => a.id - b.id);
}
