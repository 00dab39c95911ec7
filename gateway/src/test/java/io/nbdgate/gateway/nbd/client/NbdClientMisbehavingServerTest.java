package io.nbdgate.gateway.nbd.client;

import static io.nbdgate.gateway.testsupport.Await.failure;
import static io.nbdgate.gateway.testsupport.Await.result;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.OptionReplyType;
import io.nbdgate.protocol.ReplyType;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.wire.ReplyCodec;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.junit5.VertxExtension;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A scripted server (plain sockets, written here) that completes a correct handshake and then misbehaves
 * in the transmission phase: the client must drop the connection with a typed error and fail every
 * request in flight, or, for legal but unusual behaviour, cope with it.
 */
@ExtendWith(VertxExtension.class)
class NbdClientMisbehavingServerTest {

    static final long SIZE = 1 << 20;
    static final TransmissionMode MODE = TransmissionMode.STRUCTURED;

    interface Script {
        void transmission(DataInputStream in, DataOutputStream out) throws IOException;
    }

    record Request(int flags, int type, long cookie, long offset, int length) {}

    ServerSocket listener;
    final CompletableFuture<Void> serverDone = new CompletableFuture<>();

    @AfterEach
    void close() throws Exception {
        if (listener != null) {
            listener.close();
        }
    }

    private NbdUri serve(Script script) throws IOException {
        listener = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
        Thread t = new Thread(() -> {
            try (Socket s = listener.accept()) {
                DataInputStream in = new DataInputStream(s.getInputStream());
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                handshake(in, out);
                script.transmission(in, out);
                out.flush();
                serverDone.complete(null);
            } catch (Throwable e) {
                serverDone.completeExceptionally(e);
            }
        }, "scripted-nbd-server");
        t.setDaemon(true);
        t.start();
        return new NbdUri(false, "127.0.0.1", listener.getLocalPort(), null, "x");
    }

    /** Greeting; refuse EXTENDED_HEADERS, accept STRUCTURED_REPLY, answer GO with an export of SIZE bytes. */
    static void handshake(DataInputStream in, DataOutputStream out) throws IOException {
        out.writeLong(NbdMagic.NBDMAGIC);
        out.writeLong(NbdMagic.IHAVEOPT);
        out.writeShort(3);
        out.flush();
        in.readInt();
        while (true) {
            in.readLong();
            int option = in.readInt();
            byte[] data = new byte[in.readInt()];
            in.readFully(data);
            if (option == NbdOption.EXTENDED_HEADERS.code()) {
                optionReply(out, option, OptionReplyType.ERR_UNSUP.code(), new byte[0]);
            } else if (option == NbdOption.STRUCTURED_REPLY.code()) {
                optionReply(out, option, OptionReplyType.ACK.code(), new byte[0]);
            } else if (option == NbdOption.GO.code()) {
                optionReply(out, option, OptionReplyType.INFO.code(),
                        ByteBuffer.allocate(12).putShort((short) 0).putLong(SIZE).putShort((short) 0x0d).array());
                optionReply(out, option, OptionReplyType.ACK.code(), new byte[0]);
                out.flush();
                return;
            } else {
                throw new IOException("unexpected option " + option);
            }
        }
    }

    static void optionReply(DataOutputStream out, int option, int type, byte[] payload) throws IOException {
        out.writeLong(NbdMagic.OPTION_REPLY);
        out.writeInt(option);
        out.writeInt(type);
        out.writeInt(payload.length);
        out.write(payload);
    }

    static Request readRequest(DataInputStream in) throws IOException {
        if (in.readInt() != NbdMagic.REQUEST) {
            throw new IOException("bad request magic");
        }
        int flags = in.readUnsignedShort();
        int type = in.readUnsignedShort();
        Request r = new Request(flags, type, in.readLong(), in.readLong(), in.readInt());
        if (type == 1) {
            in.readFully(new byte[r.length()]);
        }
        return r;
    }

    static void send(DataOutputStream out, ByteBuffer b) throws IOException {
        out.write(b.array(), 0, b.position());
        out.flush();
    }

