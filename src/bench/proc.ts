/**
 * Process and machine figures from Linux's `/proc`: CPU time of a process
 * (`/proc/<pid>/stat`), its peak resident set (`VmHWM` in `/proc/<pid>/status`), the CPU model
 * (`/proc/cpuinfo`), and this process's own CPU time (`process.cpuUsage()`).
 *
 * The parsers are pure functions of the file text; the readers return null when the file is
 * missing (not Linux, or the process has exited). Deno 2 lets only `--allow-all` programs read
 * `/proc` directly, so the readers fall back to `cat <file>` (needs `--allow-run`, which the
 * `bench` task has).
 *
 * @module
 */
import process from "node:process";

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux). */
export const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time of a process in clock ticks. */
export interface CpuTicks {
  /** User-mode ticks (field 14 of `/proc/<pid>/stat`). */
  user: number;
  /** Kernel-mode ticks (field 15). */
  system: number;
}

/**
 * Reads utime and stime from the text of `/proc/<pid>/stat`. The command name (field 2) is in
 * parentheses and may itself contain spaces and parentheses, so fields are counted after the
 * last `)`.
 *
 * @throws {Error} when the text does not have the expected shape.
 */
export function parseProcStat(text: string): CpuTicks {
  const close = text.lastIndexOf(")");
  if (close < 0) throw new Error("malformed /proc/<pid>/stat: no ')' after the command name");
  // After ")": field 3 (state) is at index 0, so field k is at index k - 3.
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const user = Number(fields[14 - 3]);
  const system = Number(fields[15 - 3]);
  if (!Number.isSafeInteger(user) || !Number.isSafeInteger(system) || user < 0 || system < 0) {
    throw new Error("malformed /proc/<pid>/stat: utime/stime are not counts");
  }
  return { user, system };
}

/**
 * Reads a `kB` field such as `VmHWM` (peak resident set) or `VmRSS` from the text of
 * `/proc/<pid>/status`, in KiB; null when the field is absent (e.g. a kernel thread).
 */
export function parseStatusKib(text: string, field: string): number | null {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${field}:`)) continue;
    const m = /^\S+:\s*([0-9]+)\s*kB\s*$/.exec(line);
    return m ? Number(m[1]) : null;
  }
  return null;
}

/** The first `model name` of `/proc/cpuinfo` text (or `Hardware`/`cpu model`), else null. */
export function parseCpuModel(text: string): string | null {
  for (const key of ["model name", "Hardware", "cpu model", "Processor"]) {
    for (const line of text.split("\n")) {
      const colon = line.indexOf(":");
      if (colon < 0 || line.slice(0, colon).trim() !== key) continue;
      const value = line.slice(colon + 1).trim().replace(/\s+/g, " ");
      if (value !== "") return value;
    }
  }
  return null;
}

/** One sample of a process: its CPU ticks and peak RSS. */
export interface ProcessSample {
  /** CPU ticks so far. */
  cpu: CpuTicks;
  /** Peak resident set so far in KiB (`VmHWM`), null when unknown. */
  peakRssKib: number | null;
  /** Resident set now in KiB (`VmRSS`), null when unknown. */
  rssKib: number | null;
}

/**
 * The text of `/proc` files: read directly when permitted, else by one `sh` that `cat`s each of
 * them followed by a NUL byte (which no `/proc` text file contains). Null when any of them
 * cannot be read.
 */
export async function readProcFiles(paths: string[]): Promise<string[] | null> {
  try {
    return paths.map((p) => Deno.readTextFileSync(p));
  } catch {
    // Deno 2 needs --allow-all to read /proc; fall through to a child process.
  }
  try {
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", 'for f in "$@"; do cat -- "$f" || exit 1; printf "\\0"; done', "sh", ...paths],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    const texts = new TextDecoder().decode(out.stdout).split("\0");
    return texts.length === paths.length + 1 ? texts.slice(0, paths.length) : null;
  } catch {
    return null;
  }
}

/**
 * Samples processes `pids` from `/proc` (one child process for all of them when `/proc` cannot
 * be read directly); null for a process that cannot be read (exited, not Linux).
 */
export async function sampleProcesses(pids: readonly number[]): Promise<(ProcessSample | null)[]> {
  if (pids.length === 0) return [];
  const all = await readProcFiles(
    pids.flatMap((pid) => [`/proc/${pid}/stat`, `/proc/${pid}/status`]),
  );
  if (all !== null) return pids.map((_, i) => sampleFromTexts(all[2 * i], all[2 * i + 1]));
  // Some process has gone: read them one by one.
  return await Promise.all(pids.map(async (pid) => {
    const texts = await readProcFiles([`/proc/${pid}/stat`, `/proc/${pid}/status`]);
    return texts === null ? null : sampleFromTexts(texts[0], texts[1]);
  }));
}

function sampleFromTexts(stat: string, status: string): ProcessSample | null {
  try {
    return {
      cpu: parseProcStat(stat),
      peakRssKib: parseStatusKib(status, "VmHWM"),
      rssKib: parseStatusKib(status, "VmRSS"),
    };
  } catch {
    return null;
  }
}

/**
 * CPU use between two samples as a percentage of one core over `wallSeconds` (can exceed 100 for
 * a process with several busy threads).
 */
export function cpuPercent(before: CpuTicks, after: CpuTicks, wallSeconds: number): number {
  if (!(wallSeconds > 0)) return 0;
  const ticks = after.user + after.system - before.user - before.system;
  return (ticks / CLOCK_TICKS_PER_SECOND / wallSeconds) * 100;
}

/** This process's CPU time so far, user + system, in seconds. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** What the report says about the machine. */
export interface MachineInfo {
  /** Logical CPUs (`nproc`). */
  cpus: number;
  /** CPU model name, or "unknown". */
  cpuModel: string;
  /** Deno version. */
  deno: string;
  /** V8 version. */
  v8: string;
  /** Operating system and architecture, e.g. `linux x86_64`. */
  platform: string;
}

/** Describes this machine (CPU count and model, Deno and V8 versions, OS). */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await readProcFiles(["/proc/cpuinfo"]);
  const cpuModel = cpuinfo === null ? null : parseCpuModel(cpuinfo[0]);
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel: cpuModel ?? "unknown",
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    platform: `${Deno.build.os} ${Deno.build.arch}`,
  };
}
