package io.nbdgate.gateway.nbd.server;

import io.nbdgate.protocol.NbdError;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;

/**
 * An export backed by a regular file: positional reads and writes through a FileChannel, FLUSH and
 * FUA as fdatasync, TRIM and WRITE_ZEROES as fallocate hole punching or zeroing. Every call blocks
 * on the disk, so the server runs it on a worker pool ({@link #blocking()} is true).
 */
final class FileBackend implements Backend {
    private static final int ZERO_BUFFER = 1 << 20;

    private final Path path;
    private final FileChannel channel;
    private final LibcFile libc;
    private final long size;
    private final boolean readOnly;

    private FileBackend(Path path, FileChannel channel, LibcFile libc, long size, boolean readOnly) {
        this.readOnly = readOnly;
        this.path = path;
        this.channel = channel;
        this.libc = libc;
        this.size = size;
    }

    /**
     * Opens {@code path}; when it does not exist and {@code createSize} is given, creates it sparse
     * with that size. An existing file keeps its own size.
     */
    static FileBackend open(Path path, OptionalLong createSize, boolean readOnly) throws IOException {
        if (!Files.exists(path)) {
            if (createSize.isEmpty()) {
                throw new NoSuchFileException(path.toString(), null, "file does not exist; give a size (NAME=file:PATH:SIZE) to create it");
            }
            if (readOnly) {
                throw new NoSuchFileException(path.toString(), null, "file does not exist and a read-only export cannot create it");
            }
            try (RandomAccessFile raf = new RandomAccessFile(path.toFile(), "rw")) {
                raf.setLength(createSize.getAsLong()); // ftruncate: no blocks allocated
            }
        }
        if (!Files.isRegularFile(path)) throw new IOException(path + " is not a regular file");
        FileChannel channel = readOnly
                ? FileChannel.open(path, StandardOpenOption.READ)
                : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        try {
            LibcFile libc = LibcFile.open(path, readOnly);
            return new FileBackend(path, channel, libc, channel.size(), readOnly);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    @Override public long size() {
        return size;
    }

    @Override public boolean blocking() {
        return true;
    }

    @Override
    public List<ReadPiece> read(long offset, int length) throws IOException {
        List<ReadPiece> pieces = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            // SEEK_DATA/SEEK_HOLE let holes go out as OFFSET_HOLE chunks instead of zero bytes.
            long data = libc.nextData(pos);
            if (data < 0 || data >= end) {
                pieces.add(new Zeroes(pos, end - pos));
                break;
            }
            if (data > pos) pieces.add(new Zeroes(pos, data - pos));
            long hole = Math.min(libc.nextHole(data), end);
            ByteBuffer bytes = ByteBuffer.allocate((int) (hole - data));
            readFully(bytes, data);
            pieces.add(new Data(data, bytes.flip()));
            pos = hole;
        }
        return pieces;
    }

    private void readFully(ByteBuffer into, long position) throws IOException {
        long pos = position;
        while (into.hasRemaining()) {
            int n = channel.read(into, pos);
            if (n < 0) {
                // The file shrank under us: what is past its end reads as zeroes.
                while (into.hasRemaining()) into.put((byte) 0);
                return;
            }
            pos += n;
        }
    }

    @Override
    public void write(long offset, ByteBuffer data, boolean fua) throws IOException {
        long pos = offset;
        while (data.hasRemaining()) pos += channel.write(data, pos);
        if (fua) channel.force(false);
    }

    @Override
    public void flush() throws IOException {
        channel.force(false);
    }

    @Override
    public void trim(long offset, long length, boolean fua) throws IOException {
        try {
            libc.punchHole(offset, length);
        } catch (LibcFile.LibcException e) {
            // TRIM is a hint: a filesystem without hole punching just keeps the data.
            if (e.errno != LibcFile.EOPNOTSUPP) throw e;
        }
        if (fua) channel.force(false);
    }

    @Override
    public void writeZeroes(long offset, long length, boolean noHole, boolean fastOnly, boolean fua) throws IOException {
        if (!noHole && attempt(() -> libc.punchHole(offset, length))
                || attempt(() -> libc.zeroRange(offset, length))) {
            if (fua) channel.force(false);
            return;
        }
        if (fastOnly) {
            throw new CommandFailure(NbdError.ENOTSUP, "the filesystem of " + path + " cannot zero without writing");
        }
        ByteBuffer zeroes = ByteBuffer.allocate((int) Math.min(ZERO_BUFFER, length));
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            zeroes.clear().limit((int) Math.min(zeroes.capacity(), end - pos));
            while (zeroes.hasRemaining()) pos += channel.write(zeroes, pos);
        }
        if (fua) channel.force(false);
    }

    private interface LibcCall {
        void run() throws IOException;
    }

    /** True when the call worked, false when the filesystem does not support it. */
    private static boolean attempt(LibcCall call) throws IOException {
        try {
            call.run();
            return true;
        } catch (LibcFile.LibcException e) {
            if (e.errno == LibcFile.EOPNOTSUPP) return false;
            throw e;
        }
    }

    @Override
    public void cache(long offset, long length) throws IOException {
        libc.willNeed(offset, length);
    }

    @Override
    public void close() throws IOException {
        // Whatever clients wrote without FLUSH is made durable before the export goes away.
        try (channel; libc) {
            if (channel.isOpen() && !readOnly) channel.force(false);
            // both closed, the first failure reported
        }
    }
}
