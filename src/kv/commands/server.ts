/**
 * The commands the server answers itself, without the state machine: connection state,
 * transactions (queued by the server, then one `__EXEC` operation), introspection. Only their
 * metadata lives here; `src/net/session.ts` holds their handlers and checks at start that every
 * one of these has a handler.
 *
 * @module
 */
import type { CommandFlag, CommandGroup, CommandSpec } from "../registry.ts";

function server(
  name: string,
  arity: number,
  group: CommandGroup,
  summary: string,
  syntax: string,
  since: string,
  flags: readonly CommandFlag[] = ["fast"],
): CommandSpec {
  return { name, arity, flags, keys: [0, 0, 0], group, summary, syntax, since };
}

/** Commands answered by the server. */
export const SERVER_COMMANDS: CommandSpec[] = [
  server(
    "ping",
    -1,
    "connection",
    "Returns the server's liveliness response.",
    "[message]",
    "1.0.0",
  ),
  server("echo", 2, "connection", "Returns the given string.", "message", "1.0.0"),
  server("quit", -1, "connection", "Closes the connection.", "", "1.0.0", ["fast", "no_auth"]),
  server(
    "select",
    2,
    "connection",
    "Changes the selected database (only 0 exists).",
    "index",
    "1.0.0",
  ),
  server(
    "hello",
    -1,
    "connection",
    "Handshakes with the server (RESP2 only).",
    "[protover [AUTH username password] [SETNAME clientname]]",
    "6.0.0",
    ["fast", "no_auth"],
  ),
  server(
    "client",
    -2,
    "connection",
    "Connection management: SETNAME, GETNAME, ID, INFO, LIST, KILL, SETINFO, NO-EVICT, NO-TOUCH, REPLY.",
    "subcommand [arguments]",
    "2.4.0",
    ["admin"],
  ),
  server(
    "auth",
    -2,
    "connection",
    "Authenticates the connection.",
    "[username] password",
    "1.0.0",
    ["fast", "no_auth"],
  ),
  server("reset", 1, "connection", "Resets the connection.", "", "6.2.0", ["fast", "no_auth"]),
  server(
    "acl",
    -2,
    "server",
    "Users and their rights: WHOAMI, LIST, USERS, GETUSER, SETUSER, DELUSER, CAT, SAVE, LOAD, " +
      "DRYRUN, GENPASS, LOG, HELP.",
    "subcommand [arguments]",
    "6.0.0",
    [],
  ),
  server("time", 1, "server", "Returns the server time.", "", "2.6.0"),
  {
    ...server(
      "replicaset",
      -2,
      "lamportkv",
      "Membership: MEMBERS lists the replica set in force; ADD, REMOVE and PROMOTE change it through the order.",
      "MEMBERS | ADD id host client_port peer_port [http_port] [LEARNER] | REMOVE id | PROMOTE id | HELP",
      "lamportkv 4",
      ["admin"],
    ),
    subcommands: { members: 2, add: -6, remove: 3, promote: 3, help: 2 },
  },
  {
    ...server(
      "cluster",
      -2,
      "lamportkv",
      "Redis Cluster's view of this replica set: one shard owning every hash slot (KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, MYID, SLOTS, SHARDS, NODES, INFO, HELP).",
      "subcommand [argument ...]",
      "3.0.0",
      [],
    ),
    subcommands: {
      keyslot: 3,
      countkeysinslot: 3,
      getkeysinslot: 4,
      myid: 2,
      slots: 2,
      shards: 2,
      nodes: 2,
      info: 2,
      help: 2,
    },
  },
  server(
    "readonly",
    1,
    "lamportkv",
    "Reads on this connection are answered locally, without confirming with the members (possibly stale; INFO reports how stale).",
    "",
    "3.0.0",
  ),
  server(
    "readwrite",
    1,
    "lamportkv",
    "Reads on this connection are linearizable again (the default).",
    "",
    "3.0.0",
  ),
  server(
    "info",
    -1,
    "server",
    "Returns information and statistics about the server.",
    "[section [section ...]]",
    "1.0.0",
    [],
  ),
  server(
    "command",
    -1,
    "server",
    "Returns detailed information about all commands: COUNT, INFO, DOCS, LIST.",
    "[subcommand [arguments]]",
    "2.8.13",
    [],
  ),
  server(
    "config",
    -2,
    "server",
    "CONFIG GET for the parameters clients read; CONFIG SET and friends are refused.",
    "GET parameter [parameter ...]",
    "2.0.0",
    ["admin"],
  ),
  server("multi", 1, "transactions", "Starts a transaction.", "", "1.2.0"),
  server(
    "exec",
    1,
    "transactions",
    "Executes all commands in a transaction (one operation in the order).",
    "",
    "1.2.0",
    [],
  ),
  server("discard", 1, "transactions", "Discards a transaction.", "", "2.0.0"),
  server(
    "watch",
    -2,
    "transactions",
    "Monitors changes to keys to determine the execution of a transaction.",
    "key [key ...]",
    "2.2.0",
  ),
  server("unwatch", 1, "transactions", "Forgets about watched keys of a transaction.", "", "2.2.0"),
  server(
    "req",
    -4,
    "lamportkv",
    "Runs a command exactly once per (client, seq), for clients that retry after failover.",
    "client-id seq command [arg ...]",
    "lamportkv 1",
  ),
];
