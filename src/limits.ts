/**
 * Every size and count limit of lamportkv in one place, with its default and how the limits
 * relate. Modules import their limits from here; the settings a user may change (see
 * `src/config/settings.ts`) start from these defaults and are checked against the hard limits
 * below.
 *
 * Hard limits (not settings) follow from the wire and disk formats:
 *
 * - One operation is one client request (or one transaction): its arguments add up to at most
 *   {@link MAX_OP_BYTES} (the parser's request limit; the server refuses a MULTI whose queued
 *   commands pass it).
 * - A peer frame and a WAL record carry the binary value codec (`src/codec/binary_value.ts`), in
 *   which a byte of an argument takes one byte (and each argument a few more for its tag and
 *   length), so {@link MAX_FRAME_BYTES} holds an update of a maximal operation, and a WAL record
 *   ({@link MAX_RECORD_BYTES}) holds anything a frame can carry. A streamed message's documents
 *   are JSON, in which a byte takes at most 6 (`\u00XX`): a document holds a maximal operation.
 * - A peer message carrying a snapshot, or a batch whose encoding is larger than
 *   {@link PEER_PIECE_BYTES}, is streamed as consecutive `piece` frames of at most that many bytes
 *   (each fits a frame with its header and MAC): its JSON value is split into documents between
 *   the elements of its large arrays, each at most {@link MAX_PEER_DOC_BYTES} (no more than one
 *   JavaScript string can hold), the whole message at most {@link MAX_PEER_STREAM_BYTES}.
 * - Before its hello a peer connection may send one frame of at most
 *   {@link PEER_HELLO_MAX_FRAME_BYTES}; at most {@link MAX_UNAUTHENTICATED_PEERS} such
 *   connections are held at once (the oldest is closed for a new one).
 *
 * The limits are checked against each other when this module loads: a change that breaks a
 * relation fails at once, not in production.
 *
 * @module
 */

/** 1024. */
export const KiB = 1024;
/** 1024 KiB. */
export const MiB = 1024 * KiB;

// ---- keys and values ----

/** Largest key in bytes. */
export const MAX_KEY_BYTES = 64 * KiB;
/**
 * Largest value in bytes: the most `proto-max-bulk-len` may be raised to (its default is
 * {@link DEFAULT_PROTO_MAX_BULK_LEN}), and the longest string APPEND and SETRANGE build. A fixed
 * number, not a replica's setting, where the state machine decides by it: every replica must
 * decide alike.
 */
export const MAX_VALUE_BYTES = 32 * MiB;

// ---- the client port (RESP) ----

/** Default largest bulk string (`proto-max-bulk-len`; Redis's is 512 MiB). */
export const DEFAULT_PROTO_MAX_BULK_LEN = 8 * MiB;
/** Smallest `proto-max-bulk-len` accepted: a maximal key must still fit. */
export const MIN_PROTO_MAX_BULK_LEN = MAX_KEY_BYTES;
/** Largest `proto-max-bulk-len` accepted: a maximal value. */
export const MAX_PROTO_MAX_BULK_LEN = MAX_VALUE_BYTES;
/** Bytes a request may hold beyond its largest bulk string: a key and small arguments. */
export const REQUEST_SLACK_BYTES = 128 * KiB;
/**
 * Most elements of one multibulk request (Redis allows 1M; 64K admits an MSET of 32K pairs while
 * the request's bytes stay bounded by {@link MAX_OP_BYTES}).
 */
export const MAX_MULTIBULK_LEN = 65_536;
/** The most bytes of arguments one operation (a request, or a whole transaction) carries. */
export const MAX_OP_BYTES = MAX_VALUE_BYTES + REQUEST_SLACK_BYTES;
/** Longest inline command line (Redis's `PROTO_INLINE_MAX_SIZE`, 64 KiB). */
export const PROTO_INLINE_MAX_SIZE = 64 * KiB;
/** Bytes read from a client socket at once (Redis's `PROTO_IOBUF_LEN`), while it sends much. */
export const CLIENT_READ_BYTES = 16 * KiB;
/**
 * Read buffer of a connection (client or peer) that is idle or sends little: 2,000 idle
 * connections hold 2 MiB of read buffers, not 32 MiB (see `src/net/read_buffer.ts`).
 */
export const IDLE_READ_BYTES = 1 * KiB;
/**
 * Bulk replies of at least this many bytes are encoded once and the bytes shared by every reply
 * that sends the same value (`src/net/shared_bulks.ts`).
 */
