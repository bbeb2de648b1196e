/**
 * Streamed peer messages: a `msgs` frame too large to be one frame (or carrying a snapshot, which
 * is a replica's whole state) goes as consecutive `piece` frames. {@link streamFrames} turns the
 * frame's JSON value into piece frames lazily (the value is split into JSON documents by
 * `json_split.ts`, each document into frames of at most a piece's bytes), and
 * {@link PieceAssembler} joins them back, a document at a time, refusing anything that is not
 * exactly that.
 *
 * A link is one FIFO connection and a sender writes the frames of one message back to back, so a
 * receiver has at most one message in progress: a frame out of order, a frame of another kind
 * between the pieces, a document that is not a valid next piece, a document longer than
 * {@link MAX_PEER_DOC_BYTES} or a message longer than {@link MAX_PEER_STREAM_BYTES} is refused
 * ({@link CodecError}) and the connection closed like for any other bad input. The receiver holds
 * the value joined so far, and for a frame holding one NEWVIEW message (an install, which may
 * carry a state) the bytes of the documents it came in too: a replica that accepts a state it
 * received logs those documents as they are ({@link PieceAssembler.takeDocuments}) instead of
 * encoding the state again.
 *
 * @module
 */
import { CodecError, type PieceFrame } from "./peer_codec.ts";
import { JsonJoiner, SplitError, splitJson } from "../codec/json_split.ts";
import { concatBytes } from "../kv/bytes.ts";
import {
  MAX_PEER_DOC_BYTES,
  MAX_PEER_STREAM_BYTES,
  PEER_PIECE_BYTES,
  SPLIT_DOCUMENT_CHARS,
} from "../limits.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The piece frames of the JSON value `wire`, in order, each with at most `pieceBytes` bytes of
 * data. Lazy: a document is serialized when its first frame is asked for, so a sender that writes
 * each frame as the socket drains never holds more than one document's bytes.
 *
 * @throws {RangeError} for a piece size below 1.
 */
export function* streamFrames(
  wire: unknown,
  pieceBytes: number = PEER_PIECE_BYTES,
): Generator<PieceFrame> {
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1) {
    throw new RangeError(`invalid piece size ${pieceBytes}`);
  }
  // Documents of at most a piece's worth of UTF-8 when they are small pieces (in tests).
  const docs = splitJson(wire, {
    pieceChars: Math.max(1, Math.min(SPLIT_DOCUMENT_CHARS, pieceBytes >> 2)),
  });
  let seq = 0;
  let next = docs.next();
  while (!next.done) {
    const bytes = encoder.encode(next.value);
    next = docs.next();
    for (let at = 0; at < bytes.length; at += pieceBytes) {
      const end = Math.min(at + pieceBytes, bytes.length);
      const docEnd = end === bytes.length;
      yield {
        kind: "piece",
        seq: seq++,
        docEnd,
        final: docEnd && next.done === true,
        data: bytes.subarray(at, end),
      };
    }
  }
}

/** True when `wire` is (the start of) a `msgs` frame's value holding one NEWVIEW message. */
function oneNewView(wire: unknown): boolean {
  const frame = wire as { kind?: unknown; msgs?: unknown } | null;
  const msgs = frame?.msgs;
  return frame?.kind === "msgs" && Array.isArray(msgs) &&
    msgs.length === 1 && (msgs[0] as { type?: unknown } | null)?.type === "newview";
}

/** Joins the piece frames of one connection, one message at a time. */
export class PieceAssembler {
  readonly #maxDoc: number;
  readonly #maxMessage: number;
  #joiner: JsonJoiner | undefined;
  #chunks: Uint8Array[] = [];
  /**
   * The documents of the message in progress, each as its UTF-8 bytes; undefined when they are
   * not kept (not a frame holding one NEWVIEW message, decided at its first document).
   */
  #docs: Uint8Array[] | undefined;
  /** The documents of the last message completed, until taken. */
  #lastDocs: Uint8Array[] | undefined;
  /** Bytes of the document in progress. */
  #buffered = 0;
  /** Bytes of the message in progress. */
  #received = 0;
  #nextSeq = 0;

