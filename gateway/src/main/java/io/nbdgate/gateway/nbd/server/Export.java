package io.nbdgate.gateway.nbd.server;

import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.TransmissionFlag;
import io.nbdgate.protocol.server.OfferedExport;
import java.io.IOException;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.OptionalLong;

/**
 * One named export of the embedded server: a backend plus whether clients may write. The backend
 * is shared by every connection to the export, which is what makes CAN_MULTI_CONN honest.
 */
public final class Export implements AutoCloseable {
    private final String name;
    private final String description;
    private final Backend backend;
    private final boolean readOnly;

    Export(String name, String description, Backend backend, boolean readOnly) {
        if (name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > NbdSizes.MAX_STRING) {
            throw new IllegalArgumentException("export name longer than 4096 bytes");
        }
        this.name = name;
        this.description = description;
        this.backend = backend;
        this.readOnly = readOnly;
    }

    /** A sparse in-memory export of {@code size} bytes, all zeroes at first. */
    public static Export memory(String name, long size, boolean readOnly) {
        return new Export(name, "memory, " + size + " bytes", new MemoryBackend(size), readOnly);
    }

    /** An export backed by the file at {@code path}, created sparse with {@code createSize} if missing. */
    public static Export file(String name, Path path, OptionalLong createSize, boolean readOnly) throws IOException {
        return new Export(name, "file " + path, FileBackend.open(path, createSize, readOnly), readOnly);
    }

    public String name() {
        return name;
    }

    public long size() {
        return backend.size();
    }

    public boolean readOnly() {
        return readOnly;
    }

    Backend backend() {
        return backend;
    }

    /** What the handshake advertises: writes, trims and zeroing only when the export is writable. */
    OfferedExport info() {
        EnumSet<TransmissionFlag> flags = EnumSet.of(TransmissionFlag.HAS_FLAGS, TransmissionFlag.SEND_FLUSH,
                TransmissionFlag.CAN_MULTI_CONN, TransmissionFlag.SEND_CACHE);
        if (readOnly) {
            flags.add(TransmissionFlag.READ_ONLY);
        } else {
            flags.addAll(EnumSet.of(TransmissionFlag.SEND_FUA, TransmissionFlag.SEND_TRIM,
                    TransmissionFlag.SEND_WRITE_ZEROES, TransmissionFlag.SEND_FAST_ZERO));
        }
        return new OfferedExport(name, description, backend.size(), TransmissionFlag.encode(flags),
                NbdSizes.DEFAULT_MINIMUM_BLOCK, NbdSizes.DEFAULT_PREFERRED_BLOCK, NbdSizes.DEFAULT_MAXIMUM_PAYLOAD);
    }

    @Override
    public void close() throws IOException {
        backend.close();
    }
}
