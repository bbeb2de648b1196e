/**
 * README is the user's manual: its command table must name every command the registry serves
 * (and nothing the registry does not know), so the two cannot drift apart.
 *
 * @module
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../../src/kv/commands/index.ts";

const README = new URL("../../README.md", import.meta.url);

Deno.test("docs: README's command table lists exactly the commands the registry serves", async () => {
  const text = await Deno.readTextFile(README);
  const start = text.indexOf("## Redis compatibility");
  const end = text.indexOf("\n## ", start + 1);
  const table = text.slice(start, end).split("\n").filter((l) => /^\| [a-z]/.test(l));
  assert.ok(table.length > 5, "the command table was not found");
  const named = new Set<string>();
  for (const row of table) {
    const cell = row.split("|")[2] ?? "";
    // Upper-case words are command names; those in parentheses are options or subcommands.
    for (const word of cell.replace(/\([^)]*\)/g, "").match(/\b[A-Z][A-Z0-9]+\b/g) ?? []) {
      named.add(word.toLowerCase());
    }
  }
  const served = COMMANDS.public().map((s) => s.name);
  const missing = served.filter((n) => !named.has(n));
  const unknown = [...named].filter((n) => COMMANDS.get(n) === undefined);
  assert.deepEqual(missing, [], "commands served but not in README");
  assert.deepEqual(unknown, [], "commands in README that are not served");
});
