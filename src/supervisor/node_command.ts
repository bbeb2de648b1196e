/**
 * The command line of a replica process: `deno run <permissions> src/cli/node.ts <id> <config>
 * [options]`, and how to word the way a process ended.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** Permissions of a replica process: the same as the `node` task in deno.json. */
export const NODE_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
];

/** Absolute path of the replica entry point (`src/cli/node.ts`). */
export const NODE_ENTRY: string = fileURLToPath(new URL("../cli/node.ts", import.meta.url));

/**
 * The `deno` arguments that start replica `id` of `configPath` with node `options`; `denoFlags`
 * go to `deno run` itself (e.g. `--cpu-prof`).
 */
export function nodeCommandArgs(
  id: number,
  configPath: string,
  options: readonly string[],
  denoFlags: readonly string[] = [],
): string[] {
  return [
    "run",
    ...NODE_PERMISSIONS,
    ...denoFlags,
    NODE_ENTRY,
    String(id),
    configPath,
    ...options,
  ];
}

/** How a child process ended, for a log line: "exited with code 1", "was killed by SIGKILL". */
export function describeStatus(s: Deno.CommandStatus): string {
  return s.signal !== null ? `was killed by ${s.signal}` : `exited with code ${s.code}`;
}
