package io.nbdgate.gateway.device;

import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.DeviceParams;

/** The ublk device parameters an NBD export calls for. Pure: no I/O, so every rule has a unit test. */
final class DeviceGeometry {
    /** Largest request we let the kernel send in user-copy and copy modes: memory per tag, so kept modest. */
    static final int MAX_IO_BYTES = 512 << 10;
    /**
     * Largest request in zero-copy mode, where the data lives in the kernel's request pages and costs us no
     * memory: 1 MiB, so a 1 MiB I/O is one NBD request (as with nbd.ko), not two. Side by side with 512 KiB it
     * is ahead on 1 MiB reads and writes (docs/benchmarks/2026-12-01-wall-clock-buffer-modes.md).
     */
    static final int MAX_IO_BYTES_ZERO_COPY = 1 << 20;
    // Discard and write-zeroes ranges are split by the kernel; 1 GiB fits a compact (32-bit) NBD length.
    private static final int MAX_RANGE_SECTORS = (1 << 30) >> 9;
    private static final int MAX_LOGICAL_BLOCK = 4096;

    private DeviceGeometry() {
    }

    /** Largest I/O: the server's maximum payload, at most the mode's limit, a multiple of 4 KiB. */
    static int maxIoBytes(ExportInfo e, BufferMode mode) {
        long max = Math.min(e.maximumPayload(), mode == BufferMode.ZERO_COPY ? MAX_IO_BYTES_ZERO_COPY : MAX_IO_BYTES);
        if (max < 4096) {
            throw new IllegalArgumentException("the server's maximum payload (" + e.maximumPayload()
                    + " bytes) is below one 4 KiB page");
        }
        return (int) (max & ~4095L);
    }

    static DeviceParams params(ExportInfo e, BufferMode mode, boolean forceReadOnly) {
        int logical = Math.max(512, e.minimumBlock());
        if (logical > MAX_LOGICAL_BLOCK || Integer.bitCount(logical) != 1) {
            throw new IllegalArgumentException("the export's minimum block size " + e.minimumBlock()
                    + " cannot be a logical block size (power of two up to " + MAX_LOGICAL_BLOCK + ")");
        }
        int physical = Math.max(logical, Math.min(Integer.highestOneBit(Math.max(1, e.preferredBlock())), 4096));
        int maxIo = maxIoBytes(e, mode);
        int ioOpt = Integer.highestOneBit(maxIo);
        long size = e.size() - e.size() % logical; // a trailing partial block cannot be addressed
        boolean trim = e.canTrim() && !e.readOnly();
        boolean zeroes = e.canWriteZeroes() && !e.readOnly();
        return new DeviceParams(size, logical, physical, physical, ioOpt, maxIo >> 9,
                e.readOnly() || forceReadOnly, e.rotational(), e.canFlush(), e.canFua(),
                trim ? MAX_RANGE_SECTORS : 0, physical, zeroes ? MAX_RANGE_SECTORS : 0, 511, 0, 0, 0, null);
    }
}
