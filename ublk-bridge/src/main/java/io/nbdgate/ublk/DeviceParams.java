package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemorySegment;

/**
 * struct ublk_params in domain terms. Sizes are bytes (powers of two where the kernel wants shifts);
 * zero limits leave the parameter group out. {@code devt} is only filled by GET_PARAMS.
 */
public record DeviceParams(long sizeBytes, int logicalBlockSize, int physicalBlockSize, int ioMin, int ioOpt,
        int maxSectors, boolean readOnly, boolean rotational, boolean volatileCache, boolean fua,
        int maxDiscardSectors, int discardGranularity, int maxWriteZeroesSectors, int dmaAlignment,
        long segBoundaryMask, int maxSegmentSize, int maxSegments, Devt devt) {

    /** Character and block device numbers of a started device. */
    public record Devt(int charMajor, int charMinor, int diskMajor, int diskMinor) {
    }

    /** A plain disk: 512-byte sectors, 4 KiB physical, write-back cache with FUA, discard and write-zeroes. */
    public static DeviceParams disk(long sizeBytes, int maxIoBytes) {
        return new DeviceParams(sizeBytes, 512, 4096, 4096, maxIoBytes, maxIoBytes >> 9, false, false, true, true,
                maxIoBytes >> 9, 4096, maxIoBytes >> 9, 511, 0, 0, 0, null);
    }

    public DeviceParams withSize(long bytes) {
        return new DeviceParams(bytes, logicalBlockSize, physicalBlockSize, ioMin, ioOpt, maxSectors, readOnly,
                rotational, volatileCache, fua, maxDiscardSectors, discardGranularity, maxWriteZeroesSectors,
                dmaAlignment, segBoundaryMask, maxSegmentSize, maxSegments, devt);
    }

    public DeviceParams withReadOnly(boolean ro) {
        return new DeviceParams(sizeBytes, logicalBlockSize, physicalBlockSize, ioMin, ioOpt, maxSectors, ro,
                rotational, volatileCache, fua, maxDiscardSectors, discardGranularity, maxWriteZeroesSectors,
                dmaAlignment, segBoundaryMask, maxSegmentSize, maxSegments, devt);
    }

    public DeviceParams withSegments(long boundaryMask, int maxSize, int count) {
        return new DeviceParams(sizeBytes, logicalBlockSize, physicalBlockSize, ioMin, ioOpt, maxSectors, readOnly,
                rotational, volatileCache, fua, maxDiscardSectors, discardGranularity, maxWriteZeroesSectors,
                dmaAlignment, boundaryMask, maxSize, count, devt);
    }

    private static byte shift(int bytes) {
        if (bytes <= 0) {
            return 0;
        }
        if (Integer.bitCount(bytes) != 1) {
            throw new IllegalArgumentException(bytes + " is not a power of two");
        }
        return (byte) Integer.numberOfTrailingZeros(bytes);
    }

    void write(MemorySegment p) {
        p.fill((byte) 0);
        int types = PARAM_TYPE_BASIC;
        int attrs = (readOnly ? ATTR_READ_ONLY : 0) | (rotational ? ATTR_ROTATIONAL : 0)
                | (volatileCache ? ATTR_VOLATILE_CACHE : 0) | (fua ? ATTR_FUA : 0);
        p.set(JAVA_INT, P_BASIC, attrs);
        p.set(JAVA_BYTE, P_BASIC + 4, shift(logicalBlockSize));
        p.set(JAVA_BYTE, P_BASIC + 5, shift(physicalBlockSize));
        p.set(JAVA_BYTE, P_BASIC + 6, shift(ioOpt));
        p.set(JAVA_BYTE, P_BASIC + 7, shift(ioMin));
        p.set(JAVA_INT, P_BASIC + 8, maxSectors);
        p.set(JAVA_LONG, P_BASIC + 16, sizeBytes >> 9);
        if (maxDiscardSectors > 0 || maxWriteZeroesSectors > 0) {
            types |= PARAM_TYPE_DISCARD;
            p.set(JAVA_INT, P_DISCARD + 4, Math.max(discardGranularity, logicalBlockSize));
            p.set(JAVA_INT, P_DISCARD + 8, maxDiscardSectors);
            p.set(JAVA_INT, P_DISCARD + 12, maxWriteZeroesSectors);
            p.set(JAVA_SHORT, P_DISCARD + 16, (short) 1); // the kernel takes single-segment discard only
        }
        if (dmaAlignment > 0) {
            types |= PARAM_TYPE_DMA_ALIGN;
            p.set(JAVA_INT, P_DMA, dmaAlignment);
        }
        if (maxSegmentSize > 0) {
            types |= PARAM_TYPE_SEGMENT;
            p.set(JAVA_LONG, P_SEG, segBoundaryMask);
            p.set(JAVA_INT, P_SEG + 8, maxSegmentSize);
            p.set(JAVA_SHORT, P_SEG + 12, (short) maxSegments);
        }
        p.set(JAVA_INT, P_LEN, (int) PARAMS.byteSize());
        p.set(JAVA_INT, P_TYPES, types);
    }

    static DeviceParams read(MemorySegment p) {
        int types = p.get(JAVA_INT, P_TYPES);
        int attrs = p.get(JAVA_INT, P_BASIC);
        boolean discard = (types & PARAM_TYPE_DISCARD) != 0;
        boolean seg = (types & PARAM_TYPE_SEGMENT) != 0;
        Devt devt = (types & PARAM_TYPE_DEVT) == 0 ? null
                : new Devt(p.get(JAVA_INT, P_DEVT), p.get(JAVA_INT, P_DEVT + 4), p.get(JAVA_INT, P_DEVT + 8),
                        p.get(JAVA_INT, P_DEVT + 12));
        return new DeviceParams(p.get(JAVA_LONG, P_BASIC + 16) << 9, 1 << p.get(JAVA_BYTE, P_BASIC + 4),
                1 << p.get(JAVA_BYTE, P_BASIC + 5), 1 << p.get(JAVA_BYTE, P_BASIC + 7),
                1 << p.get(JAVA_BYTE, P_BASIC + 6), p.get(JAVA_INT, P_BASIC + 8), (attrs & ATTR_READ_ONLY) != 0,
                (attrs & ATTR_ROTATIONAL) != 0, (attrs & ATTR_VOLATILE_CACHE) != 0, (attrs & ATTR_FUA) != 0,
                discard ? p.get(JAVA_INT, P_DISCARD + 8) : 0, discard ? p.get(JAVA_INT, P_DISCARD + 4) : 0,
                discard ? p.get(JAVA_INT, P_DISCARD + 12) : 0,
                (types & PARAM_TYPE_DMA_ALIGN) != 0 ? p.get(JAVA_INT, P_DMA) : 0,
                seg ? p.get(JAVA_LONG, P_SEG) : 0, seg ? p.get(JAVA_INT, P_SEG + 8) : 0,
                seg ? Short.toUnsignedInt(p.get(JAVA_SHORT, P_SEG + 12)) : 0, devt);
    }
}
