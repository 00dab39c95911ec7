package io.nbdgate.protocol.server;

import io.nbdgate.protocol.HandshakeFlags;
import io.nbdgate.protocol.InfoType;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.OptionReplyType;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The server side of the fixed-newstyle NBD handshake as an explicit state machine: bytes from the
 * client go in through {@link #receive}, actions for the connection come out. It does no I/O, so
 * every transition is a unit test. One instance per connection, not thread-safe.
 */
public final class ServerHandshake {

    /** Where the handshake stands; each transition is one branch of {@link #step()}. */
    public enum State {
        /** Greeting not sent yet; {@link #start()} sends it. */
        INITIAL,
        /** Waiting for the 32-bit client flags. */
        AWAIT_CLIENT_FLAGS,
        /** Waiting for the 16-byte option header (IHAVEOPT, option, length). */
        AWAIT_OPTION_HEADER,
        /** Header read, waiting for its {@code length} bytes of option data. */
        AWAIT_OPTION_DATA,
        /** NBD_OPT_STARTTLS acknowledged: the connection runs TLS, then calls {@link #tlsEstablished()}. */
        TLS_HANDSHAKE,
        /** NBD_OPT_GO acknowledged or NBD_OPT_EXPORT_NAME answered: the transmission phase. */
        TRANSMISSION,
        /** The handshake ended without transmission (abort, violation, unknown export). */
        CLOSED
    }

    /** What the connection must do, in order. */
    public sealed interface Action permits Send, StartTls, EnterTransmission, Disconnect {}

    /** Write these bytes to the client. */
    public record Send(byte[] bytes) implements Action {}

    /** Run the server side of a TLS handshake on the socket now; the options go on inside it. */
    public record StartTls() implements Action {}

    /** Switch to the transmission phase with what was negotiated; {@link #leftover()} holds early bytes. */
    public record EnterTransmission(Negotiated negotiated) implements Action {}

    /**
     * Close the connection. {@code soft} is the client's NBD_OPT_ABORT; otherwise a hard disconnect
     * for the reason given, which the connection logs.
     */
    public record Disconnect(boolean soft, String reason) implements Action {}

    /** The outcome of a successful handshake. */
    public record Negotiated(OfferedExport export, boolean structuredReplies, boolean extendedHeaders,
                             boolean blockSizeRequested) {}

    /** TLS on this server: none, offered (STARTTLS accepted), or required (nothing but STARTTLS before it). */
    public enum Tls { OFF, ON, REQUIRE }

    /** What this server is willing to negotiate beyond the baseline. */
    public record Policy(boolean offerExtendedHeaders, Tls tls) {
        /** Baseline only: extended headers refused with ERR_UNSUP. */
        public static final Policy DEFAULT = new Policy(false);
        /** Everything this implementation can do, without TLS. */
        public static final Policy OFFER_ALL = new Policy(true);

        public Policy(boolean offerExtendedHeaders) {
            this(offerExtendedHeaders, Tls.OFF);
        }

        public Policy withTls(Tls t) {
            return new Policy(offerExtendedHeaders, t);
        }
    }

    /** Option data beyond this is a denial-of-service attempt, not a real option (names are at most 4096). */
    static final int MAX_OPTION_LENGTH = 64 * 1024;

    private final ExportCatalog exports;
    private final Policy policy;
    private State state = State.INITIAL;
    private byte[] input = new byte[256];
    private int readIndex;
    private int writeIndex;

    private boolean noZeroes;
    private boolean tlsActive;
    private boolean structuredReplies;
    private boolean extendedHeaders;
    private int option;
    private int optionLength;

    public ServerHandshake(ExportCatalog exports, Policy policy) {
        this.exports = exports;
        this.policy = policy;
    }

    public State state() {
        return state;
    }

    /** The greeting: NBDMAGIC, IHAVEOPT, handshake flags FIXED_NEWSTYLE|NO_ZEROES. */
    public List<Action> start() {
        if (state != State.INITIAL) throw new IllegalStateException("handshake already started: " + state);
        ByteBuffer b = ByteBuffer.allocate(18);
        b.putLong(NbdMagic.NBDMAGIC).putLong(NbdMagic.IHAVEOPT).putShort((short) (HandshakeFlags.FIXED_NEWSTYLE | HandshakeFlags.NO_ZEROES));
        state = State.AWAIT_CLIENT_FLAGS;
        return List.of(new Send(b.array()));
    }

    /** Feeds bytes from the client; returns the actions they cause (none while a message is incomplete). */
    public List<Action> receive(ByteBuffer bytes) {
        if (state == State.INITIAL) throw new IllegalStateException("start() the handshake before receiving");
        if (state == State.TLS_HANDSHAKE)
            throw new IllegalStateException("bytes during the TLS handshake belong to TLS, not to the NBD handshake");
        if (state == State.TRANSMISSION || state == State.CLOSED)
            throw new IllegalStateException("handshake is over (" + state + "); bytes belong to the transmission phase");
        append(bytes);
        List<Action> actions = new ArrayList<>();
        while (state != State.TRANSMISSION && state != State.CLOSED && state != State.TLS_HANDSHAKE) {
            if (!step(actions)) break;
        }
        return actions;
    }

    /** The connection's TLS handshake succeeded: options go on, inside TLS. */
    public void tlsEstablished() {
        if (state != State.TLS_HANDSHAKE) throw new IllegalStateException("no STARTTLS pending in " + state);
        tlsActive = true;
        state = State.AWAIT_OPTION_HEADER;
    }

    /** Bytes the client sent after the handshake ended; they start the transmission phase. */
    public ByteBuffer leftover() {
        return ByteBuffer.wrap(Arrays.copyOfRange(input, readIndex, writeIndex));
    }

    /** One transition if enough input is there; false when more bytes are needed. */
    private boolean step(List<Action> out) {
        switch (state) {
            case AWAIT_CLIENT_FLAGS -> {
                if (available() < 4) return false;
                int flags = readInt();
                int known = HandshakeFlags.C_KNOWN;
                if ((flags & ~known) != 0) {
                    return close(out, "client sent unknown client flags 0x" + Integer.toHexString(flags));
                }
                // Fixed newstyle is honoured even without the client's bit (the spec allows it).
                noZeroes = (flags & HandshakeFlags.C_NO_ZEROES) != 0;
                state = State.AWAIT_OPTION_HEADER;
                return true;
            }
            case AWAIT_OPTION_HEADER -> {
                if (available() < 16) return false;
                long magic = readLong();
                if (magic != NbdMagic.IHAVEOPT) {
                    return close(out, "bad option magic 0x" + Long.toHexString(magic));
                }
                option = readInt();
                optionLength = readInt();
                if (Integer.compareUnsigned(optionLength, MAX_OPTION_LENGTH) > 0) {
                    return close(out, "option " + option + " has " + Integer.toUnsignedString(optionLength)
                            + " bytes of data, more than the limit of " + MAX_OPTION_LENGTH);
                }
                state = State.AWAIT_OPTION_DATA;
                return true;
            }
            case AWAIT_OPTION_DATA -> {
                if (available() < optionLength) return false;
                byte[] data = readBytes(optionLength);
                state = State.AWAIT_OPTION_HEADER;
                handleOption(option, data, out);
                return true;
            }
            default -> throw new IllegalStateException("no transition from " + state);
        }
    }

    private void handleOption(int opt, byte[] data, List<Action> out) {
        NbdOption known = NbdOption.fromCode(opt);
        if (policy.tls() == Tls.REQUIRE && !tlsActive && known != NbdOption.STARTTLS && known != NbdOption.ABORT) {
            if (known == NbdOption.EXPORT_NAME) {
                close(out, "client asked for an export without TLS, which this server requires");
            } else {
                error(out, opt, OptionReplyType.ERR_TLS_REQD.code(), "this server requires TLS: NBD_OPT_STARTTLS first");
            }
            return;
        }
        if (known == null) {
            error(out, opt, OptionReplyType.ERR_UNSUP.code(), "option " + opt + " is not known to this server");
            return;
        }
        switch (known) {
            case EXPORT_NAME -> exportName(data, out);
            case ABORT -> {
                // Data with ABORT is ignored, as the spec asks.
                out.add(new Send(optionReply(opt, OptionReplyType.ACK.code(), new byte[0])));
                state = State.CLOSED;
                out.add(new Disconnect(true, "client aborted the handshake"));
            }
            case LIST -> {
                if (data.length != 0) {
                    error(out, opt, OptionReplyType.ERR_INVALID.code(), "NBD_OPT_LIST takes no data");
                    return;
                }
                for (OfferedExport e : exports.all()) {
                    byte[] name = utf8(e.name());
                    byte[] description = utf8(e.description());
                    ByteBuffer b = ByteBuffer.allocate(4 + name.length + description.length);
                    b.putInt(name.length).put(name).put(description);
                    out.add(new Send(optionReply(opt, OptionReplyType.SERVER.code(), b.array())));
                }
                out.add(new Send(optionReply(opt, OptionReplyType.ACK.code(), new byte[0])));
            }
            case STARTTLS -> {
                if (data.length != 0) {
                    error(out, opt, OptionReplyType.ERR_INVALID.code(), "NBD_OPT_STARTTLS takes no data");
                    return;
                }
                if (policy.tls() == Tls.OFF) {
                    error(out, opt, OptionReplyType.ERR_POLICY.code(), "TLS is not configured on this server");
                } else if (tlsActive) {
                    error(out, opt, OptionReplyType.ERR_INVALID.code(), "TLS is already on");
                } else if (available() > 0) {
                    // Bytes behind STARTTLS were sent in plaintext and would count as inside TLS (CVE-2021-3716).
                    close(out, "client sent data after NBD_OPT_STARTTLS, before the TLS handshake");
                } else {
                    out.add(new Send(optionReply(opt, OptionReplyType.ACK.code(), new byte[0])));
                    state = State.TLS_HANDSHAKE;
                    out.add(new StartTls());
                }
            }
            case INFO, GO -> infoOrGo(opt, data, out);
            case STRUCTURED_REPLY -> {
                if (data.length != 0) {
                    error(out, opt, OptionReplyType.ERR_INVALID.code(), "NBD_OPT_STRUCTURED_REPLY takes no data");
                } else if (structuredReplies) {
                    error(out, opt, OptionReplyType.ERR_INVALID.code(), "structured replies are already negotiated");
                } else {
                    structuredReplies = true;
                    out.add(new Send(optionReply(opt, OptionReplyType.ACK.code(), new byte[0])));
                }
            }
            case EXTENDED_HEADERS -> {
                if (data.length != 0) {
                    error(out, opt, OptionReplyType.ERR_INVALID.code(), "NBD_OPT_EXTENDED_HEADERS takes no data");
                } else if (!policy.offerExtendedHeaders()) {
                    error(out, opt, OptionReplyType.ERR_UNSUP.code(), "extended headers are not offered by this server");
                } else if (extendedHeaders) {
                    error(out, opt, OptionReplyType.ERR_INVALID.code(), "extended headers are already negotiated");
                } else {
                    extendedHeaders = true;
                    out.add(new Send(optionReply(opt, OptionReplyType.ACK.code(), new byte[0])));
                }
            }
            default -> error(out, opt, OptionReplyType.ERR_UNSUP.code(), "option " + opt + " is not supported by this server");
        }
    }

    private void exportName(byte[] data, List<Action> out) {
        if (extendedHeaders) {
            close(out, "client used NBD_OPT_EXPORT_NAME after negotiating extended headers");
            return;
        }
        String name = new String(data, StandardCharsets.UTF_8);
        Optional<OfferedExport> export = exports.find(name);
        if (export.isEmpty()) {
            // EXPORT_NAME cannot carry an error: the spec demands a hard disconnect.
            close(out, "client asked for unknown export '" + name + "' with NBD_OPT_EXPORT_NAME");
            return;
        }
        OfferedExport e = export.get();
        ByteBuffer b = ByteBuffer.allocate(10 + (noZeroes ? 0 : 124));
        b.putLong(e.size()).putShort((short) e.transmissionFlags());
        out.add(new Send(b.array()));
        state = State.TRANSMISSION;
        out.add(new EnterTransmission(new Negotiated(e, structuredReplies, false, false)));
    }

    private void infoOrGo(int opt, byte[] data, List<Action> out) {
        ByteBuffer d = ByteBuffer.wrap(data);
        if (d.remaining() < 6) {
            error(out, opt, OptionReplyType.ERR_INVALID.code(), "option data too short for a name length and request count");
            return;
        }
        int nameLength = d.getInt();
        if (nameLength < 0 || nameLength > data.length - 6) {
            error(out, opt, OptionReplyType.ERR_INVALID.code(), "export name length " + Integer.toUnsignedString(nameLength)
                    + " does not fit in " + data.length + " bytes of option data");
            return;
        }
        byte[] nameBytes = new byte[nameLength];
        d.get(nameBytes);
        int requests = Short.toUnsignedInt(d.getShort());
        if (d.remaining() != requests * 2) {
            error(out, opt, OptionReplyType.ERR_INVALID.code(), requests + " information requests need " + requests * 2
                    + " bytes, " + d.remaining() + " were sent");
            return;
        }
        boolean wantName = false;
        boolean wantDescription = false;
        boolean wantBlockSize = false;
        for (int i = 0; i < requests; i++) {
            switch (InfoType.fromCode(Short.toUnsignedInt(d.getShort()))) {
                case NAME -> wantName = true;
                case DESCRIPTION -> wantDescription = true;
                case BLOCK_SIZE -> wantBlockSize = true;
                case null, default -> { } // EXPORT always goes out; unknown information requests are ignored, as the spec demands
            }
        }
        String name = new String(nameBytes, StandardCharsets.UTF_8);
        Optional<OfferedExport> export = exports.find(name);
        if (export.isEmpty()) {
            error(out, opt, OptionReplyType.ERR_UNKNOWN.code(), "no export named '" + name + "' on this server");
            return;
        }
        OfferedExport e = export.get();
        ByteBuffer info = ByteBuffer.allocate(12);
        info.putShort((short) InfoType.EXPORT.code()).putLong(e.size()).putShort((short) e.transmissionFlags());
        out.add(new Send(optionReply(opt, OptionReplyType.INFO.code(), info.array())));
        if (wantName) out.add(new Send(optionReply(opt, OptionReplyType.INFO.code(), infoString(InfoType.NAME.code(), e.name()))));
        if (wantDescription && !e.description().isEmpty()) {
            out.add(new Send(optionReply(opt, OptionReplyType.INFO.code(), infoString(InfoType.DESCRIPTION.code(), e.description()))));
        }
        // Sent even when not asked: it costs nothing and a client that ignores it loses nothing.
        ByteBuffer bs = ByteBuffer.allocate(14);
        bs.putShort((short) InfoType.BLOCK_SIZE.code()).putInt(e.minimumBlock()).putInt(e.preferredBlock()).putInt(e.maximumPayload());
        out.add(new Send(optionReply(opt, OptionReplyType.INFO.code(), bs.array())));
        out.add(new Send(optionReply(opt, OptionReplyType.ACK.code(), new byte[0])));
        if (opt == NbdOption.GO.code()) {
            state = State.TRANSMISSION;
            out.add(new EnterTransmission(new Negotiated(e, structuredReplies || extendedHeaders, extendedHeaders, wantBlockSize)));
        }
    }

    private static byte[] infoString(int type, String s) {
        byte[] b = utf8(s);
        return ByteBuffer.allocate(2 + b.length).putShort((short) type).put(b).array();
    }

    private static void error(List<Action> out, int opt, int type, String message) {
        out.add(new Send(optionReply(opt, type, utf8(message))));
    }

    private boolean close(List<Action> out, String reason) {
        state = State.CLOSED;
        out.add(new Disconnect(false, reason));
        return false;
    }

    /** One fixed-newstyle option reply: magic, option, reply type, length, data. */
    static byte[] optionReply(int opt, int type, byte[] data) {
        return ByteBuffer.allocate(20 + data.length)
                .putLong(NbdMagic.OPTION_REPLY).putInt(opt).putInt(type).putInt(data.length).put(data).array();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private void append(ByteBuffer bytes) {
        int n = bytes.remaining();
        if (writeIndex + n > input.length) {
            int live = writeIndex - readIndex;
            byte[] grown = live + n > input.length ? new byte[Math.max(input.length * 2, live + n)] : input;
            System.arraycopy(input, readIndex, grown, 0, live);
            input = grown;
            readIndex = 0;
            writeIndex = live;
        }
        bytes.get(input, writeIndex, n);
        writeIndex += n;
    }

    private int available() {
        return writeIndex - readIndex;
    }

    private int readInt() {
        int v = ByteBuffer.wrap(input, readIndex, 4).getInt();
        readIndex += 4;
        return v;
    }

    private long readLong() {
        long v = ByteBuffer.wrap(input, readIndex, 8).getLong();
        readIndex += 8;
        return v;
    }

    private byte[] readBytes(int n) {
        byte[] b = Arrays.copyOfRange(input, readIndex, readIndex + n);
        readIndex += n;
        return b;
    }
}