    @Test
    void repliesInReverseOrderReachTheirOwnRequests(Vertx vertx) throws Exception {
        NbdUri uri = serve((in, out) -> {
            Request a = readRequest(in);
            Request b = readRequest(in);
            for (Request r : new Request[] {b, a}) {
                ByteBuffer buf = ByteBuffer.allocate(64 + r.length());
                ReplyCodec.offsetDataHeader(buf, MODE, ReplyType.FLAG_DONE, r.cookie(), r.offset(), r.offset(), r.length());
                for (int i = 0; i < r.length(); i++) {
                    buf.put((byte) (r.offset() / 4096));
                }
                send(out, buf);
            }
            readRequest(in); // NBD_CMD_DISC
        });
        NbdClient c = result(NbdClient.connect(vertx, uri, NbdClient.Options.defaults()));
        Future<Buffer> first = c.read(4096, 4096);
        Future<Buffer> second = c.read(8192, 4096);
        assertArrayEquals(filled(4096, 1), result(first).getBytes());
        assertArrayEquals(filled(4096, 2), result(second).getBytes());
        result(c.disconnect());
        serverDone.get(10, TimeUnit.SECONDS);
    }

    @Test
    void chunkOutsideTheRequestDropsTheConnectionAndFailsEverythingInFlight(Vertx vertx) throws Exception {
        NbdUri uri = serve((in, out) -> {
            Request read = readRequest(in);
            readRequest(in); // a flush, never answered
            ByteBuffer buf = ByteBuffer.allocate(64 + 4096);
            ReplyCodec.offsetDataHeader(buf, MODE, ReplyType.FLAG_DONE, read.cookie(), read.offset(),
                    read.offset() + 4096, 4096);
            buf.put(new byte[4096]);
            send(out, buf);
            in.read(); // wait for the client to hang up
        });
        NbdClient c = result(NbdClient.connect(vertx, uri, NbdClient.Options.defaults()));
        Future<Buffer> read = c.read(0, 4096);
        Future<Void> flush = c.flush();
        var e = assertInstanceOf(NbdConnectionException.class, failure(read));
        assertTrue(e.getMessage().contains("outside request"), e.getMessage());
        assertInstanceOf(NbdConnectionException.class, failure(flush));
        result(c.closeFuture());
        serverDone.get(10, TimeUnit.SECONDS);
    }

    @Test
    void replyWithAnUnknownCookieDropsTheConnection(Vertx vertx) throws Exception {
        NbdUri uri = serve((in, out) -> {
            Request r = readRequest(in);
            ByteBuffer buf = ByteBuffer.allocate(64);
            ReplyCodec.none(buf, MODE, r.cookie() ^ 0x5555_0000_0000L, 0);
            send(out, buf);
            in.read();
        });
        NbdClient c = result(NbdClient.connect(vertx, uri, NbdClient.Options.defaults()));
        var e = assertInstanceOf(NbdConnectionException.class, failure(c.flush()));
        assertTrue(e.getMessage().contains("unknown cookie"), e.getMessage());
        result(c.closeFuture());
    }

    @Test
    void serverHangingUpFailsRequestsInFlight(Vertx vertx) throws Exception {
        NbdUri uri = serve((in, out) -> readRequest(in));
        NbdClient c = result(NbdClient.connect(vertx, uri, NbdClient.Options.defaults()));
        var e = assertInstanceOf(NbdConnectionException.class, failure(c.read(0, 512)));
        assertEquals("the NBD server closed the connection", e.getMessage());
    }

    @Test
    void serverThatStopsAnsweringTimesOut(Vertx vertx) throws Exception {
        NbdUri uri = serve((in, out) -> {
            readRequest(in);
            in.read(); // never answer; wait for the client to give up
        });
        NbdClient c = result(NbdClient.connect(vertx, uri, new NbdClient.Options(false, true, 10_000, 4, 300)));
        long start = System.nanoTime();
        var e = assertInstanceOf(NbdConnectionException.class, failure(c.read(0, 512)));
        assertTrue(e.getMessage().startsWith("no reply from the NBD server within 300 ms to READ"), e.getMessage());
        assertTrue(System.nanoTime() - start < 5_000_000_000L);
        result(c.closeFuture());
    }

    static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        java.util.Arrays.fill(b, (byte) value);
        return b;
    }
}
