/**
 * Per-command operation counts (by result) and latency histograms, and error counts by kind: what
 * `/metrics` reports about the operations a replica answered. Fed by an {@link OpStats} observer
 * (one map lookup and a few increments per operation) and read at scrape time.
 *
 * @module
 */
import { BucketCounts } from "./buckets.ts";
import type { OpObserver } from "./op_stats.ts";

/** Distinct command names tracked; further names count as {@link OTHER_COMMAND}. */
export const MAX_COMMANDS = 256;
/** The command label of operations beyond {@link MAX_COMMANDS} names. */
export const OTHER_COMMAND = "other";

/** Counts and latency of one command. */
export interface CommandCounts {
  /** Operations answered with a result (error replies such as WRONGTYPE included). */
  ok: number;
  /** Operations whose outcome was an error (NOQUORUM, UNKNOWN, REFUSED, ...). */
  error: number;
  /** Latency in seconds from submission to outcome. */
  latency: BucketCounts;
}

/** Operation counts by command, and error counts by kind. */
export class CommandStats {
  readonly #commands = new Map<string, CommandCounts>();
  readonly #errors = new Map<string, number>();

  /** The observer to add to an {@link OpStats}. */
  readonly observer: OpObserver = (command, ok, seconds, code) => {
    const counts = this.#commands.get(command) ?? this.#add(command);
    if (ok) counts.ok++;
    else {
      counts.error++;
      this.countError(code === undefined ? "error" : code.toLowerCase());
    }
    counts.latency.observe(seconds);
  };

  /** Counts one error of `kind` (lowercase, e.g. `noquorum`, `peer_rejected`). */
  countError(kind: string): void {
    this.#errors.set(kind, (this.#errors.get(kind) ?? 0) + 1);
  }

  /** Every command seen, with its counts (live objects: read, do not keep). */
  commands(): IterableIterator<[string, CommandCounts]> {
    return this.#commands.entries();
  }

  /** Errors by kind. */
  errors(): IterableIterator<[string, number]> {
    return this.#errors.entries();
  }

  #add(command: string): CommandCounts {
    const name = this.#commands.size < MAX_COMMANDS ? command : OTHER_COMMAND;
    let counts = this.#commands.get(name);
    if (counts === undefined) {
      counts = { ok: 0, error: 0, latency: new BucketCounts() };
      this.#commands.set(name, counts);
    }
    return counts;
  }
}
