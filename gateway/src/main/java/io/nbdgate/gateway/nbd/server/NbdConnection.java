package io.nbdgate.gateway.nbd.server;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolException;
import io.nbdgate.protocol.ReplyType;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.server.ExportCatalog;
import io.nbdgate.protocol.server.ServerHandshake;
import io.nbdgate.protocol.wire.ReplyCodec;
import io.nbdgate.protocol.wire.RequestCodec;
import io.nbdgate.protocol.wire.RequestHeader;
import io.netty.buffer.Unpooled;
import io.vertx.core.Future;
import io.vertx.core.WorkerExecutor;
import io.nbdgate.gateway.tls.TlsException;
import io.nbdgate.gateway.tls.TlsServerEngine;
import io.vertx.core.Handler;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.core.net.NetSocket;
import io.vertx.core.parsetools.RecordParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection of the embedded server, on one event loop: the handshake state machine
 * first, then requests framed by a RecordParser and answered out of order as their backend calls
 * complete. Everything here runs on the connection's event loop; only file backend calls leave it.
 */
final class NbdConnection {
    private static final Logger log = LoggerFactory.getLogger(NbdConnection.class);

    /** Requests in flight before we stop reading from the socket; bounds memory per client. */
    static final int MAX_IN_FLIGHT = 64;

    private final NetSocket socket;
    private final ExportCatalog catalog;
    private final Function<String, Export> exportByName;
    private final WorkerExecutor fileIo;
    private final ServerHandshake handshake;
    private final String peer;
    private final ServerTls tlsConfig;
    /** The connection's TLS after STARTTLS: every byte in and out goes through it. */
    private TlsServerEngine tls;
    private boolean tlsHandshaking;
    /** Where plaintext from the client goes: the handshake, then the request parser. */
    private Handler<Buffer> inbound;

    private Export export;
    private boolean structured;
    private boolean extended;
    private TransmissionMode mode;
    private RecordParser parser;
    private RequestHeader awaitingPayload;
    private int inFlight;
    private boolean paused;
    private boolean disconnecting;
    private boolean closed;

    NbdConnection(NetSocket socket, ExportCatalog catalog, Function<String, Export> exportByName,
                  WorkerExecutor fileIo, ServerHandshake.Policy policy, ServerTls tlsConfig) {
        this.socket = socket;
        this.catalog = catalog;
        this.exportByName = exportByName;
        this.fileIo = fileIo;
        this.handshake = new ServerHandshake(catalog, policy);
        this.peer = String.valueOf(socket.remoteAddress());
        this.tlsConfig = tlsConfig;
    }

    /** Serves the connection; {@code whenClosed} runs once the socket has closed. */
    void start(Runnable whenClosed) {
        socket.closeHandler(v -> {
            closed = true;
            whenClosed.run();
        });
        socket.exceptionHandler(e -> log.debug("NBD client {}: {}", peer, e.toString()));
        socket.drainHandler(v -> updateFlow());
        inbound = b -> {
            // After a hard disconnect the socket may still deliver what the client had sent.
            if (handshake.state() != ServerHandshake.State.CLOSED) perform(handshake.receive(ByteBuffer.wrap(b.getBytes())));
        };
        socket.handler(this::fromSocket);
        perform(handshake.start());
    }

    // ---- TLS: in plaintext until STARTTLS, then through the engine -----------------------------

    private void fromSocket(Buffer b) {
        if (tls == null) {
            inbound.handle(b);
            return;
        }
        if (tlsHandshaking) {
            // Key exchange and signatures take seconds in a cold JVM: on a worker, not on the event loop that
            // serves the other connections. Paused meanwhile, so the engine sees one caller and bytes in order.
            socket.pause();
            fileIo.executeBlocking(() -> {
                tls.received(ByteBuffer.wrap(b.getBytes()));
                return null;
            }, true).onComplete(r -> {
                socket.resume();
                afterTlsReceive(r.failed() ? r.cause() : null);
            });
            return;
        }
        RuntimeException failure = null;
        try {
            tls.received(ByteBuffer.wrap(b.getBytes()));
        } catch (TlsException e) {
            failure = e;
        }
        afterTlsReceive(failure);
    }