export const SHARED_BULK_MIN_BYTES = 64 * KiB;
/** Most encoded bytes of large bulk replies kept for sharing (the values read most recently). */
export const SHARED_BULK_CACHE_BYTES = 32 * MiB;
/**
 * A bulk string of at least this many bytes that has not fully arrived is collected in parts of
 * the reads that bring it (each byte copied once), not in a buffer that grows and is copied.
 */
export const LARGE_BULK_BYTES = 32 * KiB;
/** Default `client-query-buffer-limit`: a maximal request plus one read. */
export const DEFAULT_CLIENT_QUERY_BUFFER_LIMIT = 16 * MiB;
/** Default `maxclients` (Redis's). */
export const DEFAULT_MAXCLIENTS = 10_000;
/** Default `timeout`: idle clients are never closed (Redis's). */
export const DEFAULT_TIMEOUT_SECONDS = 0;
/**
 * Default `client-request-timeout` (lamportkv's own setting): a request that has started
 * arriving must be complete within this many seconds, or the connection is closed.
 */
export const DEFAULT_CLIENT_REQUEST_TIMEOUT_SECONDS = 10;
/** Default `client-output-buffer-limit normal`: no per-client limit (Redis's `0 0 0`). */
export const DEFAULT_OUTPUT_BUFFER_LIMIT = Object.freeze({ hard: 0, soft: 0, softSeconds: 0 });
/**
 * Default `client-output-buffer-limit pubsub` (Redis's `32mb 8mb 60`): a subscriber whose unsent
 * messages pass 32 MiB, or stay above 8 MiB for 60 s, is disconnected.
 */
export const DEFAULT_PUBSUB_OUTPUT_BUFFER_LIMIT = Object.freeze({
  hard: 32 * MiB,
  soft: 8 * MiB,
  softSeconds: 60,
});
/**
 * Default `maxmemory-clients`: bytes buffered for all clients together (partial requests and
 * unsent replies). Above it the client using the most is closed, as in Redis. Redis's default
 * is 0 (none); lamportkv keeps a replica under 500 MB RSS against thousands of hostile clients.
 */
export const DEFAULT_MAXMEMORY_CLIENTS = 128 * MiB;
/**
 * Writes that may add data are refused once used memory (V8's heap in use plus its external
 * memory) passes this fraction of the smaller of V8's heap limit and the machine's memory, even
 * without `maxmemory`: at V8's heap limit the process dies, and a restart that restores the same
 * state would die again. The rest is room for collection, a snapshot and a catch-up.
 */
export const HEAP_GUARD_FRACTION = 0.75;
/** Used memory is read at most once per this many ms (a reading costs about a microsecond). */
export const MEMORY_READ_INTERVAL_MS = 10;
/**
 * A connection stops being read while this many reply bytes wait to be written (4 MiB, with 128
 * requests in flight: 2,000 hostile connections held a replica at 400-600 MB where 64 MiB and
 * 1,024 held it near 700 MB).
 */
export const CLIENT_PAUSE_READ_UNWRITTEN_BYTES = 4 * MiB;
/** A connection stops being read while this many of its requests wait for their replies. */
export const CLIENT_MAX_IN_FLIGHT = 128;
/** Every connection stops being read while this many operations wait for their outcome. */
export const MAX_OUTSTANDING_OPS = 10_000;

/** The longest delay one timer can wait (`setTimeout` fires at once for longer ones). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

// ---- the peer port ----

/** The largest peer frame payload (after the hello). */
export const MAX_FRAME_BYTES: number = 64 * MiB;
/** The largest frame a peer connection may send before its hello was accepted. */
export const PEER_HELLO_MAX_FRAME_BYTES = 4 * KiB;
/** Default `peer-hello-timeout` (lamportkv's own setting): seconds to complete the hello. */
export const DEFAULT_PEER_HELLO_TIMEOUT_SECONDS = 5;
/** Most peer connections without an accepted hello held at once; the oldest makes room. */
export const MAX_UNAUTHENTICATED_PEERS = 16;
/** Bytes queued on one outgoing peer link before it is dropped (the core resends). */
export const MAX_LINK_QUEUED_BYTES = 64 * MiB;
/** Bytes read from a peer socket at once. */
export const PEER_READ_BYTES = 64 * KiB;
/**
 * Data bytes of one `piece` frame. A message carrying a snapshot, or a batch whose encoding is
 * larger, is streamed as piece frames (`src/net/peer_stream.ts`); the link queues the next one
 * only once the socket took the previous one, so a large message is written as the socket drains
 * instead of filling the queue.
 */
