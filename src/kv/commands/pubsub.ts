/**
 * Pub/sub: PUBLISH is an operation in the total order (each replica, applying it, publishes the
 * message to its own subscribers); SUBSCRIBE, PSUBSCRIBE, their UNSUBSCRIBEs and PUBSUB are
 * answered by the server from its local subscriptions (`src/net/pubsub.ts`). Also the internal
 * `__config` operation, which sets the replicated `notify-keyspace-events` in the order.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext, CommandFlag, CommandSpec } from "../registry.ts";
import { E, err, OK } from "../reply.ts";
import { parseNotifyFlags } from "../notify.ts";

/** PUBLISH's reply: the number of subscribers that received the message on this replica. */
function publish(ctx: ApplyContext, argv: ByteString[]): Reply {
  return ctx.publish(argv[1], argv[2]);
}

/** `__config SET notify-keyspace-events <flags>`: the replicated setting, set in the order. */
function config(ctx: ApplyContext, argv: ByteString[]): Reply {
  if (argv[1].toLowerCase() !== "set" || argv[2].toLowerCase() !== "notify-keyspace-events") {
    return E.SYNTAX;
  }
  const flags = parseNotifyFlags(argv[3]);
  if (flags === null || ctx.notify === undefined) return err("ERR invalid notify-keyspace-events");
  ctx.notify.set(flags);
  return OK;
}

/** A pub/sub command the server answers from its local subscriptions. */
function local(
  name: string,
  arity: number,
  summary: string,
  syntax: string,
  flags: readonly CommandFlag[] = ["pubsub", "noscript", "loading", "stale"],
): CommandSpec {
  return { name, arity, flags, keys: [0, 0, 0], group: "pubsub", summary, syntax, since: "2.0.0" };
}

/** The pub/sub commands. */
export const PUBSUB_COMMANDS: CommandSpec[] = [
  {
    name: "publish",
    arity: 3,
    flags: ["pubsub", "loading", "stale", "fast"],
    keys: [0, 0, 0],
    group: "pubsub",
    summary:
      "Posts a message to a channel (in the total order; replies receivers on this replica).",
    syntax: "channel message",
    since: "2.0.0",
    apply: publish,
  },
  local("subscribe", -2, "Listens for messages published to channels.", "channel [channel ...]"),
  local(
    "unsubscribe",
    -1,
    "Stops listening to messages posted to channels.",
    "[channel [channel ...]]",
  ),
  local(
    "psubscribe",
    -2,
    "Listens for messages published to channels that match one or more patterns.",
    "pattern [pattern ...]",
  ),
  local(
    "punsubscribe",
    -1,
    "Stops listening to messages published to channels that match one or more patterns.",
    "[pattern [pattern ...]]",
  ),
  local(
    "pubsub",
    -2,
    "Pub/sub introspection on this replica: CHANNELS [pattern], NUMSUB [channel ...], NUMPAT.",
    "subcommand [argument ...]",
    ["pubsub", "loading", "stale"],
  ),
  {
    name: "__config",
    arity: 4,
    flags: ["write"],
    keys: [0, 0, 0],
    group: "lamportkv",
    summary: "Internal: sets a replicated setting (notify-keyspace-events) in the order.",
    syntax: "SET notify-keyspace-events flags",
    since: "lamportkv 3",
    apply: config,
    internal: true,
  },
];
