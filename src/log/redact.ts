/**
 * Keeps secrets out of log records: a field whose name says it holds a secret (a password, a
 * token, a key) is replaced by {@link REDACTED}, in nested objects too, and any known secret value
 * (e.g. `requirepass`) is cut out of every string, the message included.
 *
 * @module
 */
import type { LogFields } from "./format.ts";

/** What a secret is logged as. */
export const REDACTED = "[redacted]";

/** Field names that hold secrets (`key` alone: a Redis key or a key's bytes, never logged). */
const SECRET_NAME = /pass|secret|token|credential|authorization|^key$|^clusterkey$/i;

/** Replaces secrets in log text and fields. */
export class Redactor {
  readonly #values: string[] = [];

  /** Never logs `value` (ignored when shorter than 4 characters: too likely to occur by chance). */
  addSecret(value: string): void {
    if (value.length >= 4 && !this.#values.includes(value)) this.#values.push(value);
  }

  /** `text` with every known secret value replaced. */
  text(text: string): string {
    let out = text;
    for (const v of this.#values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    return out;
  }

  /** A copy of `fields` with secret-named fields and known secret values replaced. */
  fields(fields: LogFields): LogFields {
    return this.#value(fields, 0) as LogFields;
  }

  #value(v: unknown, depth: number): unknown {
    if (typeof v === "string") return this.text(v);
    if (v === null || typeof v !== "object" || depth > 4) return v;
    if (Array.isArray(v)) return v.map((x) => this.#value(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = SECRET_NAME.test(k.replaceAll("-", "")) && x !== undefined && x !== "" && x !== null
        ? REDACTED
        : this.#value(x, depth + 1);
    }
    return out;
  }
}
