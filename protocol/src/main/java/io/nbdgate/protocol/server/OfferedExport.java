package io.nbdgate.protocol.server;

import io.nbdgate.protocol.TransmissionFlag;

/**
 * What the server tells a client about one export: the fields of NBD_INFO_EXPORT, NAME,
 * DESCRIPTION and BLOCK_SIZE, and the NBD_REP_SERVER entry of NBD_OPT_LIST.
 */
public record OfferedExport(String name, String description, long size, int transmissionFlags,
                         int minimumBlock, int preferredBlock, int maximumPayload) {
    public OfferedExport {
        if (name == null || description == null) throw new IllegalArgumentException("name and description must not be null");
        if (size < 0) throw new IllegalArgumentException("export size must not be negative: " + size);
        if ((transmissionFlags & TransmissionFlag.HAS_FLAGS.mask()) == 0)
            throw new IllegalArgumentException("transmission flags must include HAS_FLAGS");
    }
}