export const PEER_PIECE_BYTES = 4 * MiB;
/**
 * The largest document of a streamed message (480 MiB): one element of a large array (a key with
 * its value) with what surrounds it, decoded as one string. A larger one closes the connection.
 */
export const MAX_PEER_DOC_BYTES: number = 480 * MiB;
/**
 * The largest streamed message (a replica's whole state with the log entries beside it): 64 GiB,
 * a bound against a runaway sender, far above any state a replica can hold in memory.
 */
export const MAX_PEER_STREAM_BYTES: number = 64 * 1024 * MiB;
/**
 * Most bytes of undecoded documents a replica holds over all its peer connections together (one
 * maximal document): a piece that would pass it closes its connection, so peers posing as many
 * replicas cannot make a replica buffer a maximal document each.
 */
export const MAX_PEER_PIECES_HELD_BYTES: number = MAX_PEER_DOC_BYTES;

/**
 * Characters of JSON in one document when a large value is split (`src/codec/json_split.ts`):
 * a streamed peer message's documents, and the records of a snapshot file or of a large log
 * record (`src/storage/record_groups.ts`). A document is cut after the element that reaches it.
 */
export const SPLIT_DOCUMENT_CHARS = 1 * MiB;

// ---- the HTTP port ----

/** Most HTTP requests handled at once by one replica; more get 503 (they are cheap to retry). */
export const MAX_HTTP_IN_FLIGHT = 64;
/**
 * Most request-body bytes buffered at once over all HTTP requests of a replica (REST PUTs of
 * large values); a body that does not fit gets 503 instead of growing the replica's memory.
 */
export const MAX_HTTP_BODY_BYTES_IN_FLIGHT = 64 * MiB;
/** A request body must have arrived within this many ms of its headers (slow senders get 408). */
export const HTTP_BODY_DEADLINE_MS = 10_000;

// ---- the state machine ----

/**
 * Strings changed since they were last hashed into the state's digest are hashed once they take
 * about this many bytes, after the write that passed it, rather than all at the next checkpoint
 * (hashing reads about 0.5 GB a second: 64 MiB is some 130 ms). Twice the largest value, so that
 * one key written again and again is hashed at most every other write.
 */
export const DIGEST_BATCH_BYTES = 64 * MiB;

// ---- the data directory ----

/** The largest WAL or snapshot record payload; a larger length field is damage. */
export const MAX_RECORD_BYTES: number = 256 * MiB;
/**
 * A snapshot is also due once the log after the last one takes this many bytes and as many as
 * that snapshot's file (Redis's `auto-aof-rewrite-min-size` 64mb and `auto-aof-rewrite-percentage`
 * 100): counting deliveries alone, 3,000 SETs of 1 MB values to 10 keys left 2.8 GB of log and
 * no snapshot (the first would have come after 10,000 of them).
 */
export const SNAPSHOT_LOG_MIN_BYTES = 64 * MiB;

// ---- log lines ----

/**
 * Repeated log events from one source (a remote host, a peer): the first {@link LOG_BURST} are
 * written, then at most one per this many ms (`src/log/rate_limit.ts`).
 */
export const LIMIT_LOG_INTERVAL_MS = 5_000;
/** Log events of one kind from one source written before the rate limit applies. */
export const LOG_BURST = 5;
/** Sources the log rate limit remembers; the least recently seen are forgotten first. */
export const LOG_MAX_SOURCES = 1024;
/** A write-ahead log sync slower than this many ms is logged (`wal.slow_fsync`, warn). */
export const SLOW_FSYNC_MS = 100;
/** The shortest `--failure-timeout` a replica takes, in ms. */
export const MIN_FAILURE_TIMEOUT_MS = 100;
/** The longest `--failure-timeout` a replica takes, in ms. */
export const MAX_FAILURE_TIMEOUT_MS = 60_000;

// ---- how they relate ----

/** Worst-case JSON size of one byte of a key or value (`\u00XX`). */
const JSON_BYTES_PER_BYTE = 6;
/** Size in the binary value codec of one byte of a key or value. */
const BINARY_BYTES_PER_BYTE = 1;
/** Room in a frame or record for everything around a key and value. */
const ENVELOPE_BYTES = 64 * KiB;
/** V8's longest string (64-bit): 2^29 - 24 UTF-16 code units. */
const MAX_STRING_LENGTH = 2 ** 29 - 24;

function relate(condition: boolean, what: string): void {
  if (!condition) throw new Error(`src/limits.ts: ${what}`);
}

