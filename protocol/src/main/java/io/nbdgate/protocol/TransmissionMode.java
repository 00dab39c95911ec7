package io.nbdgate.protocol;

/** Which headers the transmission phase uses, as negotiated in the handshake. */
public enum TransmissionMode {
    /** Neither NBD_OPT_STRUCTURED_REPLY nor NBD_OPT_EXTENDED_HEADERS: 28-byte requests, 16-byte simple replies. */
    SIMPLE,
    /** NBD_OPT_STRUCTURED_REPLY: 28-byte requests, simple replies or 20-byte structured chunks. */
    STRUCTURED,
    /** NBD_OPT_EXTENDED_HEADERS: 32-byte requests and 32-byte reply chunks only. */
    EXTENDED;

    public int requestHeaderSize() {
        return this == EXTENDED ? NbdSizes.EXTENDED_REQUEST_HEADER : NbdSizes.REQUEST_HEADER;
    }

    public boolean structuredReplies() {
        return this != SIMPLE;
    }
}
