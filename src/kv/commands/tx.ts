/**
 * Transactions as single operations in the order. The server queues a client's commands between
 * MULTI and EXEC and, at EXEC, sends one operation:
 *
 * ```text
 * __EXEC <n-watched> <key> <version>@<time>... <argc> <arg>... <argc> <arg>...
 * ```
 *
 * Each watched key comes with the key space version and time read by its WATCH (a read at its
 * place in the order, `__VERSION`); if any watched key was modified after it, EXEC answers a null
 * array and changes nothing. As in Redis, a key that had already expired when it was watched and
 * is gone by EXEC counts as unchanged; one that expires after its WATCH counts as modified.
 * Otherwise every queued command is applied in turn at this one place in the order (all of them,
 * isolated) and EXEC answers the array of their replies, errors included, as Redis does.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext, CommandSpec, CommandTable } from "../registry.ts";
import { E, NIL_ARRAY } from "../reply.ts";

/** Where a WATCH read the key space: its version and time. */
export interface WatchMark {
  version: number;
  time: number;
}

/** Builds the `__EXEC` argument vector from the watched keys and the queued commands. */
export function encodeExec(
  watched: readonly [ByteString, WatchMark][],
  queued: readonly ByteString[][],
): ByteString[] {
  const argv: ByteString[] = ["__EXEC", String(watched.length)];
  for (const [key, m] of watched) argv.push(key, `${m.version}@${m.time}`);
  for (const cmd of queued) argv.push(String(cmd.length), ...cmd);
  return argv;
}

/** Splits an `__EXEC` argument vector; null if malformed. */
export function decodeExec(
  argv: readonly ByteString[],
): { watched: [ByteString, WatchMark][]; queued: ByteString[][] } | null {
  const num = (s: ByteString | undefined) =>
    s !== undefined && /^[0-9]{1,15}$/.test(s) ? Number(s) : -1;
  const nw = num(argv[1]);
  if (nw < 0 || 2 + 2 * nw > argv.length) return null;
  const watched: [ByteString, WatchMark][] = [];
  for (let k = 0; k < nw; k++) {
    const [v, t] = (argv[3 + 2 * k] ?? "").split("@");
    const version = num(v);
    const time = num(t);
    if (version < 0 || time < 0) return null;
    watched.push([argv[2 + 2 * k], { version, time }]);
  }
  const queued: ByteString[][] = [];
  let i = 2 + 2 * nw;
  while (i < argv.length) {
    const argc = num(argv[i]);
    if (argc < 1 || i + 1 + argc > argv.length) return null;
    queued.push(argv.slice(i + 1, i + 1 + argc));
    i += 1 + argc;
  }
  return { watched, queued };
}

/** The internal transaction commands, bound to the table they run queued commands from. */
export function txCommands(table: () => CommandTable): CommandSpec[] {
  const exec = (ctx: ApplyContext, argv: ByteString[]): Reply => {
    const tx = decodeExec(argv);
    if (tx === null) return E.SYNTAX;
    for (const [key, mark] of tx.watched) {
      if (ctx.ks.modifiedSince(key, mark.version, mark.time)) return NIL_ARRAY;
    }
    const replies: Reply[] = [];
    for (const cmd of tx.queued) {
      const spec = table().dataCommand(cmd, false);
      replies.push("err" in spec ? spec : ctx.run(spec, cmd));
    }
    return replies;
  };
  return [
    {
      name: "__exec",
      arity: -2,
      flags: ["write"],
      keys: [0, 0, 0],
      group: "transactions",
      summary: "Internal: a whole MULTI/EXEC transaction as one operation.",
      syntax: "n-watched [key version@time ...] [argc arg ...] ...",
      since: "lamportkv 2",
      apply: exec,
      internal: true,
    },
    {
      name: "__version",
      arity: 1,
      flags: ["readonly", "fast"],
      keys: [0, 0, 0],
      group: "transactions",
      summary: "Internal: the key space version and time at this place in the order (WATCH).",
      syntax: "",
      since: "lamportkv 2",
      apply: (ctx) => [ctx.ks.version, ctx.ks.now],
      internal: true,
    },
  ];
}
