package io.nbdgate.protocol;

/**
 * What the handshake learned about the export: the result of NBD_OPT_GO (or NBD_OPT_EXPORT_NAME).
 * Block sizes are the server's if it sent NBD_INFO_BLOCK_SIZE, the spec's defaults otherwise.
 */
public record ExportInfo(String name, String description, long size, int transmissionFlags, int minimumBlock,
                         int preferredBlock, long maximumPayload, boolean blockSizeAdvertised,
                         TransmissionMode mode) {

    public boolean readOnly() {
        return TransmissionFlag.READ_ONLY.isSetIn(transmissionFlags);
    }

    public boolean canFlush() {
        return TransmissionFlag.SEND_FLUSH.isSetIn(transmissionFlags);
    }

    public boolean canFua() {
        return TransmissionFlag.SEND_FUA.isSetIn(transmissionFlags);
    }

    public boolean rotational() {
        return TransmissionFlag.ROTATIONAL.isSetIn(transmissionFlags);
    }

    public boolean canTrim() {
        return TransmissionFlag.SEND_TRIM.isSetIn(transmissionFlags);
    }

    public boolean canWriteZeroes() {
        return TransmissionFlag.SEND_WRITE_ZEROES.isSetIn(transmissionFlags);
    }

    public boolean canDontFragment() {
        return TransmissionFlag.SEND_DF.isSetIn(transmissionFlags);
    }

    public boolean canMultiConn() {
        return TransmissionFlag.CAN_MULTI_CONN.isSetIn(transmissionFlags);
    }

    public boolean canResize() {
        return TransmissionFlag.SEND_RESIZE.isSetIn(transmissionFlags);
    }

    public boolean canCache() {
        return TransmissionFlag.SEND_CACHE.isSetIn(transmissionFlags);
    }

    public boolean canFastZero() {
        return TransmissionFlag.SEND_FAST_ZERO.isSetIn(transmissionFlags);
    }

    public boolean structuredReplies() {
        return mode.structuredReplies();
    }

    public boolean extendedHeaders() {
        return mode == TransmissionMode.EXTENDED;
    }

    /** The same export with another size (an export that grew or shrank on the server). */
    public ExportInfo withSize(long bytes) {
        return new ExportInfo(name, description, bytes, transmissionFlags, minimumBlock, preferredBlock, maximumPayload,
                blockSizeAdvertised, mode);
    }
}
