/**
 * The internal operation that changes the replicated user table (see `src/kv/acl.ts` for the
 * model). Sessions build it; clients cannot send it:
 *
 * ```text
 * __ACL INIT <user line>...        initialise the table, only if it never was (reply 1, else 0)
 * __ACL LOAD <user line>...        replace the whole table (ACL LOAD)
 * __ACL SETUSER <name> <rule>...   create or change a user, all rules or none (ACL SETUSER)
 * __ACL DELUSER <name>...          delete users; the reply counts them (ACL DELUSER)
 * ```
 *
 * Passwords in these arguments are SHA-256 hashes (`#h`, `!h`): the server hashes clear ones
 * before submitting. A change to a table that was never initialised starts from the table of a
 * server without security settings (in practice an `INIT` always comes first). Every replica
 * applies the same arguments to the same table, so all reach the same users.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { err, OK } from "../reply.ts";
import {
  AclRuleError,
  type AclTable,
  applyRule,
  badUserName,
  copyUser,
  defaultTable,
  newUser,
  parseUserLines,
} from "../acl.ts";

function applyAcl(ctx: ApplyContext, argv: ByteString[]): Reply {
  const state = ctx.acl;
  if (state === undefined) return err("ERR no user table in this state machine");
  const sub = (argv[1] ?? "").toLowerCase();
  const args = argv.slice(2);
  if (sub === "init" || sub === "load") {
    if (sub === "init" && state.table !== null) return 0;
    const parsed = parseUserLines(args);
    if ("problems" in parsed) {
      const p = parsed.problems[0];
      return err(`ERR user line ${p.line}: ${p.message}`);
    }
    state.set(parsed.table);
    return sub === "init" ? 1 : OK;
  }
  const table: AclTable = state.table ?? defaultTable();
  if (sub === "setuser") {
    const name = args[0];
    if (name === undefined) return err("ERR wrong number of arguments for 'acl|setuser' command");
    const bad = badUserName(name);
    if (bad !== null) return err(`ERR ${bad}`);
    const existing = table.get(name);
    const u = existing ? copyUser(existing) : newUser(name);
    for (const rule of args.slice(1)) {
      try {
        applyRule(u, rule);
      } catch (e) {
        if (!(e instanceof AclRuleError)) throw e;
        return err(`ERR Error in ACL SETUSER modifier '${rule}': ${e.message}`);
      }
    }
    table.set(name, u);
    state.set(table);
    return OK;
  }
  if (sub === "deluser") {
    if (args.includes("default")) return err("ERR The 'default' user cannot be removed");
    let n = 0;
    for (const name of new Set(args)) if (table.delete(name)) n++;
    state.set(table);
    return n;
  }
  return err(`ERR unknown __ACL subcommand '${sub}'`);
}

/** The internal `__acl` command. */
export const ACL_COMMANDS: CommandSpec[] = [{
  name: "__acl",
  arity: -2,
  flags: ["write"],
  keys: [0, 0, 0],
  group: "server",
  summary: "Internal: a change of the replicated user table (INIT, LOAD, SETUSER, DELUSER).",
  syntax: "INIT|LOAD|SETUSER|DELUSER [argument ...]",
  since: "lamportkv 3",
  apply: applyAcl,
  internal: true,
}];
