package io.nbdgate.gateway.nbd.server;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A sparse in-memory disk: 64 KiB chunks allocated on first write, so a 1 TiB export costs only
 * what is written. Unwritten chunks read as zeroes and are reported as holes.
 */
final class MemoryBackend implements Backend {
    static final int CHUNK = 64 * 1024;

    private final long size;
    // Guarded by this: every call is short and CPU-bound, so a monitor beats finer locking here.
    private final Map<Long, byte[]> chunks = new HashMap<>();

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
            byte[] chunk = chunks.get(index);
            if (chunk == null) {
                if (run != null) { pieces.add(new Data(runStart, run.flip())); run = null; }
                if (zeroStart < 0) zeroStart = pos;
            } else {
                if (zeroStart >= 0) { pieces.add(new Zeroes(zeroStart, pos - zeroStart)); zeroStart = -1; }
                if (run == null) { run = ByteBuffer.allocate((int) (end - pos)); runStart = pos; }
                run.put(chunk, within, n);
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
            data.get(chunks.computeIfAbsent(pos / CHUNK, i -> new byte[CHUNK]), within, n);
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
            byte[] chunk = chunks.get(index);
            if (n == CHUNK && !keepAllocated) {
                chunks.remove(index);
            } else if (chunk != null) {
                Arrays.fill(chunk, within, within + n, (byte) 0);
            } else if (keepAllocated) {
                chunks.put(index, new byte[CHUNK]);
            }
            pos += n;
        }
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
