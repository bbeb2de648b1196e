/**
 * The client's membership commands (`members`, `add`, `remove`, `promote`), shared by the REPL
 * and the one-shot command line: their arguments checked before anything is sent
 * ({@link membershipArgsError}), and their run ({@link runMembershipCommand}).
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { validReplicaId } from "../core/membership.ts";
import { parseAdd } from "../kv/replica_set.ts";
import { RespError, RespStatus } from "../net/resp.ts";
import type { LamportClient } from "./client.ts";
import { formatMembersTable } from "./members.ts";

/** The names of the membership commands. */
export const MEMBERSHIP_NAMES: ReadonlySet<string> = new Set([
  "members",
  "add",
  "remove",
  "promote",
]);

/**
 * Why the arguments of membership command `name` (`argv` with the name, any count already
 * checked) are wrong, in the server's words (`ERR invalid port '0' (1..65535)`), or null.
 */
export function membershipArgsError(name: string, argv: readonly ByteString[]): string | null {
  if (name === "add") {
    const parsed = parseAdd(argv.slice(1));
    if (typeof parsed !== "string") return null;
    return parsed.startsWith("ERR syntax")
      ? `ERR syntax error: the last argument may only be 'learner', got '${argv.at(-1)}'`
      : parsed;
  }
  if (name === "remove" || name === "promote") {
    const id = /^[0-9]+$/.test(argv[1] ?? "") ? Number(argv[1]) : NaN;
    if (!validReplicaId(id)) {
      return `ERR replica id must be an integer in 1..999, got '${argv[1] ?? ""}'`;
    }
  }
  return null;
}

/**
 * Runs membership command `name` (its arguments checked with {@link membershipArgsError}):
 * `members` gives the table of the configuration in force, the others `OK`; an error reply is
 * returned as it is.
 *
 * @throws {ClientError} when no replica could answer.
 */
export async function runMembershipCommand(
  client: LamportClient,
  name: string,
  argv: readonly ByteString[],
): Promise<string | RespError> {
  if (name === "members") {
    const rows = await client.refreshMembers();
    if (rows instanceof RespError) return rows;
    return formatMembersTable(rows, client.replica ?? undefined);
  }
  const args = argv.slice(1);
  if (name === "add" && args.length > 0 && args.at(-1)!.toLowerCase() === "learner") {
    args[args.length - 1] = "LEARNER";
  }
  const reply = await client.changeMembers([name.toUpperCase(), ...args]);
  if (reply instanceof RespError) return reply;
  return reply instanceof RespStatus ? reply.text : String(reply);
}
