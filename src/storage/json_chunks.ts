/**
 * JSON text of a value in bounded pieces, so that a large snapshot can be written without holding
 * the event loop for the whole serialization: large arrays are split between their elements.
 * The concatenated pieces equal `JSON.stringify(value)` for JSON-compatible values.
 *
 * @module
 */

const encoder = new TextEncoder();

/** UTF-8 pieces of `JSON.stringify(value)`, each around `pieceChars` characters or less. */
export function* jsonChunks(value: unknown, pieceChars = 1 << 20): Generator<Uint8Array> {
  let pending = "";
  function* flushIfLarge(): Generator<Uint8Array> {
    if (pending.length >= pieceChars) {
      yield encoder.encode(pending);
      pending = "";
    }
  }
  function* walk(v: unknown): Generator<Uint8Array> {
    if (Array.isArray(v)) {
      pending += "[";
      for (let i = 0; i < v.length; i++) {
        if (i > 0) pending += ",";
        const item = v[i];
        // Like JSON.stringify: holes and non-JSON values in arrays become null.
        if (item === undefined || typeof item === "function" || typeof item === "symbol") {
          pending += "null";
        } else yield* walk(item);
        yield* flushIfLarge();
      }
      pending += "]";
    } else if (v !== null && typeof v === "object" && !(v as { toJSON?: unknown }).toJSON) {
      pending += "{";
      let first = true;
      for (const [key, item] of Object.entries(v)) {
        if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
        pending += (first ? "" : ",") + JSON.stringify(key) + ":";
        first = false;
        yield* walk(item);
        yield* flushIfLarge();
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
