package io.nbdgate.protocol.server;

import java.util.List;
import java.util.Optional;

/** The exports a server offers; the handshake looks names up here and lists them for NBD_OPT_LIST. */
public interface ExportCatalog {
    /** The export called {@code name}; the empty name asks for the default export. */
    Optional<OfferedExport> find(String name);

    List<OfferedExport> all();
}
