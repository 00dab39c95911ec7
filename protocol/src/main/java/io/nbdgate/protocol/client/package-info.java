/**
 * The client handshake: {@link io.nbdgate.protocol.client.ClientHandshake} turns server bytes into
 * {@link io.nbdgate.protocol.client.HandshakeAction}s and ends in an {@link io.nbdgate.protocol.ExportInfo}
 * whose {@link io.nbdgate.protocol.TransmissionMode} configures the transmission codec.
 */
package io.nbdgate.protocol.client;
