/**
 * A stand-in replica for the supervisor's unit tests (`tests/unit/supervisor_test.ts`): prints a
 * line on stdout and one on stderr, then (unless told otherwise) the `node.ready` line of replica
 * `--id`, then `tick <n>` every 50 ms until it is stopped.
 *
 * Options: `--id <n>` (default 1); `--never-ready`; `--exit-before-ready <code>`;
 * `--on-term ignore` (SIGTERM only prints `ignoring SIGTERM`) or `--on-term <code>` (SIGTERM prints
 * `got SIGTERM` and exits with `code`); without `--on-term`, SIGTERM kills it.
 *
 * @module
 */

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i < 0 ? undefined : Deno.args[i + 1];
}

const id = Number(option("--id") ?? "1");
console.log(`child ${Deno.pid} starting`);
console.error("a line on stderr");
const onTerm = option("--on-term");
if (onTerm === "ignore") {
  Deno.addSignalListener("SIGTERM", () => console.log("ignoring SIGTERM"));
} else if (onTerm !== undefined) {
  Deno.addSignalListener("SIGTERM", () => {
    console.log("got SIGTERM");
    Deno.exit(Number(onTerm));
  });
}
const exitCode = option("--exit-before-ready");
if (exitCode !== undefined) {
  console.error("failing before ready");
  Deno.exit(Number(exitCode));
}
if (!Deno.args.includes("--never-ready")) {
  console.log(`2026-01-01T00:00:00.000Z INFO  replica ${id} node.ready: supervised test child`);
}
let n = 0;
setInterval(() => console.log(`tick ${n++}`), 50);
