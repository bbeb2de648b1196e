/**
 * Small socket helpers shared by the peer link and both servers: {@link ConnWriter}, the serial
 * writer every connection uses, a cancellable {@link Sleep}, and error text.
 *
 * @module
 */
import { joinedRun } from "../kv/bytes.ts";
import type { ByteTraffic } from "./traffic.ts";

/** Human-readable text of a caught error. */
export function errorText(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (err instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (err instanceof Deno.errors.BrokenPipe) return "broken pipe";
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Queued chunks are joined into one write up to this many bytes. */
const JOIN_CHUNKS_UP_TO = 256 * 1024;

/**
 * Writes byte chunks to one connection strictly in order, never two writes at once. Chunks queued
 * in the same turn (and while a write is in progress) are joined (up to 256 KiB) and written together, so a burst
 * becomes one socket write. The first write error discards the queue, marks the writer failed and
 * is reported once through `onError`; later chunks are dropped.
 */
export class ConnWriter {
  readonly #conn: { write(p: Uint8Array): Promise<number> };
  readonly #onError: (err: unknown) => void;
  readonly #traffic: ByteTraffic | undefined;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  #pumping = false;
  #failed = false;
  #idleWaiters: (() => void)[] = [];

  /**
   * A writer for `conn`; `onError` hears about the first failed write; the bytes written are
   * added to `traffic` when given.
   */
  constructor(
    conn: { write(p: Uint8Array): Promise<number> },
    onError: (err: unknown) => void,
    traffic?: ByteTraffic,
  ) {
    this.#conn = conn;
    this.#onError = onError;
    this.#traffic = traffic;
  }

  /** Bytes accepted but not yet written (including a write in progress). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** True once a write failed or {@link ConnWriter.discard} was called. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Queues `chunk` behind everything queued before. Returns false (and drops it) once failed. */
  write(chunk: Uint8Array): boolean {
    if (this.#failed) return false;
    if (chunk.length === 0) return true;
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
    if (!this.#pumping && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        if (!this.#pumping) void this.#pump();
      });
    }
    return true;
  }

  /** Drops everything queued and refuses further chunks (a write in progress still completes). */
  discard(): void {
    this.#failed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    if (!this.#pumping && !this.#scheduled) this.#wakeIdle();
  }

  /** Resolves once nothing is queued and no write is in progress (or the writer failed). */
  idle(): Promise<void> {
    if (!this.#pumping && !this.#scheduled && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.#failed) {
        // Small chunks are joined into one write; a large one is written as it is (no copy).
        const { bytes: data, end } = joinedRun(this.#queue, 0, JOIN_CHUNKS_UP_TO);
        this.#queue.splice(0, end);
        let written = 0;
        while (written < data.length) {
          const n = await this.#conn.write(data.subarray(written));
          if (this.#traffic !== undefined) this.#traffic.bytesOut += n;
          if (n <= 0) throw new Deno.errors.WriteZero(`write returned ${n}`);
          written += n;
        }
        if (!this.#failed) this.#queuedBytes -= data.length;
      }
    } catch (err) {
      const first = !this.#failed;
      this.#failed = true;
      this.#queue = [];
      this.#queuedBytes = 0;
      if (first) this.#onError(err);
    } finally {
      this.#pumping = false;
      this.#wakeIdle();
    }
  }

  #wakeIdle(): void {
    if (this.#pumping || this.#scheduled) return;
    if (this.#queue.length > 0 && !this.#failed) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** A timer that can be cancelled early; cancelling resolves the wait (no timer is left behind). */
export class Sleep {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resolve: (() => void) | undefined;

  /** Resolves after `ms`, or as soon as {@link Sleep.cancel} is called. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#resolve = undefined;
        resolve();
      }, ms);
    });
  }

  /** Ends the current wait now. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    resolve?.();
  }
}