    private void afterTlsReceive(Throwable failure) {
        if (failure != null) {
            log.warn("NBD client {}: {}; closing the connection", peer, failure.getMessage());
            flushTls();
            closed = true;
            socket.close();
            return;
        }
        flushTls();
        if (tlsHandshaking && !tls.handshaking()) {
            tlsHandshaking = false;
            log.debug("NBD client {}: TLS established{}", peer, tls.peer() == null ? "" : " with " + tls.peer());
            handshake.tlsEstablished();
        }
        while (tls.applicationAvailable() > 0) {
            ByteBuffer plain = ByteBuffer.allocate(tls.applicationAvailable());
            tls.readApplication(plain);
            inbound.handle(Buffer.buffer(plain.array()));
        }
    }

    private void write(Buffer b) {
        if (tls == null) {
            socket.write(b);
            return;
        }
        tls.writeApplication(ByteBuffer.wrap(b.getBytes()));
        flushTls();
    }

    private void flushTls() {
        if (tls.outputAvailable() > 0) {
            socket.write(Buffer.buffer(tls.takeOutput()));
        }
    }

    private Future<Void> end() {
        if (tls != null) {
            tls.close();
            flushTls();
        }
        return socket.end();
    }

    /** The server stops: the connection ends the way a client can tell from a broken one (TLS close_notify). */
    Future<Void> shutdown() {
        return closed ? Future.succeededFuture() : end();
    }

    // ---- handshake ----------------------------------------------------------------------------

    private void perform(List<ServerHandshake.Action> actions) {
        for (ServerHandshake.Action action : actions) {
            switch (action) {
                case ServerHandshake.Send s -> write(Buffer.buffer(s.bytes()));
                case ServerHandshake.StartTls t -> {
                    tls = TlsServerEngine.accept(tlsConfig.credentials(), tlsConfig.keyUpdateBytes());
                    tlsHandshaking = true;
                }
                case ServerHandshake.EnterTransmission t -> enterTransmission(t.negotiated());
                case ServerHandshake.Disconnect d -> {
                    if (d.soft()) {
                        log.debug("NBD client {}: {}", peer, d.reason());
                    } else {
                        log.warn("NBD client {}: {}; closing the connection", peer, d.reason());
                    }
                    end();
                }
            }
        }
    }

    private void enterTransmission(ServerHandshake.Negotiated n) {
        export = exportByName.apply(n.export().name());
        structured = n.structuredReplies();
        extended = n.extendedHeaders();
        log.debug("NBD client {}: export '{}', structured replies {}, extended headers {}", peer, export.name(), structured, extended);
        mode = extended ? TransmissionMode.EXTENDED : structured ? TransmissionMode.STRUCTURED : TransmissionMode.SIMPLE;
        parser = RecordParser.newFixed(mode.requestHeaderSize());
        parser.handler(this::onRecord);
        inbound = parser;
        ByteBuffer early = handshake.leftover();
        if (early.hasRemaining()) parser.handle(Buffer.buffer(early.array()));
    }

    // ---- transmission: framing ----------------------------------------------------------------

    private void onRecord(Buffer record) {
        if (closed) return;
        if (awaitingPayload != null) {
            RequestHeader h = awaitingPayload;
            awaitingPayload = null;
            parser.fixedSizeMode(mode.requestHeaderSize());
            execute(h, ByteBuffer.wrap(record.getBytes()));
            return;
        }
        RequestHeader h;
        try {
            // A payload over the maximum is a violation: the spec lets a server treat it as denial of service.
            h = RequestCodec.decode(ByteBuffer.wrap(record.getBytes()), mode, NbdSizes.DEFAULT_MAXIMUM_PAYLOAD);
        } catch (ProtocolException e) {
            violation(e.getMessage());
            return;
        }
        if (disconnecting) {
            violation("request sent after NBD_CMD_DISC");
            return;
        }
        // A WRITE always carries its data: QEMU 10 sends extended WRITEs without PAYLOAD_LEN, against the spec.
        long payload = h.type() == Command.WRITE.code() ? h.length() : h.payloadLength();
        if (Long.compareUnsigned(payload, NbdSizes.DEFAULT_MAXIMUM_PAYLOAD) > 0) {
            violation("request payload of " + Long.toUnsignedString(payload) + " bytes exceeds the maximum of " + NbdSizes.DEFAULT_MAXIMUM_PAYLOAD);
            return;
        }
        if (payload > 0) {
            awaitingPayload = h;
            parser.fixedSizeMode((int) payload);
            return;
        }
        execute(h, null);
    }

    private void violation(String reason) {
        log.warn("NBD client {}: protocol violation: {}; closing the connection", peer, reason);
        closed = true;
        socket.close();
    }

    // ---- transmission: commands ---------------------------------------------------------------

