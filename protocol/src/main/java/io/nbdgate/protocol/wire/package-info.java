/**
 * The transmission phase on the wire.
 *
 * <p>Client side: {@link io.nbdgate.protocol.wire.ReplyReassembler#register} gives a request its cookie,
 * {@link io.nbdgate.protocol.wire.RequestCodec#encode} writes its header (a WRITE's payload follows from the
 * caller's own buffer). Replies go through {@link io.nbdgate.protocol.wire.ReplyReassembler#next}: receive
 * exactly {@code bytesNeeded()} header bytes while it answers NEED_MORE; on DATA receive {@code dataLength()}
 * bytes straight into the request's buffer at {@code dataOffset()} (for io_uring: a RECV into the registered
 * buffer at that offset) and report them with {@code dataReceived(n)}; on ZEROES clear that range; on
 * COMPLETED finish the request; on VIOLATION drop the connection and {@code drainInFlight} to retry or fail.
 *
 * <p>Server side: {@link io.nbdgate.protocol.wire.RequestCodec#decode} and the encoders of
 * {@link io.nbdgate.protocol.wire.ReplyCodec}.
 */
package io.nbdgate.protocol.wire;
