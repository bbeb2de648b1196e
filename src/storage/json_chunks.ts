/**
 * JSON text of a value in bounded pieces, so that a large snapshot can be written without holding
 * the event loop for the whole serialization: large arrays are split between their elements.
 * The concatenated pieces equal `JSON.stringify(value)` for JSON-compatible values.
 *
 * Only the path from the root to the large arrays is walked here; every array element and every
 * small array is serialized by the native `JSON.stringify`, which is many times faster than
 * walking it in JavaScript (a 1 MB piece took 20-70 ms walked element by element, and that much
 * time on the event loop showed up in the replicas' tail latency).
 *
 * @module
 */

const encoder = new TextEncoder();

/** Arrays longer than this are split between elements; shorter ones are serialized whole. */
const SPLIT_ARRAYS_LONGER_THAN = 64;

/** UTF-8 pieces of `JSON.stringify(value)`, each around `pieceChars` characters or less. */
export function* jsonChunks(value: unknown, pieceChars = 64 * 1024): Generator<Uint8Array> {
  let pending = "";
  function* walk(v: unknown): Generator<Uint8Array> {
    if (Array.isArray(v) && v.length > SPLIT_ARRAYS_LONGER_THAN) {
      pending += "[";
      for (let i = 0; i < v.length; i++) {
        if (i > 0) pending += ",";
        const item = v[i];
        if (Array.isArray(item) && item.length > SPLIT_ARRAYS_LONGER_THAN) yield* walk(item);
        // Like JSON.stringify: holes and non-JSON values in arrays become null.
        else pending += JSON.stringify(item) ?? "null";
        if (pending.length >= pieceChars) {
          yield encoder.encode(pending);
          pending = "";
        }
      }
      pending += "]";
    } else if (
      v !== null && typeof v === "object" && !Array.isArray(v) &&
      !(v as { toJSON?: unknown }).toJSON
    ) {
      pending += "{";
      let first = true;
      for (const [key, item] of Object.entries(v)) {
        if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
        pending += (first ? "" : ",") + JSON.stringify(key) + ":";
        first = false;
        yield* walk(item);
      }
      pending += "}";
    } else {
      const text = JSON.stringify(v);
      if (text === undefined) throw new TypeError("value has no JSON form");
      pending += text;
    }
  }
  yield* walk(value);
  if (pending.length > 0) yield encoder.encode(pending);
}
