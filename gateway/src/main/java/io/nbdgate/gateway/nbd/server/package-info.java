/**
 * The embedded NBD server: {@code nbdgate serve}, the demo's default backend, and the tests' server.
 *
 * <p>Embedding it:
 * <pre>{@code
 * try (EmbeddedNbdServer server = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0,
 *         List.of(Export.memory("disk", 1L << 30, false))))) {
 *     int port = server.port();            // the real port when 0 was asked for
 *     String uri = server.uri("disk");     // nbd://127.0.0.1:PORT/disk
 * }                                        // close(): stop listening, drop connections, close backends
 * }</pre>
 * {@link io.nbdgate.gateway.nbd.server.EmbeddedNbdServer#deploy} does the same on a Vert.x the caller owns.
 *
 * <p>One {@link io.nbdgate.gateway.nbd.server.Backend} per kind of storage (memory, file), shared by
 * every connection to its export; each connection is an {@code NbdConnection} running the pure
 * {@link io.nbdgate.protocol.server.ServerHandshake} and then the transmission phase.
 */
package io.nbdgate.gateway.nbd.server;
