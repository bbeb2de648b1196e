/**
 * The one command table of lamportkv: every family's commands, the server's own and the internal
 * operations, registered once.
 *
 * @module
 */
import type { ByteString } from "../../core/types.ts";
import { CommandTable } from "../registry.ts";
import { ACL_COMMANDS } from "./acl.ts";
import { BLOCKING_COMMANDS } from "./blocking.ts";
import { HASH_COMMANDS } from "./hashes.ts";
import { KEY_COMMANDS } from "./keys.ts";
import { LIST_COMMANDS } from "./lists.ts";
import { PUBSUB_COMMANDS } from "./pubsub.ts";
import { REPLICA_SET_COMMANDS } from "./replica_set.ts";
import { SLOT_COMMANDS } from "./slots.ts";
import { SERVER_COMMANDS } from "./server.ts";
import { SET_COMMANDS } from "./sets.ts";
import { STREAM_COMMANDS } from "./streams.ts";
import { STRING_COMMANDS } from "./strings.ts";
import { txCommands } from "./tx.ts";

/** Every command lamportkv knows. */
export const COMMANDS: CommandTable = new CommandTable([
  ...STRING_COMMANDS,
  ...KEY_COMMANDS,
  ...LIST_COMMANDS,
  ...BLOCKING_COMMANDS,
  ...HASH_COMMANDS,
  ...SET_COMMANDS,
  ...STREAM_COMMANDS,
  ...SERVER_COMMANDS,
  ...txCommands(() => COMMANDS),
  ...ACL_COMMANDS,
  ...PUBSUB_COMMANDS,
  ...REPLICA_SET_COMMANDS,
  ...SLOT_COMMANDS,
]);

/**
 * True when `argv` is a blocking command (BLPOP, ..., XREAD/XREADGROUP with BLOCK): its client may
 * wait for a long time, and its replica carries it as a waiter (`src/runtime/blocked_clients.ts`).
 */
export function isBlockingCommand(argv: readonly ByteString[]): boolean {
  if (argv.length === 0) return false;
  const block = COMMANDS.get(argv[0])?.block;
  return block !== undefined && (block.blocks?.(argv) ?? true);
}
