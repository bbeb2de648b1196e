/**
 * The replica's logger: events at four levels (`error`, `warn`, `info`, `debug`), each a record
 * with a time, the replica id, an event name, a message and fields (`format.ts`), written as text
 * or JSON lines. Secrets never reach a line (`redact.ts`); events from one source can be
 * rate-limited (`rate_limit.ts`), with a `log.suppressed` line saying how many were held back.
 *
 * Modules take a {@link Log} (the interface), so tests can capture records with
 * {@link Logger} and a sink of their own.
 *
 * @module
 */
import {
  formatRecord,
  LOG_LEVELS,
  type LogFields,
  type LogFormat,
  type LogLevel,
  type LogRecord,
} from "./format.ts";
import { RateLimiter, type RateLimitOptions } from "./rate_limit.ts";
import { Redactor } from "./redact.ts";

/** What modules log through. */
export interface Log {
  /** Something failed that needs an operator (the replica may stop). */
  error(event: string, msg: string, fields?: LogFields): void;
  /** Something went wrong and was handled (a refused peer, a slow fsync, a limit hit). */
  warn(event: string, msg: string, fields?: LogFields): void;
  /** What an operator follows: start, views, links, snapshots. */
  info(event: string, msg: string, fields?: LogFields): void;
  /** Per-operation detail (deliveries, client connections). */
  debug(event: string, msg: string, fields?: LogFields): void;
  /**
   * Logs an event that a remote `source` (a host, a peer) can repeat at will: per
   * (`event`, `source`) the first few are written, then at most one per interval, and a
   * `log.suppressed` line counts those held back. `source` is added to the fields.
   */
  limited(level: LogLevel, event: string, source: string, msg: string, fields?: LogFields): void;
  /** True when events at `level` are written (to skip building costly ones). */
  enabled(level: LogLevel): boolean;
}

/** Where records go: a function of the record, e.g. {@link writeLine} after formatting. */
export type LogSink = (record: LogRecord) => void;

/** Options of a {@link Logger}. */
export interface LoggerOptions {
  /** The replica id on every record. */
  id: number;
  /** The least severe level written (default `info`). */
  level?: LogLevel;
  /** Where records go (default: formatted as `format` on stdout, errors on stderr). */
  sink?: LogSink;
  /** The line format of the default sink (default `text`). */
  format?: LogFormat;
  /** The rate limit of {@link Log.limited}. */
  rateLimit?: RateLimitOptions;
  /** The clock of record times, ms since the epoch (default `Date.now`). */
  now?: () => number;
}

/** The event of the summary line of rate-limited events. */
export const SUPPRESSED_EVENT = "log.suppressed";

/** A {@link Log} writing records to a sink. */
export class Logger implements Log {
  readonly #id: number;
  readonly #rank: number;
  readonly #sink: LogSink;
  readonly #limiter: RateLimiter;
  readonly #now: () => number;
  /** Keeps secrets out; add the replica's with {@link Logger.addSecret}. */
  readonly #redactor = new Redactor();

  /** Builds the logger; see {@link LoggerOptions} for the defaults. */
  constructor(options: LoggerOptions) {
    this.#id = options.id;
    this.#rank = LOG_LEVELS.indexOf(options.level ?? "info");
    const format = options.format ?? "text";
    this.#sink = options.sink ?? ((r) => writeLine(formatRecord(r, format), r.level === "error"));
    this.#limiter = new RateLimiter(options.rateLimit);
    this.#now = options.now ?? Date.now;
  }

  /** Never logs `value` (a password), in messages or fields. */
  addSecret(value: string): void {
    this.#redactor.addSecret(value);
  }

  /** @inheritdoc */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) <= this.#rank;
  }

  /** @inheritdoc */
  error(event: string, msg: string, fields?: LogFields): void {
    this.#write("error", event, msg, fields);
  }

  /** @inheritdoc */
  warn(event: string, msg: string, fields?: LogFields): void {
    this.#write("warn", event, msg, fields);
  }

  /** @inheritdoc */
  info(event: string, msg: string, fields?: LogFields): void {
    this.#write("info", event, msg, fields);
  }

  /** @inheritdoc */
  debug(event: string, msg: string, fields?: LogFields): void {
    this.#write("debug", event, msg, fields);
  }

  /** @inheritdoc */
  limited(level: LogLevel, event: string, source: string, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const decision = this.#limiter.take(`${event} ${source}`);
    if (!decision.write) return;
    if (decision.suppressed > 0) this.#summary(event, source, decision.suppressed);
    this.#write(level, event, msg, { source, ...fields });
  }

  /**
   * Writes the summary line of every (event, source) whose held-back events were not reported
   * for an interval (call it now and then, e.g. once a second, so a flood that stopped is
   * counted without waiting for its next event).
   */
  flushSuppressed(): void {
    for (const { key, suppressed } of this.#limiter.due()) {
      const space = key.indexOf(" ");
      this.#summary(key.slice(0, space), key.slice(space + 1), suppressed);
    }
  }

  #summary(event: string, source: string, suppressed: number): void {
    this.#write(
      "warn",
      SUPPRESSED_EVENT,
      `${suppressed} more ${event} from ${source} not logged`,
      { of: event, source, suppressed },
    );
  }

  #write(level: LogLevel, event: string, msg: string, fields: LogFields = {}): void {
    if (!this.enabled(level)) return;
    this.#sink({
      time: this.#now(),
      level,
      id: this.#id,
      event,
      msg: this.#redactor.text(msg),
      fields: this.#redactor.fields(fields),
    });
  }
}

const encoder = new TextEncoder();

/** Writes `line` and a newline to stdout (stderr when `toStderr`), all of it, synchronously. */
export function writeLine(line: string, toStderr = false): void {
  const out = toStderr ? Deno.stderr : Deno.stdout;
  const bytes = encoder.encode(line + "\n");
  let written = 0;
  try {
    while (written < bytes.length) written += out.writeSync(bytes.subarray(written));
  } catch {
    // stdout closed (the reader is gone): nothing to log to
  }
}

/** A {@link Log} that writes nothing (tests and tools that do not care). */
export const SILENT: Log = new Logger({ id: 0, sink: () => {} });
