package io.nbdgate.protocol.client;

import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.InfoType;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.TransmissionFlag;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * What the server says of the export during NBD_OPT_GO (NBD_REP_INFO items) or in the reply to
 * NBD_OPT_EXPORT_NAME, checked against the spec and collected into an {@link ExportInfo}.
 */
final class ExportInfoReplies {
    private long size = -1;
    private int transmissionFlags;
    private String canonicalName;
    private String description;
    private int minimumBlock = NbdSizes.DEFAULT_MINIMUM_BLOCK;
    private int preferredBlock = NbdSizes.DEFAULT_PREFERRED_BLOCK;
    private long maximumPayload = NbdSizes.DEFAULT_MAXIMUM_PAYLOAD;
    private boolean blockSizeAdvertised;

    /** One NBD_REP_INFO payload; null if it was fine (or of a type a client must ignore). */
    ProtocolViolation info(byte[] p) {
        if (p.length < 2) {
            return new ProtocolViolation.MalformedMessage("NBD_REP_INFO", "length " + p.length + " < 2");
        }
        ByteBuffer b = ByteBuffer.wrap(p);
        InfoType type = InfoType.fromCode(Short.toUnsignedInt(b.getShort()));
        if (type == null) {
            return null; // clients MUST ignore information types they do not understand
        }
        return switch (type) {
            case EXPORT -> p.length != 12
                    ? new ProtocolViolation.MalformedMessage("NBD_INFO_EXPORT", "length " + p.length + " is not 12")
                    : export(b.getLong(), Short.toUnsignedInt(b.getShort()), true);
            case NAME -> {
                canonicalName = new String(p, 2, p.length - 2, StandardCharsets.UTF_8);
                yield null;
            }
            case DESCRIPTION -> {
                description = new String(p, 2, p.length - 2, StandardCharsets.UTF_8);
                yield null;
            }
            case BLOCK_SIZE -> p.length != 14
                    ? new ProtocolViolation.MalformedMessage("NBD_INFO_BLOCK_SIZE", "length " + p.length + " is not 14")
                    : blockSizes(Integer.toUnsignedLong(b.getInt()), Integer.toUnsignedLong(b.getInt()),
                            Integer.toUnsignedLong(b.getInt()));
        };
    }

    /** The export's size and transmission flags (NBD_INFO_EXPORT, or the EXPORT_NAME reply); null if valid. */
    ProtocolViolation export(long bytes, int flags, boolean flagsRequired) {
        size = bytes;
        transmissionFlags = flags;
        if (size < 0) {
            return new ProtocolViolation.OversizeLength("export size", size, Long.MAX_VALUE);
        }
        if (flagsRequired && !TransmissionFlag.HAS_FLAGS.isSetIn(flags)) {
            return new ProtocolViolation.MalformedMessage("NBD_INFO_EXPORT", "NBD_FLAG_HAS_FLAGS is clear");
        }
        return null;
    }

    private ProtocolViolation blockSizes(long min, long pref, long max) {
        String bad = checkBlockSizes(min, pref, max);
        if (bad != null) {
            return new ProtocolViolation.MalformedMessage("NBD_INFO_BLOCK_SIZE", bad);
        }
        minimumBlock = (int) min;
        preferredBlock = (int) pref;
        maximumPayload = max;
        blockSizeAdvertised = true;
        return null;
    }

    /** The spec's rules for advertised size constraints; null if they hold. */
    static String checkBlockSizes(long min, long pref, long max) {
        if (min == 0 || Long.bitCount(min) != 1 || min > NbdSizes.MAX_MINIMUM_BLOCK) {
            return "minimum block size " + min + " is not a power of 2 between 1 and 65536";
        }
        if (Long.bitCount(pref) != 1 || pref < Math.max(min, 512)) {
            return "preferred block size " + pref + " is not a power of 2 >= max(minimum, 512)";
        }
        if (max < pref) {
            return "maximum payload " + max + " is smaller than the preferred block size " + pref;
        }
        return null;
    }

    /** Whether NBD_INFO_EXPORT (or the EXPORT_NAME reply) came: without it there is no export to use. */
    boolean hasExport() {
        return size >= 0;
    }

    ExportInfo result(String requestedName, TransmissionMode mode) {
        return new ExportInfo(canonicalName != null ? canonicalName : requestedName, description, size,
                transmissionFlags, minimumBlock, preferredBlock, maximumPayload, blockSizeAdvertised, mode);
    }
}