    /** Why a request is refused before touching the backend. */
    private record Rejection(NbdError error, String message) {}

    private void execute(RequestHeader h, ByteBuffer payload) {
        Command cmd = Command.fromCode(h.type());
        if (cmd == Command.DISC) {
            // Soft disconnect: finish what is in flight, then close (no reply to DISC).
            disconnecting = true;
            finishIfDisconnecting();
            return;
        }
        inFlight++;
        updateFlow();
        Rejection rejection = validate(h, cmd, payload);
        if (rejection != null) {
            replyError(h, cmd, rejection.error(), rejection.message());
            return;
        }
        Backend backend = export.backend();
        boolean fua = (h.flags() & CommandFlag.FUA) != 0;
        long offset = h.offset();
        long length = h.length();
        if (length == 0 && cmd != Command.FLUSH) {
            replyOk(h, cmd, List.of());
            return;
        }
        Future<List<Backend.ReadPiece>> result = switch (cmd) {
            case READ -> run(backend, () -> backend.read(offset, (int) length));
            case WRITE -> run(backend, () -> { backend.write(offset, payload, fua); return List.of(); });
            case FLUSH -> run(backend, () -> { backend.flush(); return List.of(); });
            case TRIM -> run(backend, () -> { backend.trim(offset, length, fua); return List.of(); });
            case WRITE_ZEROES -> run(backend, () -> {
                backend.writeZeroes(offset, length, (h.flags() & CommandFlag.NO_HOLE) != 0,
                        (h.flags() & CommandFlag.FAST_ZERO) != 0, fua);
                return List.of();
            });
            case CACHE -> run(backend, () -> { backend.cache(offset, length); return List.of(); });
            default -> throw new IllegalStateException("validate() lets no " + cmd + " through");
        };
        result.onComplete(ar -> {
            if (ar.succeeded()) {
                replyOk(h, cmd, ar.result());
            } else {
                Throwable e = ar.cause();
                NbdError error = errorFor(e);
                if (error == NbdError.EIO) log.warn("NBD export '{}': {} at {}+{} failed: {}", export.name(), cmd, offset, length, e.toString());
                replyError(h, cmd, error, e.getMessage() == null ? e.toString() : e.getMessage());
            }
        });
    }

    /**
     * File backends block on the disk, so they run on the shared worker pool (unordered: NBD lets
     * requests in flight complete in any order); memory calls are short and run right here.
     */
    private Future<List<Backend.ReadPiece>> run(Backend backend, Callable<List<Backend.ReadPiece>> call) {
        if (backend.blocking()) return fileIo.executeBlocking(call, false);
        try {
            return Future.succeededFuture(call.call());
        } catch (Exception e) {
            return Future.failedFuture(e);
        }
    }

    private Rejection validate(RequestHeader h, Command cmd, ByteBuffer payload) {
        if (cmd == null || cmd == Command.BLOCK_STATUS || cmd == Command.RESIZE) {
            return new Rejection(NbdError.EINVAL, "command " + h.type() + " is not supported");
        }
        int allowed = CommandFlag.FUA | (extended ? CommandFlag.PAYLOAD_LEN : 0);
        if (cmd == Command.WRITE_ZEROES) allowed |= CommandFlag.NO_HOLE | CommandFlag.FAST_ZERO;
        if ((h.flags() & ~allowed) != 0) {
            return new Rejection(NbdError.EINVAL, "flags 0x" + Integer.toHexString(h.flags() & ~allowed) + " are not valid for " + cmd);
        }
        if (payload != null && cmd != Command.WRITE) {
            return new Rejection(NbdError.EINVAL, cmd + " takes no payload");
        }
        boolean writes = cmd == Command.WRITE || cmd == Command.TRIM || cmd == Command.WRITE_ZEROES;
        if (writes && export.readOnly()) {
            return new Rejection(NbdError.EPERM, "export '" + export.name() + "' is read-only");
        }
        if (cmd == Command.FLUSH) return null;
        long size = export.size();
        // Unsigned offset and length: negative as a long means beyond any export.
        if (h.offset() < 0 || h.length() < 0 || h.offset() > size || h.length() > size - h.offset()) {
            NbdError e = cmd == Command.WRITE || cmd == Command.WRITE_ZEROES ? NbdError.ENOSPC : NbdError.EINVAL;
            return new Rejection(e, cmd + " of " + Long.toUnsignedString(h.length()) + " bytes at "
                    + Long.toUnsignedString(h.offset()) + " goes beyond the export size " + size);
        }
        if (cmd == Command.READ && h.length() > NbdSizes.DEFAULT_MAXIMUM_PAYLOAD) {
            // Structured replies may refuse big reads with EOVERFLOW; simple replies only know EINVAL.
            return new Rejection(structured ? NbdError.EOVERFLOW : NbdError.EINVAL,
                    "READ of " + h.length() + " bytes exceeds the maximum payload " + NbdSizes.DEFAULT_MAXIMUM_PAYLOAD);
        }
        return null;
    }

