/**
 * The holdback queue: received but undelivered entries, ordered by `(ts, origin)`. A binary
 * min-heap, so inserting and removing the head cost O(log n) however far behind delivery is.
 *
 * @module
 */
import type { Entry } from "./types.ts";

/** Total order of entries: by timestamp, ties broken by origin id. Negative if `a` comes first. */
export function compareEntries(a: Pick<Entry, "ts" | "origin">, b: Pick<Entry, "ts" | "origin">) {
  return a.ts !== b.ts ? a.ts - b.ts : a.origin - b.origin;
}

/** An entry's identity: its view, origin and per-view sequence number. */
export function entryId(e: Pick<Entry, "view" | "origin" | "seq">): string {
  return `${e.view}:${e.origin}:${e.seq}`;
}

/** A priority queue of entries by {@link compareEntries}. */
export class HoldbackQueue {
  #heap: Entry[] = [];

  /** Number of entries held. */
  get size(): number {
    return this.#heap.length;
  }

  /** The entry that comes first in the total order, if any. */
  peek(): Entry | undefined {
    return this.#heap[0];
  }

  /** Adds an entry. */
  push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (compareEntries(heap[parent], entry) <= 0) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = entry;
  }

  /** Removes and returns the first entry. */
  pop(): Entry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && compareEntries(heap[right], heap[left]) < 0
          ? right
          : left;
        if (compareEntries(last, heap[child]) <= 0) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }

  /** Every entry held, in total order (a copy; the queue is unchanged). */
  sorted(): Entry[] {
    return [...this.#heap].sort(compareEntries);
  }
}
