package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.ProtocolException;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;

/** Request headers, both directions: the client encodes, the embedded server decodes. Big-endian buffers. */
public final class RequestCodec {
    private RequestCodec() {}

    /**
     * Writes one request header (28 bytes, or 32 with extended headers) at {@code dst}'s position and
     * advances it. With extended headers a WRITE gets NBD_CMD_FLAG_PAYLOAD_LEN, as the spec requires.
     */
    public static void encode(ByteBuffer dst, TransmissionMode mode, Command command, int flags, long cookie,
                              long offset, long length) {
        if (mode == TransmissionMode.EXTENDED) {
            if (command == Command.WRITE) {
                flags |= CommandFlag.PAYLOAD_LEN;
            }
            dst.putInt(NbdMagic.EXTENDED_REQUEST);
            dst.putShort((short) flags);
            dst.putShort((short) command.code());
            dst.putLong(cookie);
            dst.putLong(offset);
            dst.putLong(length);
        } else {
            if (length < 0 || length > 0xffff_ffffL) {
                throw new IllegalArgumentException("length " + length + " does not fit a compact request");
            }
            dst.putInt(NbdMagic.REQUEST);
            dst.putShort((short) (flags & ~CommandFlag.PAYLOAD_LEN));
            dst.putShort((short) command.code());
            dst.putLong(cookie);
            dst.putLong(offset);
            dst.putInt((int) length);
        }
    }

    /**
     * Reads one request header from {@code in} if it holds enough bytes; returns null (consuming
     * nothing) otherwise. A payload longer than {@code maxPayload} is a violation: the server cannot
     * skip it safely.
     */
    public static RequestHeader decode(ByteBuffer in, TransmissionMode mode, long maxPayload) throws ProtocolException {
        boolean extended = mode == TransmissionMode.EXTENDED;
        int size = extended ? NbdSizes.EXTENDED_REQUEST_HEADER : NbdSizes.REQUEST_HEADER;
        if (in.remaining() < size) {
            return null;
        }
        int p = in.position();
        int magic = in.getInt(p);
        int expected = extended ? NbdMagic.EXTENDED_REQUEST : NbdMagic.REQUEST;
        if (magic != expected) {
            throw new ProtocolException(new ProtocolViolation.BadMagic("request header", expected, magic));
        }
        int flags = Short.toUnsignedInt(in.getShort(p + 4));
        int type = Short.toUnsignedInt(in.getShort(p + 6));
        long cookie = in.getLong(p + 8);
        long offset = in.getLong(p + 16);
        long length = extended ? in.getLong(p + 24) : Integer.toUnsignedLong(in.getInt(p + 24));
        RequestHeader header = new RequestHeader(flags, type, cookie, offset, length, extended);
        long payload = header.payloadLength();
        if (Long.compareUnsigned(payload, maxPayload) > 0) {
            throw new ProtocolException(new ProtocolViolation.OversizeLength("request payload", payload, maxPayload));
        }
        in.position(p + size);
        return header;
    }
}
