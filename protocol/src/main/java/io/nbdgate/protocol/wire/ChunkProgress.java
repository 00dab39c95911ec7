package io.nbdgate.protocol.wire;

/** How far a chunk payload decoder got with the bytes it was given. */
enum ChunkProgress {
    /** It needs {@code needed()} readable bytes before it can go on; nothing was consumed. */
    NEED_MORE,
    /** One block status descriptor is decoded. */
    EXTENT,
    /** The payload's fixed part is decoded; whatever remains of the chunk is to be skipped. */
    DONE,
    /** The payload is malformed: {@code violation()}. */
    VIOLATION
}