  /**
   * An assembler refusing a document over `maxDocBytes` (default 480 MiB: it is decoded as one
   * string) and a message over `maxMessageBytes` (default {@link MAX_PEER_STREAM_BYTES}).
   */
  constructor(
    maxDocBytes: number = MAX_PEER_DOC_BYTES,
    maxMessageBytes: number = MAX_PEER_STREAM_BYTES,
  ) {
    for (const n of [maxDocBytes, maxMessageBytes]) {
      if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`invalid bound: ${n}`);
    }
    this.#maxDoc = maxDocBytes;
    this.#maxMessage = maxMessageBytes;
  }

  /** True while some frames of a message were received but not its final one. */
  get inProgress(): boolean {
    return this.#nextSeq !== 0;
  }

  /** Bytes of the document in progress held (not yet decoded). */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * The documents (UTF-8 JSON, `json_split.ts`) that the message last returned by {@link push}
   * came in, in order, when it is a `msgs` frame holding one NEWVIEW message (the one whose
   * documents a replica logs), once: the next call returns undefined, and so does a call after
   * any other `push`. Joined by a `JsonJoiner` they give that message's value again.
   */
  takeDocuments(): Uint8Array[] | undefined {
    const docs = this.#lastDocs;
    this.#lastDocs = undefined;
    return docs;
  }

  /**
   * Takes the next frame: returns the message's JSON value after its final frame, else
   * undefined (which no JSON value is).
   *
   * @throws {CodecError} when the frame does not continue the message in progress exactly (or
   * does not start a new one at seq 0), or its document is not a valid next piece, or a bound is
   * passed. The assembler then drops what it held; the connection should be closed.
   */
  push(frame: PieceFrame): unknown {
    try {
      return this.#push(frame);
    } catch (err) {
      this.#reset();
      if (err instanceof SplitError) throw new CodecError(`streamed message: ${err.message}`);
      throw err;
    }
  }

  #push({ seq, docEnd, final, data }: PieceFrame): unknown {
    this.#lastDocs = undefined;
    if (data.length === 0) throw new CodecError("piece frame: empty data");
    if (seq !== this.#nextSeq) {
      throw new CodecError(
        this.#nextSeq === 0
          ? `piece ${seq} without a piece 0 before it`
          : `piece ${seq} where piece ${this.#nextSeq} was expected`,
      );
    }
    if (this.#buffered + data.length > this.#maxDoc) {
      throw new CodecError(`a streamed message's document exceeds ${this.#maxDoc} bytes`);
    }
    if (this.#received + data.length > this.#maxMessage) {
      throw new CodecError(`a streamed message exceeds ${this.#maxMessage} bytes`);
    }
    this.#joiner ??= new JsonJoiner();
    this.#nextSeq = seq + 1;
    this.#received += data.length;
    this.#chunks.push(data);
    this.#buffered += data.length;
    if (!docEnd) return undefined;
    const bytes = this.#chunks.length === 1 ? this.#chunks[0] : concatBytes(this.#chunks);
    this.#chunks = [];
    this.#buffered = 0;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      throw new CodecError("streamed message: a document is not valid UTF-8");
    }
    const first = this.#joiner.partial === undefined;
    this.#joiner.push(text);
    if (first && oneNewView(this.#joiner.partial)) this.#docs = [];
    this.#docs?.push(bytes);
    if (!final) {
      if (this.#joiner.complete) {
        throw new CodecError("streamed message: more documents after the value was complete");
      }
      return undefined;
    }
    const value = this.#joiner.value();
    const docs = this.#docs;
    this.#reset();
    this.#lastDocs = docs;
    return value;
  }

  #reset(): void {
    this.#joiner = undefined;
    this.#chunks = [];
    this.#docs = undefined;
    this.#buffered = 0;
    this.#received = 0;
    this.#nextSeq = 0;
  }
}
