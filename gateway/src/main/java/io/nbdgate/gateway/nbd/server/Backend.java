package io.nbdgate.gateway.nbd.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Where an export's bytes live. One implementation per kind of storage ({@link MemoryBackend},
 * {@link FileBackend}); the server checks bounds, alignment and read-only before calling, so
 * implementations may assume valid ranges. Failures are {@link IOException}s; a
 * {@link CommandFailure} carries the exact NBD error to reply with.
 */
interface Backend extends AutoCloseable {

    long size();

    /** True when calls block on disk I/O and so must run on a worker thread, never on the event loop. */
    boolean blocking();

    /** Reads {@code length} bytes as data and zero pieces in ascending offset order covering the range. */
    List<ReadPiece> read(long offset, int length) throws IOException;

    /** Writes all of {@code data}; with {@code fua} the data is on stable storage when this returns. */
    void write(long offset, ByteBuffer data, boolean fua) throws IOException;

    /** Makes every completed write durable. */
    void flush() throws IOException;

    /** Discards the range where the storage can; the contents afterwards are unspecified. */
    void trim(long offset, long length, boolean fua) throws IOException;

    /**
     * Makes the range read as zeroes. {@code noHole}: the range must stay allocated.
     * {@code fastOnly}: fail with ENOTSUP, changing nothing, unless this is faster than writing zeroes.
     */
    void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua) throws IOException;

    /** A hint that the range will be read soon. */
    void cache(long offset, long length) throws IOException;

    @Override
    void close() throws IOException;

    /** One part of a read reply: bytes, or a run known to read as zeroes. */
    sealed interface ReadPiece permits Data, Zeroes {
        long offset();

        long length();
    }

    record Data(long offset, ByteBuffer bytes) implements ReadPiece {
        @Override public long length() {
            return bytes.remaining();
        }
    }

    record Zeroes(long offset, long length) implements ReadPiece {}
}