    private static NbdError errorFor(Throwable e) {
        if (e instanceof CommandFailure f) return f.error;
        String m = String.valueOf(e.getMessage());
        if (e instanceof IOException && (m.contains("No space left") || m.contains("quota") || m.contains("File too large"))) {
            return NbdError.ENOSPC;
        }
        return NbdError.EIO;
    }

    // ---- transmission: replies ----------------------------------------------------------------

    private void replyOk(RequestHeader h, Command cmd, List<Backend.ReadPiece> pieces) {
        if (cmd != Command.READ) {
            send(extended ? done(h) : simple(h.cookie(), 0));
        } else if (!structured) {
            send(simple(h.cookie(), 0));
            for (Backend.ReadPiece p : pieces) {
                switch (p) {
                    case Backend.Data d -> send(d.bytes());
                    case Backend.Zeroes z -> send(ByteBuffer.allocate((int) z.length()));
                }
            }
        } else if (pieces.isEmpty()) {
            send(done(h));
        } else {
            for (int i = 0; i < pieces.size(); i++) {
                int flags = i == pieces.size() - 1 ? ReplyType.FLAG_DONE : 0;
                switch (pieces.get(i)) {
                    case Backend.Data d -> {
                        ByteBuffer header = ByteBuffer.allocate(chunkHeaderSize() + 8);
                        ReplyCodec.offsetDataHeader(header, mode, flags, h.cookie(), h.offset(), d.offset(), d.bytes().remaining());
                        send(header.flip());
                        send(d.bytes());
                    }
                    case Backend.Zeroes z -> {
                        ByteBuffer hole = ByteBuffer.allocate(chunkHeaderSize() + 12);
                        ReplyCodec.offsetHole(hole, mode, flags, h.cookie(), h.offset(), z.offset(), (int) z.length());
                        send(hole.flip());
                    }
                }
            }
        }
        completed();
    }

    private void replyError(RequestHeader h, Command cmd, NbdError error, String message) {
        // With structured replies a READ must not get a simple reply; other errors carry a message too.
        if (structured) {
            ByteBuffer chunk = ByteBuffer.allocate(chunkHeaderSize() + 6 + ReplyCodec.errorMessageLength(message));
            ReplyCodec.error(chunk, mode, h.cookie(), h.offset(), error, message);
            send(chunk.flip());
        } else {
            send(simple(h.cookie(), error.code()));
        }
        completed();
    }

    private int chunkHeaderSize() {
        return mode == TransmissionMode.EXTENDED ? NbdSizes.EXTENDED_REPLY_HEADER : NbdSizes.STRUCTURED_REPLY_HEADER;
    }

    private static ByteBuffer simple(long cookie, int error) {
        ByteBuffer b = ByteBuffer.allocate(NbdSizes.SIMPLE_REPLY_HEADER);
        ReplyCodec.simpleReply(b, error, cookie);
        return b.flip();
    }

    private ByteBuffer done(RequestHeader h) {
        ByteBuffer b = ByteBuffer.allocate(chunkHeaderSize());
        ReplyCodec.none(b, mode, h.cookie(), h.offset());
        return b.flip();
    }

    private void send(ByteBuffer bytes) {
        if (!closed) write(BufferInternal.buffer(Unpooled.wrappedBuffer(bytes)));
    }

    private void completed() {
        inFlight--;
        updateFlow();
        finishIfDisconnecting();
    }

    private void finishIfDisconnecting() {
        if (disconnecting && inFlight == 0 && !closed) {
            log.debug("NBD client {}: disconnected cleanly", peer);
            closed = true;
            end();
        }
    }

    /** Stops reading while too much is in flight or the socket's send queue is full. */
    private void updateFlow() {
        if (closed || parser == null) return;
        boolean shouldPause = inFlight >= MAX_IN_FLIGHT || socket.writeQueueFull();
        if (shouldPause && !paused) {
            paused = true;
            socket.pause();
        } else if (!shouldPause && paused) {
            paused = false;
            socket.resume();
        }
    }
}
