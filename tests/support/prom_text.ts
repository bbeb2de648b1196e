/**
 * Reading the Prometheus text exposition format in tests: {@link parseMetrics} turns it into
 * samples, {@link sample} finds one, and {@link promtoolCheck} runs `promtool check metrics` (from
 * Debian's `prometheus` package, installed with apt-get when missing; see
 * {@link promtoolSkipReason}).
 *
 * @module
 */
import { debianProgramSkipReason } from "./redis_server.ts";

/** One sample line: metric name, labels and value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of an exposition (comments and blank lines skipped). @throws on a bad line. */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(LABEL)) labels[k] = v;
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/**
 * The value of the sample `name` whose labels include `labels`; undefined when there is none.
 * @throws when several match.
 */
export function sample(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} match`);
  return found[0]?.value;
}

const PROMTOOL = "promtool";
let skipReason: Promise<string | undefined> | undefined;

/** Undefined when promtool runs (installing Debian's `prometheus` if needed); else why not. */
export function promtoolSkipReason(): Promise<string | undefined> {
  skipReason ??= debianProgramSkipReason(PROMTOOL, ["--version"], "prometheus");
  return skipReason;
}

/** Runs `promtool check metrics` on `text`: its exit success and everything it printed. */
export async function promtoolCheck(text: string): Promise<{ ok: boolean; output: string }> {
  const child = new Deno.Command(PROMTOOL, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { success, stdout, stderr } = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { ok: success, output: decode(stdout) + decode(stderr) };
}
