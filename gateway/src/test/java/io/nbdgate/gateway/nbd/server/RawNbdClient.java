package io.nbdgate.gateway.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.nbdgate.protocol.HandshakeFlags;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.OptionReplyType;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Bytes on a socket, written by hand from proto.md, to provoke what real clients never send:
 * out-of-range requests, unknown commands, bad magic. Not a client library; a test probe.
 */
final class RawNbdClient implements AutoCloseable {
    final Socket socket;
    final DataInputStream in;
    final DataOutputStream out;

    record SimpleReply(int error, long cookie) {}

    record Chunk(int flags, int type, long cookie, byte[] payload) {
        int error() {
            return ByteBuffer.wrap(payload).getInt();
        }
    }

    RawNbdClient(int port) throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(10_000);
        in = new DataInputStream(socket.getInputStream());
        out = new DataOutputStream(socket.getOutputStream());
        assertEquals(NbdMagic.NBDMAGIC, in.readLong());
        assertEquals(NbdMagic.IHAVEOPT, in.readLong());
        in.readShort();
        out.writeInt(HandshakeFlags.C_FIXED_NEWSTYLE | HandshakeFlags.C_NO_ZEROES);
    }

    void option(NbdOption opt, byte[] data) throws IOException {
        out.writeLong(NbdMagic.IHAVEOPT);
        out.writeInt(opt.code());
        out.writeInt(data.length);
        out.write(data);
        out.flush();
    }

    /** Reads option replies up to the final one; returns its type. */
    int finalOptionReply() throws IOException {
        while (true) {
            assertEquals(NbdMagic.OPTION_REPLY, in.readLong());
            in.readInt();
            int type = in.readInt();
            in.readNBytes(in.readInt());
            if (type != OptionReplyType.INFO.code() && type != OptionReplyType.SERVER.code()) return type;
        }
    }

    RawNbdClient structuredReplies() throws IOException {
        option(NbdOption.STRUCTURED_REPLY, new byte[0]);
        assertEquals(OptionReplyType.ACK.code(), finalOptionReply());
        return this;
    }

    RawNbdClient go(String export) throws IOException {
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        option(NbdOption.GO, ByteBuffer.allocate(6 + name.length).putInt(name.length).put(name).putShort((short) 0).array());
        assertEquals(OptionReplyType.ACK.code(), finalOptionReply());
        return this;
    }

    void request(int type, int flags, long cookie, long offset, int length, byte[] payload) throws IOException {
        out.writeInt(NbdMagic.REQUEST);
        out.writeShort(flags);
        out.writeShort(type);
        out.writeLong(cookie);
        out.writeLong(offset);
        out.writeInt(length);
        if (payload != null) out.write(payload);
        out.flush();
    }

    SimpleReply simpleReply() throws IOException {
        assertEquals(NbdMagic.SIMPLE_REPLY, in.readInt(), "simple reply magic");
        return new SimpleReply(in.readInt(), in.readLong());
    }

    Chunk chunk() throws IOException {
        assertEquals(NbdMagic.STRUCTURED_REPLY, in.readInt(), "structured reply magic");
        int flags = in.readUnsignedShort();
        int type = in.readUnsignedShort();
        long cookie = in.readLong();
        byte[] payload = in.readNBytes(in.readInt());
        return new Chunk(flags, type, cookie, payload);
    }

    /** True when the server closed the connection (EOF) rather than sending more or going quiet. */
    boolean closedByServer() throws IOException {
        try {
            return in.read() < 0;
        } catch (EOFException e) {
            return true;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return e.getMessage() != null && e.getMessage().contains("reset");
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