relate(
  MIN_PROTO_MAX_BULK_LEN >= MAX_KEY_BYTES &&
    MIN_PROTO_MAX_BULK_LEN <= DEFAULT_PROTO_MAX_BULK_LEN &&
    DEFAULT_PROTO_MAX_BULK_LEN <= MAX_PROTO_MAX_BULK_LEN &&
    MAX_PROTO_MAX_BULK_LEN <= MAX_VALUE_BYTES,
  "proto-max-bulk-len must admit a maximal key and at most a maximal value, its default between",
);
relate(
  REQUEST_SLACK_BYTES >= MAX_KEY_BYTES + KiB,
  "a request's slack must hold a maximal key and small arguments",
);
relate(
  DEFAULT_CLIENT_QUERY_BUFFER_LIMIT >=
    DEFAULT_PROTO_MAX_BULK_LEN + REQUEST_SLACK_BYTES + CLIENT_READ_BYTES,
  "the default client-query-buffer-limit must hold a maximal request and one read",
);
relate(
  MAX_FRAME_BYTES >= BINARY_BYTES_PER_BYTE * MAX_OP_BYTES + ENVELOPE_BYTES,
  "a frame must carry an update of a maximal operation",
);
relate(
  MAX_PEER_DOC_BYTES >= JSON_BYTES_PER_BYTE * MAX_OP_BYTES + ENVELOPE_BYTES,
  "a streamed document must carry a maximal operation as JSON",
);
relate(MAX_RECORD_BYTES >= MAX_FRAME_BYTES, "a WAL record must hold anything a frame carries");
relate(
  DIGEST_BATCH_BYTES >= 2 * MAX_VALUE_BYTES,
  "a batch of strings hashed into the digest holds two maximal values",
);
relate(
  MAX_RECORD_BYTES >= JSON_BYTES_PER_BYTE * MAX_OP_BYTES + ENVELOPE_BYTES,
  "a record of a snapshot file (a JSON document) must hold a maximal value as JSON",
);
relate(MAX_LINK_QUEUED_BYTES >= MAX_FRAME_BYTES, "a peer link must queue at least one frame");
relate(
  PEER_PIECE_BYTES + ENVELOPE_BYTES <= MAX_FRAME_BYTES,
  "a piece frame (its data, header and MAC) must fit a frame",
);
relate(
  2 * (PEER_PIECE_BYTES + ENVELOPE_BYTES) <= MAX_LINK_QUEUED_BYTES,
  "a peer link's queue must hold a piece frame with room to spare",
);
relate(
  MAX_PEER_DOC_BYTES >= MAX_RECORD_BYTES + MAX_FRAME_BYTES,
  "a streamed document must carry a maximal value (or a record) and a frame's worth beside it",
);
relate(
  MAX_PEER_STREAM_BYTES >= MAX_PEER_DOC_BYTES,
  "a streamed message must hold at least one maximal document",
);
relate(
  MAX_PEER_PIECES_HELD_BYTES >= MAX_PEER_DOC_BYTES,
  "a replica must be able to hold one maximal document in pieces",
);
relate(
  MAX_PEER_DOC_BYTES <= MAX_STRING_LENGTH,
  "a streamed document (UTF-8 JSON) must decode into one JavaScript string",
);
relate(
  3 * SPLIT_DOCUMENT_CHARS + ENVELOPE_BYTES <= MAX_RECORD_BYTES &&
    3 * SPLIT_DOCUMENT_CHARS + ENVELOPE_BYTES <= MAX_PEER_DOC_BYTES,
  "a split document (UTF-8: at most 3 bytes a character) fits a record and a streamed document",
);
relate(
  PEER_HELLO_MAX_FRAME_BYTES >= 256 && PEER_HELLO_MAX_FRAME_BYTES < MAX_FRAME_BYTES,
  "a hello frame (~60 bytes) fits the pre-hello limit, which is small",
);
relate(
  DEFAULT_MAXMEMORY_CLIENTS >= DEFAULT_CLIENT_QUERY_BUFFER_LIMIT + MAX_VALUE_BYTES,
  "maxmemory-clients must leave room for one maximal request and reply",
);
relate(
  MAX_HTTP_BODY_BYTES_IN_FLIGHT >= MAX_PROTO_MAX_BULK_LEN,
  "the HTTP body budget must admit one REST PUT of a maximal value",
);
relate(
  SNAPSHOT_LOG_MIN_BYTES >= MAX_OP_BYTES,
  "one maximal operation alone does not make a snapshot due by the log's bytes",
);
