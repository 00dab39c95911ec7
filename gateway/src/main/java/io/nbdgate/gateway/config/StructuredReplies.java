package io.nbdgate.gateway.config;

import java.util.Locale;

/**
 * The {@code structured-replies} setting of a device. Structured replies (and extended headers, which build
 * on them) let a server answer a READ of an unallocated range with a hole instead of zeroes on the wire, and
 * attach a message to an error; they cost the server more work per read reply (nbdkit sends a third piece,
 * the data offset, with a send of its own). {@code auto} asks for them only from a server on another host,
 * where the wire is the scarce part; a server on this host shares our CPUs, and its wire is memory.
 */
public enum StructuredReplies {
    AUTO, ON, OFF;

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
