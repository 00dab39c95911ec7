package io.nbdgate.gateway.nbd.server;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A sparse in-memory disk: 64 KiB chunks allocated on first write, so a 1 TiB export costs only
 * what is written. Unwritten chunks read as zeroes and are reported as holes.
 *
 * <p>Chunks live outside the Java heap, each freed by the GC once dropped ({@link Arena#ofAuto()}): as byte
 * arrays, every young collection copied the freshly written data, hundreds of MB per pause while a disk is
 * being filled, and the event loops stood still that long (seconds under an emulated CPU).
 */
final class MemoryBackend implements Backend {
    static final int CHUNK = 64 * 1024;

    private final long size;
    // Guarded by this: every call is short and CPU-bound, so a monitor beats finer locking here.
    private final Map<Long, MemorySegment> chunks = new HashMap<>();

    MemoryBackend(long size) {
        if (size < 0) throw new IllegalArgumentException("size must not be negative: " + size);
        this.size = size;
    }

    @Override public long size() {
        return size;
    }

    @Override public boolean blocking() {
        return false;
    }

    @Override
    public synchronized List<ReadPiece> read(long offset, int length) {
        List<ReadPiece> pieces = new ArrayList<>();
        ByteBuffer run = null;
        long runStart = offset;
        long zeroStart = -1;
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long index = pos / CHUNK;
            int within = (int) (pos % CHUNK);
            int n = (int) Math.min(CHUNK - within, end - pos);
            MemorySegment chunk = chunks.get(index);
            if (chunk == null) {
                if (run != null) { pieces.add(new Data(runStart, run.flip())); run = null; }
                if (zeroStart < 0) zeroStart = pos;
            } else {
                if (zeroStart >= 0) { pieces.add(new Zeroes(zeroStart, pos - zeroStart)); zeroStart = -1; }
                if (run == null) { run = ByteBuffer.allocate((int) (end - pos)); runStart = pos; }
                MemorySegment.copy(chunk, ValueLayout.JAVA_BYTE, within, run.array(), run.position(), n);
                run.position(run.position() + n);
            }
            pos += n;
        }
        if (run != null) pieces.add(new Data(runStart, run.flip()));
        if (zeroStart >= 0) pieces.add(new Zeroes(zeroStart, end - zeroStart));
        return pieces;
    }

    @Override
    public synchronized void write(long offset, ByteBuffer data, boolean fua) {
        long pos = offset;
        while (data.hasRemaining()) {
            int within = (int) (pos % CHUNK);
            int n = Math.min(CHUNK - within, data.remaining());
            MemorySegment.copy(MemorySegment.ofBuffer(data), 0, chunks.computeIfAbsent(pos / CHUNK, i -> newChunk()),
                    within, n);
            data.position(data.position() + n);
            pos += n;
        }
    }

    @Override public void flush() {
        // Memory has no volatile cache to flush.
    }

    @Override
    public synchronized void trim(long offset, long length, boolean fua) {
        zero(offset, length, false);
    }

    @Override
    public synchronized void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua) {
        // Always fast here: dropping or clearing chunks costs less than copying zero payloads.
        zero(offset, length, noHole);
    }

    /** Whole chunks are dropped (or, with {@code keepAllocated}, cleared); partial ones are cleared. */
    private void zero(long offset, long length, boolean keepAllocated) {
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long index = pos / CHUNK;
            int within = (int) (pos % CHUNK);
            int n = (int) Math.min(CHUNK - within, end - pos);
            MemorySegment chunk = chunks.get(index);
            if (n == CHUNK && !keepAllocated) {
                chunks.remove(index);
            } else if (chunk != null) {
                chunk.asSlice(within, n).fill((byte) 0);
            } else if (keepAllocated) {
                chunks.put(index, newChunk());
            }
            pos += n;
        }
    }

    /** Zeroed, as the JDK allocates it. */
    private static MemorySegment newChunk() {
        return Arena.ofAuto().allocate(CHUNK);
    }

    @Override public void cache(long offset, long length) {
        // Everything is already in memory.
    }

    /** Bytes of memory held by written chunks; for tests and status. */
    synchronized long allocatedBytes() {
        return (long) chunks.size() * CHUNK;
    }

    @Override public synchronized void close() {
        chunks.clear();
    }
}
