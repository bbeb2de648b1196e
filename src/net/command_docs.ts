/**
 * `COMMAND INFO` and `COMMAND DOCS` replies built from the command registry, in Redis 7's shapes
 * (RESP2: maps are flat arrays).
 *
 * @module
 */
import type { Reply } from "../core/types.ts";
import { categoriesOf, type CommandSpec } from "../kv/registry.ts";
import { status } from "../kv/reply.ts";

/**
 * One command's `COMMAND INFO` entry: name, arity, flags, first key, last key, step, ACL
 * categories, tips, key specifications, subcommands.
 */
export function commandInfo(spec: CommandSpec): Reply {
  return [
    spec.name,
    spec.arity,
    spec.flags.map((f) => status(f)),
    spec.keys[0],
    spec.keys[1],
    spec.keys[2],
    categoriesOf(spec).map((c) => status(c)),
    [],
    [],
    [],
  ];
}

/** One command's `COMMAND DOCS` map (summary, since, group, complexity, syntax). */
export function commandDocs(spec: CommandSpec): Reply {
  return [
    "summary",
    spec.summary,
    "since",
    spec.since,
    "group",
    spec.group,
    "complexity",
    "",
    "doc_flags",
    [],
    "syntax",
    `${spec.name.toUpperCase()}${spec.syntax ? " " + spec.syntax : ""}`,
  ];
}
