package io.nbdgate.gateway.nbd.client;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.client.ClientHandshake;
import io.nbdgate.protocol.client.ExportEntry;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.protocol.wire.ReplyReassembler;
import io.nbdgate.protocol.wire.RequestCodec;
import io.nbdgate.protocol.wire.SentRequest;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetSocket;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * One NBD connection on Vert.x: handshake ({@link ClientHandshake}) and transmission
 * ({@link ReplyReassembler}) over a {@link NetSocket}, TCP or unix socket: a second, independent client of the
 * protocol module for the tests (servers' interop, the embedded server); the product drives the same protocol
 * classes from io_uring (the data path) and over a blocking socket ({@link NbdQuery}).
 *
 * <p>All state lives on the connection's event-loop context; public methods may be called from anywhere.
 * Commands check the export's transmission flags and block sizes before anything is sent: a write to a
 * read-only export fails locally with EPERM, an unadvertised command with EOPNOTSUPP, a misaligned or
 * out-of-range request with EINVAL. Reads and writes above the maximum payload are split.
 */
public final class NbdClient {

    /**
     * Connection options.
     *
     * @param extendedHeaders   try NBD_OPT_EXTENDED_HEADERS
     * @param structuredReplies try NBD_OPT_STRUCTURED_REPLY if extended headers are off or refused
     * @param connectTimeoutMillis TCP connect timeout
     * @param maxInFlight       requests on the wire at once; more wait in a queue
     * @param requestTimeoutMillis a request without a reply for this long breaks the connection (0: wait forever)
     */
    public record Options(boolean extendedHeaders, boolean structuredReplies, int connectTimeoutMillis, int maxInFlight,
                          long requestTimeoutMillis) {
        public static Options defaults() {
            return new Options(true, true, 10_000, 64, 60_000);
        }

        /** The handshake that attaches to {@code uri}'s export with these options, as NbdQuery's. */
        public HandshakeConfig handshakeConfig(NbdUri uri) {
            return new QueryOptions(extendedHeaders, structuredReplies, connectTimeoutMillis).handshakeConfig(uri);
        }
    }

    // Largest read or write sent as one request even if the server allows more: bounds client memory.
    static final long CLIENT_MAX_PAYLOAD = 1 << 25;

    private final Context context;
    private final NetClient netClient;
    private final NetSocket socket;
    private final ExportInfo export;
    private final ReplyReassembler<Pending> replies;
    private final ArrayDeque<Pending> waiting = new ArrayDeque<>();
    private final Promise<Void> closed;
    private ByteBuffer input;
    private boolean closing;
    private Throwable broken;
    private final ByteBuffer header = ByteBuffer.allocate(32);
    // Requests on the wire, oldest first, for the reply timeout.
    private final java.util.LinkedHashSet<Pending> onWire = new java.util.LinkedHashSet<>();
    private final long requestTimeoutMillis;
    private long timeoutTimer = -1;
    // OFFSET_HOLE chunks received; lets tests prove a server's sparse reads took the hole path.
    private volatile long holeChunks;

    NbdClient(Context context, NetClient netClient, NetSocket socket, ExportInfo export, ByteBuffer leftover,
                      Options options, Promise<Void> closed) {
        this.context = context;
        this.requestTimeoutMillis = options.requestTimeoutMillis();
        int maxInFlight = options.maxInFlight();
        this.netClient = netClient;
        this.socket = socket;
        this.export = export;
        this.replies = new ReplyReassembler<>(export.mode(), maxInFlight);
        this.input = leftover;
        this.closed = closed;
        if (requestTimeoutMillis > 0) {
            timeoutTimer = context.owner().setPeriodic(Math.min(1000, requestTimeoutMillis),
                    id -> onContext(this::checkTimeouts));
        }
    }

    /** A server that stops answering must not hang its callers forever: give up on the whole connection. */
    private void checkTimeouts() {
        if (broken != null || onWire.isEmpty()) {
            return;
        }
        Pending oldest = onWire.iterator().next();
        long waited = (System.nanoTime() - oldest.sentAt) / 1_000_000;
        if (waited > requestTimeoutMillis) {
            breakConnection(new NbdConnectionException("no reply from the NBD server within " + requestTimeoutMillis
                    + " ms to " + oldest.command + " at offset " + oldest.offset));
        }
    }

    /** Connects, runs the handshake for {@code uri}'s export and enters the transmission phase. */
    public static Future<NbdClient> connect(Vertx vertx, NbdUri uri, Options options) {
        if (uri.tls()) {
            return Future.failedFuture(new NbdConnectionException("TLS (" + uri + ") is not supported yet"));
        }
        return NbdClientHandshake.run(vertx, uri, options.handshakeConfig(uri), options).map(h -> h.client);
    }

    /** Lists the server's exports (NBD_OPT_LIST, then NBD_OPT_ABORT). */
    public static Future<List<ExportEntry>> list(Vertx vertx, NbdUri uri, Options options) {
        if (uri.tls()) {
            return Future.failedFuture(new NbdConnectionException("TLS (" + uri + ") is not supported yet"));
        }
        return NbdClientHandshake.run(vertx, uri, HandshakeConfig.list(), options).map(h -> h.exports);
    }

    long holeChunks() {
        return holeChunks;
    }

    public ExportInfo export() {
        return export;
    }

    /** Completes when the socket is closed, after {@link #disconnect()} or because the connection broke. */
    public Future<Void> closeFuture() {
        return closed.future();
    }

    /** Reads {@code length} bytes at {@code offset}. */
    public Future<Buffer> read(long offset, int length) {
        Future<Void> bad = checkRange(offset, length, false);
        if (bad != null) {
            return bad.map(v -> null);
        }
        if (length == 0) {
            return Future.succeededFuture(Buffer.buffer()); // the spec leaves 0-byte reads unspecified
        }
        byte[] data = new byte[length];
        List<Future<Void>> parts = new ArrayList<>();
        long step = payloadStep();
        for (long done = 0; done < length; done += step) {
            int n = (int) Math.min(step, length - done);
            ByteBuffer slice = ByteBuffer.wrap(data, (int) done, n).slice();
            parts.add(submit(Command.READ, 0, offset + done, n, null, slice));
        }
        return Future.all(parts).map(v -> Buffer.buffer(data));
    }

    /** Writes {@code data} at {@code offset}; {@code fua} asks the server to persist it before replying. */
    public Future<Void> write(long offset, Buffer data, boolean fua) {
        if (export.readOnly()) {
            return local(NbdError.EPERM, "export '" + export.name() + "' is read-only");
        }
        Future<Void> bad = checkFua(fua);
        if (bad == null) {
            bad = checkRange(offset, data.length(), false);
        }
        if (bad != null) {
            return bad;
        }
        List<Future<Void>> parts = new ArrayList<>();
        long step = payloadStep();
        int length = data.length();
        for (long done = 0; done < length; done += step) {
            int n = (int) Math.min(step, length - done);
            parts.add(submit(Command.WRITE, fua ? CommandFlag.FUA : 0, offset + done, n,
                    data.slice((int) done, (int) done + n), null));
        }
        return Future.all(parts).mapEmpty();
    }

    /** NBD_CMD_FLUSH: everything completed before is on stable storage. */
    public Future<Void> flush() {
        if (!export.canFlush()) {
            return local(NbdError.ENOTSUP, "export '" + export.name() + "' does not support FLUSH");
        }
        return submit(Command.FLUSH, 0, 0, 0, null, null);
    }

    /** NBD_CMD_TRIM: the range's contents become unspecified. */
    public Future<Void> trim(long offset, long length, boolean fua) {
        if (export.readOnly()) {
            return local(NbdError.EPERM, "export '" + export.name() + "' is read-only");
        }
        if (!export.canTrim()) {
            return local(NbdError.ENOTSUP, "export '" + export.name() + "' does not support TRIM");
        }
        return effectCommand(Command.TRIM, fua ? CommandFlag.FUA : 0, offset, length, fua);
    }

    /**
     * NBD_CMD_WRITE_ZEROES: the range reads as zeroes. {@code noHole} forbids punching a hole,
     * {@code fastZero} asks the server to fail with ENOTSUP unless zeroing is faster than writing.
     */
    public Future<Void> writeZeroes(long offset, long length, boolean noHole, boolean fastZero, boolean fua) {
        if (export.readOnly()) {
            return local(NbdError.EPERM, "export '" + export.name() + "' is read-only");
        }
        if (!export.canWriteZeroes()) {
            return local(NbdError.ENOTSUP, "export '" + export.name() + "' does not support WRITE_ZEROES");
        }
        if (fastZero && !export.canFastZero()) {
            return local(NbdError.ENOTSUP, "export '" + export.name() + "' does not support fast zero");
        }
        int flags = (fua ? CommandFlag.FUA : 0) | (noHole ? CommandFlag.NO_HOLE : 0) | (fastZero ? CommandFlag.FAST_ZERO : 0);
        return effectCommand(Command.WRITE_ZEROES, flags, offset, length, fua);
    }

    /** NBD_CMD_CACHE: a hint that the range will be read soon. */
    public Future<Void> cache(long offset, long length) {
        if (!export.canCache()) {
            return local(NbdError.ENOTSUP, "export '" + export.name() + "' does not advertise CACHE");
        }
        return effectCommand(Command.CACHE, 0, offset, length, false);
    }

    /**
     * Soft disconnect: refuses new commands, waits for those in flight, sends NBD_CMD_DISC and closes.
     * Completes when the socket is closed.
     */
    public Future<Void> disconnect() {
        onContext(() -> {
            closing = true;
            maybeFinishDisconnect();
        });
        return closed.future();
    }

    // ---- command plumbing ----

    private Future<Void> effectCommand(Command command, int flags, long offset, long length, boolean fua) {
        Future<Void> bad = checkFua(fua);
        if (bad == null) {
            bad = checkRange(offset, length, true);
        }
        if (bad != null) {
            return bad;
        }
        // Compact headers carry 32-bit lengths; extended ones 64-bit.
        long step = export.mode() == TransmissionMode.EXTENDED ? length : alignDown(0x8000_0000L);
        if (length == 0) {
            return submit(command, flags, offset, 0, null, null);
        }
        List<Future<Void>> parts = new ArrayList<>();
        for (long done = 0; done < length; done += step) {
            parts.add(submit(command, flags, offset + done, Math.min(step, length - done), null, null));
        }
        return Future.all(parts).mapEmpty();
    }

    private long payloadStep() {
        return alignDown(Math.min(export.maximumPayload(), CLIENT_MAX_PAYLOAD));
    }

    private long alignDown(long n) {
        long min = export.minimumBlock();
        return Math.max(min, n - n % min);
    }

    private Future<Void> checkFua(boolean fua) {
        if (fua && !export.canFua()) {
            return local(NbdError.ENOTSUP, "export '" + export.name() + "' does not support FUA");
        }
        return null;
    }

    private Future<Void> checkRange(long offset, long length, boolean effect) {
        if (offset < 0 || length < 0 || length > export.size() || offset > export.size() - length) {
            return local(NbdError.EINVAL, "range [" + offset + ", +" + length + ") is outside the export of "
                    + export.size() + " bytes");
        }
        int min = export.minimumBlock();
        if (offset % min != 0 || length % min != 0) {
            return local(NbdError.EINVAL, "offset " + offset + " and length " + length
                    + " must be multiples of the minimum block size " + min);
        }
        return null;
    }

    private static <T> Future<T> local(NbdError error, String message) {
        return Future.failedFuture(new NbdCommandException(error, message, true));
    }

    /** One request on the wire (or waiting for a free slot). */
    private static final class Pending implements SentRequest {
        final Command command;
        final int flags;
        final long offset;
        final long length;
        final Buffer payload;
        final ByteBuffer target;
        final Promise<Void> promise;
        long sentAt;

        Pending(Command command, int flags, long offset, long length, Buffer payload, ByteBuffer target,
                Promise<Void> promise) {
            this.command = command;
            this.flags = flags;
            this.offset = offset;
            this.length = length;
            this.payload = payload;
            this.target = target;
            this.promise = promise;
        }

        @Override
        public Command command() {
            return command;
        }

        @Override
        public int flags() {
            return flags;
        }

        @Override
        public long offset() {
            return offset;
        }

        @Override
        public long length() {
            return length;
        }
    }

    private Future<Void> submit(Command command, int flags, long offset, long length, Buffer payload, ByteBuffer target) {
        Promise<Void> promise = Promise.promise();
        Pending p = new Pending(command, flags, offset, length, payload, target, promise);
        onContext(() -> {
            if (broken != null) {
                promise.fail(new NbdConnectionException("connection to the NBD server is gone: " + broken.getMessage(),
                        broken));
            } else if (closing || replies.shutdownRequested()) {
                promise.fail(new NbdCommandException(NbdError.ESHUTDOWN, "connection is disconnecting", true));
            } else if (!replies.hasCapacity()) {
                waiting.add(p);
            } else {
                send(p);
            }
        });
        return promise.future();
    }

    private void send(Pending p) {
        long cookie = replies.register(p);
        p.sentAt = System.nanoTime();
        onWire.add(p);
        header.clear();
        RequestCodec.encode(header, export.mode(), p.command, p.flags, cookie, p.offset, p.length);
        header.flip();
        Buffer b = Buffer.buffer(header.remaining() + (p.payload == null ? 0 : p.payload.length()));
        for (int i = header.position(); i < header.limit(); i++) {
            b.appendByte(header.get(i));
        }
        if (p.payload != null) {
            b.appendBuffer(p.payload);
        }
        socket.write(b).onFailure(err -> {
            if (replies.cancel(cookie) != null) {
                onWire.remove(p);
                p.promise.tryFail(new NbdConnectionException("sending to the NBD server failed: " + err.getMessage(), err));
            }
        });
    }

    void onData(Buffer data) {
        if (broken != null) {
            return;
        }
        append(data);
        while (true) {
            ReplyReassembler.Step step = replies.next(input);
            switch (step) {
                case NEED_MORE:
                    return;
                case DATA: {
                    if (!input.hasRemaining()) {
                        return;
                    }
                    replies.copyData(input, replies.dataAttachment().target);
                    break;
                }
                case ZEROES: {
                    holeChunks++;
                    ByteBuffer t = replies.dataAttachment().target;
                    int from = (int) replies.dataOffset();
                    int to = from + (int) replies.dataLength();
                    for (int i = from; i < to; i++) {
                        t.put(i, (byte) 0);
                    }
                    break;
                }
                case EXTENT:
                    break; // no block status API yet; extents are parsed and dropped
                case COMPLETED: {
                    Pending p = replies.completed().request();
                    onWire.remove(p);
                    NbdError e = replies.completed().error();
                    if (e == null) {
                        p.promise.tryComplete();
                    } else {
                        String msg = replies.completed().message();
                        p.promise.tryFail(new NbdCommandException(e, p.command + " at " + p.offset + " failed: " + e
                                + (msg == null || msg.isEmpty() ? "" : " (" + msg + ")"), false));
                    }
                    sendWaiting();
                    maybeFinishDisconnect();
                    break;
                }
                case VIOLATION:
                    breakConnection(new NbdConnectionException("NBD server broke the protocol: "
                            + replies.violation().message()));
                    return;
            }
        }
    }

    private void append(Buffer data) {
        int n = data.length();
        if (input.capacity() - input.remaining() < n) {
            ByteBuffer bigger = ByteBuffer.allocate(Math.max(input.capacity() * 2, input.remaining() + n));
            bigger.put(input).flip();
            input = bigger;
        }
        input.compact();
        input.put(data.getBytes());
        input.flip();
    }

    private void sendWaiting() {
        while (!waiting.isEmpty() && replies.hasCapacity() && broken == null) {
            Pending p = waiting.poll();
            if (closing || replies.shutdownRequested()) {
                p.promise.tryFail(new NbdCommandException(NbdError.ESHUTDOWN, "connection is disconnecting", true));
            } else {
                send(p);
            }
        }
    }

    private void maybeFinishDisconnect() {
        // ESHUTDOWN from the server also obliges us to disconnect softly (proto.md).
        if ((closing || replies.shutdownRequested()) && replies.inFlight() == 0 && broken == null) {
            for (Pending p; (p = waiting.poll()) != null; ) {
                p.promise.tryFail(new NbdCommandException(NbdError.ESHUTDOWN, "connection is disconnecting", true));
            }
            header.clear();
            RequestCodec.encode(header, export.mode(), Command.DISC, 0, 0, 0, 0);
            header.flip();
            byte[] disc = new byte[header.remaining()];
            header.get(disc);
            broken = new NbdConnectionException("disconnected");
            socket.write(Buffer.buffer(disc));
            socket.close();
            // Should the socket never report its close, do not leave closeFuture() hanging.
            context.owner().setTimer(5_000, id -> onContext(this::onClosed));
        }
    }

    private void breakConnection(Throwable cause) {
        if (broken == null) {
            broken = cause;
        }
        replies.drainInFlight(p -> p.promise.tryFail(cause));
        onWire.clear();
        if (timeoutTimer >= 0) {
            context.owner().cancelTimer(timeoutTimer);
            timeoutTimer = -1;
        }
        for (Pending p; (p = waiting.poll()) != null; ) {
            p.promise.tryFail(cause);
        }
        socket.close();
    }

    void onClosed() {
        if (closed.future().isComplete()) {
            return;
        }
        breakConnection(broken != null ? broken : new NbdConnectionException("the NBD server closed the connection"));
        netClient.close();
        closed.tryComplete();
    }

    private void onContext(Runnable r) {
        if (Vertx.currentContext() == context) {
            r.run();
        } else {
            context.runOnContext(v -> r.run());
        }
    }
}
