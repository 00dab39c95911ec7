package io.nbdgate.protocol.client;

import io.nbdgate.protocol.ExportInfo;
import java.nio.ByteBuffer;
import java.util.List;

/** What the caller of {@link ClientHandshake#step} must do next. */
public sealed interface HandshakeAction {

    /** Write these bytes to the server, then call step again. */
    record Send(ByteBuffer bytes) implements HandshakeAction {}

    /** Make at least {@code bytes} bytes readable in the input buffer, then call step again. */
    record NeedMore(int bytes) implements HandshakeAction {}

    /** NBD_OPT_STARTTLS was acknowledged: run the TLS handshake, then call {@link ClientHandshake#tlsEstablished()}. */
    record UpgradeToTls() implements HandshakeAction {}

    /** Transmission phase begins; bytes left in the input belong to it. */
    record Ready(ExportInfo export) implements HandshakeAction {}

    /** The export list, after NBD_OPT_ABORT was sent; close the connection. */
    record Listed(List<ExportEntry> exports) implements HandshakeAction {}

    /** The handshake failed; any NBD_OPT_ABORT owed to the server was already sent. Close the connection. */
    record Failed(HandshakeError error) implements HandshakeAction {}
}
