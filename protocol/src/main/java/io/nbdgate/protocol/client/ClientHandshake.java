package io.nbdgate.protocol.client;

import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.HandshakeFlags;
import io.nbdgate.protocol.InfoType;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.NbdSizes;
import io.nbdgate.protocol.OptionReplyType;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.TransmissionMode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The client side of the fixed-newstyle handshake as an explicit state machine (after libnbd's
 * generator/states-newstyle*.c). No I/O: the caller feeds received bytes into {@link #step} and performs
 * the returned {@link HandshakeAction}. Each state is one case of {@code step}; each transition a line.
 *
 * <p>Order of options: [STARTTLS] → EXTENDED_HEADERS (else STRUCTURED_REPLY) → GO, falling back to
 * EXPORT_NAME on NBD_REP_ERR_UNSUP; or LIST → ABORT.
 */
public final class ClientHandshake {

    /** Named states; the ones starting with RECV wait for server bytes, SEND ones produce bytes. */
    public enum State {
        RECV_GREETING,
        SEND_CLIENT_FLAGS,
        SEND_STARTTLS,
        RECV_STARTTLS_REPLY,
        TLS_UPGRADE,
        SEND_EXTENDED_HEADERS,
        RECV_EXTENDED_HEADERS_REPLY,
        SEND_STRUCTURED_REPLY,
        RECV_STRUCTURED_REPLY_REPLY,
        SEND_GO,
        RECV_GO_REPLY,
        SEND_EXPORT_NAME,
        RECV_EXPORT_NAME_REPLY,
        SEND_LIST,
        RECV_LIST_REPLY,
        SEND_ABORT,
        RECV_ABORT_REPLY,
        READY,
        LISTED,
        FAILED
    }

    /** Option replies longer than this are refused: NBD strings are at most 4 KiB, info items tiny. */
    static final int MAX_OPTION_REPLY = 1 << 20;

    private static final int[] INFO_REQUESTS = {
        InfoType.EXPORT.code(), InfoType.NAME.code(), InfoType.DESCRIPTION.code(), InfoType.BLOCK_SIZE.code()};

    private final HandshakeConfig config;
    private State state = State.RECV_GREETING;
    private boolean fixedNewstyle;
    private boolean noZeroes;
    private TransmissionMode mode = TransmissionMode.SIMPLE;
    private HandshakeError error;
    private final List<ExportEntry> exports = new ArrayList<>();

    private final ExportInfoReplies info = new ExportInfoReplies();
    private ExportInfo result;

    public ClientHandshake(HandshakeConfig config) {
        this.config = config;
    }

    public State state() {
        return state;
    }

    public HandshakeConfig config() {
        return config;
    }

    /** Runs the machine on {@code in} (big-endian, consumed as messages complete) until the caller must act. */
    public HandshakeAction step(ByteBuffer in) {
        while (true) {
            HandshakeAction a = switch (state) {
                case RECV_GREETING -> recvGreeting(in);
                case SEND_CLIENT_FLAGS -> sendClientFlags();
                case SEND_STARTTLS -> sendOption(NbdOption.STARTTLS, new byte[0], State.RECV_STARTTLS_REPLY);
                case RECV_STARTTLS_REPLY -> recvStartTlsReply(in);
                case TLS_UPGRADE -> new HandshakeAction.UpgradeToTls();
                case SEND_EXTENDED_HEADERS -> sendOption(NbdOption.EXTENDED_HEADERS, new byte[0],
                        State.RECV_EXTENDED_HEADERS_REPLY);
                case RECV_EXTENDED_HEADERS_REPLY -> recvExtendedHeadersReply(in);
                case SEND_STRUCTURED_REPLY -> sendOption(NbdOption.STRUCTURED_REPLY, new byte[0],
                        State.RECV_STRUCTURED_REPLY_REPLY);
                case RECV_STRUCTURED_REPLY_REPLY -> recvStructuredReplyReply(in);
                case SEND_GO -> sendOption(NbdOption.GO, goPayload(), State.RECV_GO_REPLY);
                case RECV_GO_REPLY -> recvGoReply(in);
                case SEND_EXPORT_NAME -> sendExportName();
                case RECV_EXPORT_NAME_REPLY -> recvExportNameReply(in);
                case SEND_LIST -> sendOption(NbdOption.LIST, new byte[0], State.RECV_LIST_REPLY);
                case RECV_LIST_REPLY -> recvListReply(in);
                // After a failure nothing more is read; after LIST the server's ACK (or close) ends the session.
                case SEND_ABORT -> sendOption(NbdOption.ABORT, new byte[0],
                        error == null ? State.RECV_ABORT_REPLY : State.FAILED);
                case RECV_ABORT_REPLY -> recvAbortReply(in);
                case READY -> new HandshakeAction.Ready(result);
                case LISTED -> new HandshakeAction.Listed(List.copyOf(exports));
                case FAILED -> new HandshakeAction.Failed(error);
            };
            if (a != null) {
                return a;
            }
        }
    }

    /** The caller finished the TLS handshake after {@link HandshakeAction.UpgradeToTls}. */
    public void tlsEstablished() {
        if (state != State.TLS_UPGRADE) {
            throw new IllegalStateException("no TLS upgrade pending in " + state);
        }
        state = afterFlagsAndTls();
    }

    /** The server closed the connection: the terminal action for the current state. */
    public HandshakeAction endOfStream() {
        if (state == State.RECV_ABORT_REPLY) {
            // The spec allows a server to close instead of acknowledging NBD_OPT_ABORT.
            state = State.LISTED;
        } else if (state != State.READY && state != State.LISTED && state != State.FAILED) {
            error = new HandshakeError.ServerClosed(state);
            state = State.FAILED;
        }
        return step(ByteBuffer.allocate(0));
    }

    // ---- states ----

    private HandshakeAction recvGreeting(ByteBuffer in) {
        if (in.remaining() < 18) {
            return new HandshakeAction.NeedMore(18);
        }
        long magic = in.getLong();
        if (magic != NbdMagic.NBDMAGIC) {
            return violation(new ProtocolViolation.BadMagic("server greeting", NbdMagic.NBDMAGIC, magic));
        }
        long second = in.getLong();
        if (second == NbdMagic.CLISERV_MAGIC) {
            return fail(new HandshakeError.Unsupported(
                    "the server uses oldstyle negotiation, which this client does not support; run it in newstyle mode"));
        }
        if (second != NbdMagic.IHAVEOPT) {
            return violation(new ProtocolViolation.BadMagic("server greeting", NbdMagic.IHAVEOPT, second));
        }
        int flags = Short.toUnsignedInt(in.getShort());
        fixedNewstyle = (flags & HandshakeFlags.FIXED_NEWSTYLE) != 0;
        noZeroes = (flags & HandshakeFlags.NO_ZEROES) != 0;
        state = State.SEND_CLIENT_FLAGS;
        return null;
    }

    private HandshakeAction sendClientFlags() {
        int flags = (fixedNewstyle ? HandshakeFlags.C_FIXED_NEWSTYLE : 0) | (noZeroes ? HandshakeFlags.C_NO_ZEROES : 0);
        ByteBuffer b = ByteBuffer.allocate(4).putInt(flags).flip();
        if (!fixedNewstyle) {
            // Plain newstyle servers only know NBD_OPT_EXPORT_NAME and close on anything else.
            if (config.goal() == HandshakeConfig.Goal.LIST) {
                error = new HandshakeError.Unsupported("the server does not support fixed newstyle, so it cannot list exports");
                state = State.FAILED;
            } else if (config.tls()) {
                error = new HandshakeError.Unsupported("the server does not support fixed newstyle, so it cannot do TLS");
                state = State.FAILED;
            } else {
                state = State.SEND_EXPORT_NAME;
            }
            return new HandshakeAction.Send(b);
        }
        state = config.tls() ? State.SEND_STARTTLS : afterFlagsAndTls();
        return new HandshakeAction.Send(b);
    }

    private State afterFlagsAndTls() {
        if (config.goal() == HandshakeConfig.Goal.LIST) {
            return State.SEND_LIST;
        }
        if (config.extendedHeaders()) {
            return State.SEND_EXTENDED_HEADERS;
        }
        return config.structuredReplies() ? State.SEND_STRUCTURED_REPLY : State.SEND_GO;
    }

    private HandshakeAction recvStartTlsReply(ByteBuffer in) {
        OptionReply r = readOptionReply(in, NbdOption.STARTTLS);
        if (r == null) {
            return needOrFailed();
        }
        if (r.type == OptionReplyType.ACK.code()) {
            state = State.TLS_UPGRADE;
            return null;
        }
        // TLS was asked for: never fall back to plaintext (downgrade attack, proto.md "Security considerations").
        return rejected(NbdOption.STARTTLS, r);
    }

    private HandshakeAction recvExtendedHeadersReply(ByteBuffer in) {
        OptionReply r = readOptionReply(in, NbdOption.EXTENDED_HEADERS);
        if (r == null) {
            return needOrFailed();
        }
        if (r.type == OptionReplyType.ACK.code()) {
            mode = TransmissionMode.EXTENDED;
            state = State.SEND_GO;
        } else if (OptionReplyType.isError(r.type)) {
            if (r.type == OptionReplyType.ERR_SHUTDOWN.code()) {
                return rejected(NbdOption.EXTENDED_HEADERS, r);
            }
            state = config.structuredReplies() ? State.SEND_STRUCTURED_REPLY : State.SEND_GO;
        } else {
            return unexpectedReplyType(NbdOption.EXTENDED_HEADERS, r);
        }
        return null;
    }

    private HandshakeAction recvStructuredReplyReply(ByteBuffer in) {
        OptionReply r = readOptionReply(in, NbdOption.STRUCTURED_REPLY);
        if (r == null) {
            return needOrFailed();
        }
        if (r.type == OptionReplyType.ACK.code()) {
            mode = TransmissionMode.STRUCTURED;
        } else if (!OptionReplyType.isError(r.type)) {
            return unexpectedReplyType(NbdOption.STRUCTURED_REPLY, r);
        } else if (r.type == OptionReplyType.ERR_SHUTDOWN.code()) {
            return rejected(NbdOption.STRUCTURED_REPLY, r);
        }
        state = State.SEND_GO;
        return null;
    }

    private byte[] goPayload() {
        byte[] name = config.exportName().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + name.length + 2 + 2 * INFO_REQUESTS.length);
        b.putInt(name.length).put(name).putShort((short) INFO_REQUESTS.length);
        for (int info : INFO_REQUESTS) {
            b.putShort((short) info);
        }
        return b.array();
    }

    private HandshakeAction recvGoReply(ByteBuffer in) {
        OptionReply r = readOptionReply(in, NbdOption.GO);
        if (r == null) {
            return needOrFailed();
        }
        if (r.type == OptionReplyType.INFO.code()) {
            ProtocolViolation bad = info.info(r.payload);
            return bad == null ? null : violation(bad);
        }
        if (r.type == OptionReplyType.ACK.code()) {
            if (!info.hasExport()) {
                return violation(new ProtocolViolation.UnexpectedReply("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT"));
            }
            result = info.result(config.exportName(), mode);
            state = State.READY;
            return null;
        }
        if (r.type == OptionReplyType.ERR_UNSUP.code()) {
            if (mode == TransmissionMode.EXTENDED) {
                // A client that negotiated extended headers MUST NOT use NBD_OPT_EXPORT_NAME.
                return violation(new ProtocolViolation.UnexpectedReply(
                        "server acknowledged NBD_OPT_EXTENDED_HEADERS but does not support NBD_OPT_GO"));
            }
            state = State.SEND_EXPORT_NAME;
            return null;
        }
        if (OptionReplyType.isError(r.type)) {
            return rejected(NbdOption.GO, r);
        }
        return unexpectedReplyType(NbdOption.GO, r);
    }

    private HandshakeAction sendExportName() {
        byte[] name = config.exportName().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = optionHeader(NbdOption.EXPORT_NAME, name.length);
        b.put(name).flip();
        state = State.RECV_EXPORT_NAME_REPLY;
        // Without structured replies negotiated the old option still works; with them it is fine too.
        return new HandshakeAction.Send(b);
    }

    private HandshakeAction recvExportNameReply(ByteBuffer in) {
        int need = NbdSizes.EXPORT_NAME_REPLY + (noZeroes ? 0 : NbdSizes.EXPORT_NAME_REPLY_ZEROES);
        if (in.remaining() < need) {
            return new HandshakeAction.NeedMore(need);
        }
        long size = in.getLong();
        int flags = Short.toUnsignedInt(in.getShort());
        in.position(in.position() + need - NbdSizes.EXPORT_NAME_REPLY);
        // Only size and flags: what GO's info items said before its ERR_UNSUP does not describe this export.
        ExportInfoReplies reply = new ExportInfoReplies();
        ProtocolViolation bad = reply.export(size, flags, false);
        if (bad != null) {
            return violation(bad);
        }
        result = reply.result(config.exportName(), mode);
        state = State.READY;
        return null;
    }

    private HandshakeAction recvListReply(ByteBuffer in) {
        OptionReply r = readOptionReply(in, NbdOption.LIST);
        if (r == null) {
            return needOrFailed();
        }
        if (r.type == OptionReplyType.SERVER.code()) {
            if (r.payload.length < 4) {
                return violation(new ProtocolViolation.MalformedMessage("NBD_REP_SERVER", "length " + r.payload.length + " < 4"));
            }
            ByteBuffer b = ByteBuffer.wrap(r.payload);
            long nameLength = Integer.toUnsignedLong(b.getInt());
            if (nameLength > r.payload.length - 4) {
                return violation(new ProtocolViolation.MalformedMessage("NBD_REP_SERVER", "name length " + nameLength
                        + " exceeds reply length " + r.payload.length));
            }
            String name = new String(r.payload, 4, (int) nameLength, StandardCharsets.UTF_8);
            int rest = r.payload.length - 4 - (int) nameLength;
            String details = rest == 0 ? null : new String(r.payload, 4 + (int) nameLength, rest, StandardCharsets.UTF_8);
            exports.add(new ExportEntry(name, details));
            return null;
        }
        if (r.type == OptionReplyType.ACK.code()) {
            state = State.SEND_ABORT;
            return null;
        }
        if (OptionReplyType.isError(r.type)) {
            return rejected(NbdOption.LIST, r);
        }
        return unexpectedReplyType(NbdOption.LIST, r);
    }

    private HandshakeAction recvAbortReply(ByteBuffer in) {
        OptionReply r = readOptionReply(in, NbdOption.ABORT);
        if (r == null) {
            return needOrFailed();
        }
        // Whatever the server answers, the session is over; ACK is what the spec asks for.
        state = State.LISTED;
        return null;
    }

    // ---- helpers ----

    private record OptionReply(int type, byte[] payload) {}

    private HandshakeAction pending;

    /** Reads one option reply for {@code option}; null with {@link #pending} set if more bytes are needed or it failed. */
    private OptionReply readOptionReply(ByteBuffer in, NbdOption option) {
        if (in.remaining() < NbdSizes.OPTION_REPLY_HEADER) {
            pending = new HandshakeAction.NeedMore(NbdSizes.OPTION_REPLY_HEADER);
            return null;
        }
        int p = in.position();
        long magic = in.getLong(p);
        if (magic != NbdMagic.OPTION_REPLY) {
            pending = violation(new ProtocolViolation.BadMagic("option reply", NbdMagic.OPTION_REPLY, magic));
            return null;
        }
        int echoed = in.getInt(p + 8);
        if (echoed != option.code()) {
            pending = violation(new ProtocolViolation.UnexpectedReply("reply for option " + echoed + " while waiting for NBD_OPT_"
                    + option.name()));
            return null;
        }
        int type = in.getInt(p + 12);
        long length = Integer.toUnsignedLong(in.getInt(p + 16));
        if (length > MAX_OPTION_REPLY) {
            pending = violation(new ProtocolViolation.OversizeLength("option reply", length, MAX_OPTION_REPLY));
            return null;
        }
        int total = NbdSizes.OPTION_REPLY_HEADER + (int) length;
        if (in.remaining() < total) {
            pending = new HandshakeAction.NeedMore(total);
            return null;
        }
        byte[] payload = new byte[(int) length];
        in.get(p + NbdSizes.OPTION_REPLY_HEADER, payload);
        in.position(p + total);
        return new OptionReply(type, payload);
    }

    private HandshakeAction needOrFailed() {
        HandshakeAction a = pending;
        pending = null;
        return a;
    }

    private HandshakeAction sendOption(NbdOption option, byte[] data, State next) {
        ByteBuffer b = optionHeader(option, data.length);
        b.put(data).flip();
        state = next;
        return new HandshakeAction.Send(b);
    }

    private static ByteBuffer optionHeader(NbdOption option, int dataLength) {
        return ByteBuffer.allocate(NbdSizes.OPTION_HEADER + dataLength)
                .putLong(NbdMagic.IHAVEOPT).putInt(option.code()).putInt(dataLength);
    }

    private HandshakeAction rejected(NbdOption option, OptionReply r) {
        String msg = r.payload.length == 0 ? null : new String(r.payload, StandardCharsets.UTF_8);
        return softFail(new HandshakeError.OptionRejected(option, r.type, msg));
    }

    private HandshakeAction unexpectedReplyType(NbdOption option, OptionReply r) {
        return violation(new ProtocolViolation.UnexpectedReply("reply type " + r.type + " to NBD_OPT_" + option.name()));
    }

    /** The spec asks a client that gives up during option haggling to send NBD_OPT_ABORT (a soft disconnect). */
    private HandshakeAction softFail(HandshakeError e) {
        error = e;
        state = State.SEND_ABORT;
        return null;
    }

    private HandshakeAction violation(ProtocolViolation v) {
        // A broken server gets a hard disconnect: no further bytes.
        return fail(new HandshakeError.Violation(v));
    }

    private HandshakeAction fail(HandshakeError e) {
        error = e;
        state = State.FAILED;
        return null;
    }
}
