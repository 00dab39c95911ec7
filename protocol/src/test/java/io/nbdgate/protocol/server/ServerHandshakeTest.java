package io.nbdgate.protocol.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.protocol.HandshakeFlags;
import io.nbdgate.protocol.InfoType;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.OptionReplyType;
import io.nbdgate.protocol.TransmissionFlag;
import io.nbdgate.protocol.server.ServerHandshake.Action;
import io.nbdgate.protocol.server.ServerHandshake.Disconnect;
import io.nbdgate.protocol.server.ServerHandshake.EnterTransmission;
import io.nbdgate.protocol.server.ServerHandshake.Send;
import io.nbdgate.protocol.server.ServerHandshake.State;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** One test per transition of {@link ServerHandshake}, named after the state and the input. */
class ServerHandshakeTest {

    static final int FLAGS = TransmissionFlag.HAS_FLAGS.mask() | TransmissionFlag.SEND_FLUSH.mask() | TransmissionFlag.CAN_MULTI_CONN.mask();
    static final OfferedExport DISK = new OfferedExport("disk", "a test disk", 1 << 20, FLAGS, 1, 4096, 1 << 25);
    static final OfferedExport OTHER = new OfferedExport("other", "", 4096, FLAGS | TransmissionFlag.READ_ONLY.mask(), 1, 4096, 1 << 25);

    static final ExportCatalog CATALOG = new ExportCatalog() {
        @Override public Optional<OfferedExport> find(String name) {
            return all().stream().filter(e -> e.name().equals(name)).findFirst();
        }
        @Override public List<OfferedExport> all() {
            return List.of(DISK, OTHER);
        }
    };

    ServerHandshake handshake = new ServerHandshake(CATALOG, ServerHandshake.Policy.DEFAULT);

    // ---- INITIAL ------------------------------------------------------------------------------

    @Test
    void initial_start_sendsGreetingAndAwaitsClientFlags() {
        List<Action> actions = handshake.start();
        ByteBuffer g = ByteBuffer.wrap(sent(actions, 0));
        assertEquals(18, g.remaining());
        assertEquals(NbdMagic.NBDMAGIC, g.getLong());
        assertEquals(NbdMagic.IHAVEOPT, g.getLong());
        assertEquals(HandshakeFlags.FIXED_NEWSTYLE | HandshakeFlags.NO_ZEROES, g.getShort());
        assertEquals(State.AWAIT_CLIENT_FLAGS, handshake.state());
    }

    @Test
    void initial_receive_isAProgrammingError() {
        assertThrows(IllegalStateException.class, () -> handshake.receive(ByteBuffer.allocate(4)));
    }

    // ---- AWAIT_CLIENT_FLAGS -------------------------------------------------------------------

    @Test
    void awaitClientFlags_partialFlags_waits() {
        handshake.start();
        assertTrue(handshake.receive(ByteBuffer.wrap(new byte[] {0, 0})).isEmpty());
        assertEquals(State.AWAIT_CLIENT_FLAGS, handshake.state());
        assertTrue(handshake.receive(ByteBuffer.wrap(new byte[] {0, 3})).isEmpty());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void awaitClientFlags_knownFlags_awaitsOptions() {
        handshake.start();
        assertTrue(handshake.receive(flags(HandshakeFlags.C_FIXED_NEWSTYLE | HandshakeFlags.C_NO_ZEROES)).isEmpty());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void awaitClientFlags_unknownFlag_hardDisconnect() {
        handshake.start();
        List<Action> actions = handshake.receive(flags(1 << 5));
        Disconnect d = assertInstanceOf(Disconnect.class, actions.getFirst());
        assertFalse(d.soft());
        assertTrue(d.reason().contains("unknown client flags"), d.reason());
        assertEquals(State.CLOSED, handshake.state());
    }

    // ---- AWAIT_OPTION_HEADER ------------------------------------------------------------------

    @Test
    void awaitOptionHeader_badMagic_hardDisconnect() {
        negotiated(true);
        ByteBuffer b = ByteBuffer.allocate(16).putLong(0x1234).putInt(NbdOption.LIST.code()).putInt(0).flip();
        Disconnect d = assertInstanceOf(Disconnect.class, handshake.receive(b).getFirst());
        assertFalse(d.soft());
        assertEquals(State.CLOSED, handshake.state());
    }

    @Test
    void awaitOptionHeader_hugeLength_hardDisconnect() {
        negotiated(true);
        ByteBuffer b = ByteBuffer.allocate(16).putLong(NbdMagic.IHAVEOPT).putInt(NbdOption.GO.code()).putInt(-1).flip();
        Disconnect d = assertInstanceOf(Disconnect.class, handshake.receive(b).getFirst());
        assertTrue(d.reason().contains("4294967295"), d.reason());
        assertEquals(State.CLOSED, handshake.state());
    }

    @Test
    void awaitOptionHeader_headerWithData_awaitsOptionData() {
        negotiated(true);
        ByteBuffer b = ByteBuffer.allocate(16).putLong(NbdMagic.IHAVEOPT).putInt(NbdOption.GO.code()).putInt(10).flip();
        assertTrue(handshake.receive(b).isEmpty());
        assertEquals(State.AWAIT_OPTION_DATA, handshake.state());
    }

    // ---- AWAIT_OPTION_DATA: one test per option -----------------------------------------------

    @Test
    void optionData_arrivingInPieces_isHandledOnceComplete() {
        negotiated(true);
        byte[] go = option(NbdOption.GO.code(), goData("disk")).array();
        for (int i = 0; i < go.length - 1; i++) {
            assertTrue(handshake.receive(ByteBuffer.wrap(go, i, 1)).isEmpty());
        }
        List<Action> actions = handshake.receive(ByteBuffer.wrap(go, go.length - 1, 1));
        assertInstanceOf(EnterTransmission.class, actions.getLast());
    }

    @Test
    void exportName_known_sendsSizeFlagsAndZeroesThenTransmission() {
        negotiated(false);
        List<Action> actions = handshake.receive(option(NbdOption.EXPORT_NAME.code(), utf8("disk")));
        ByteBuffer r = ByteBuffer.wrap(sent(actions, 0));
        assertEquals(10 + 124, r.remaining());
        assertEquals(DISK.size(), r.getLong());
        assertEquals((short) FLAGS, r.getShort());
        EnterTransmission t = assertInstanceOf(EnterTransmission.class, actions.get(1));
        assertEquals(DISK, t.negotiated().export());
        assertFalse(t.negotiated().structuredReplies());
        assertEquals(State.TRANSMISSION, handshake.state());
    }

    @Test
    void exportName_withNoZeroes_omitsTheZeroes() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.EXPORT_NAME.code(), utf8("disk")));
        assertEquals(10, sent(actions, 0).length);
    }

    @Test
    void exportName_unknown_hardDisconnect() {
        negotiated(true);
        Disconnect d = assertInstanceOf(Disconnect.class, handshake.receive(option(NbdOption.EXPORT_NAME.code(), utf8("nope"))).getFirst());
        assertFalse(d.soft());
        assertTrue(d.reason().contains("nope"));
        assertEquals(State.CLOSED, handshake.state());
    }

    @Test
    void abort_acksAndSoftDisconnects() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.ABORT.code(), new byte[0]));
        assertReply(sent(actions, 0), NbdOption.ABORT.code(), OptionReplyType.ACK.code());
        assertTrue(assertInstanceOf(Disconnect.class, actions.get(1)).soft());
        assertEquals(State.CLOSED, handshake.state());
    }

    @Test
    void list_sendsOneServerReplyPerExportThenAck() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.LIST.code(), new byte[0]));
        assertEquals(3, actions.size());
        ByteBuffer first = assertReply(sent(actions, 0), NbdOption.LIST.code(), OptionReplyType.SERVER.code());
        int nameLength = first.getInt();
        byte[] name = new byte[nameLength];
        first.get(name);
        assertEquals("disk", new String(name, StandardCharsets.UTF_8));
        assertEquals("a test disk", StandardCharsets.UTF_8.decode(first).toString());
        assertReply(sent(actions, 1), NbdOption.LIST.code(), OptionReplyType.SERVER.code());
        assertReply(sent(actions, 2), NbdOption.LIST.code(), OptionReplyType.ACK.code());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void list_withData_errInvalid() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.LIST.code(), new byte[] {1}));
        assertReply(sent(actions, 0), NbdOption.LIST.code(), OptionReplyType.ERR_INVALID.code());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void starttls_notConfigured_errPolicyAndStaysInOptions() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.STARTTLS.code(), new byte[0]));
        assertReply(sent(actions, 0), NbdOption.STARTTLS.code(), OptionReplyType.ERR_POLICY.code());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void starttls_required_onlyStarttlsAndAbortBeforeIt() {
        handshake = new ServerHandshake(CATALOG, ServerHandshake.Policy.OFFER_ALL.withTls(ServerHandshake.Tls.REQUIRE));
        negotiated(true);
        assertReply(sent(handshake.receive(option(NbdOption.LIST.code(), new byte[0])), 0), NbdOption.LIST.code(),
                OptionReplyType.ERR_TLS_REQD.code());
        assertReply(sent(handshake.receive(option(NbdOption.GO.code(), goData("disk"))), 0), NbdOption.GO.code(),
                OptionReplyType.ERR_TLS_REQD.code());
        Disconnect d = assertInstanceOf(Disconnect.class,
                handshake.receive(option(NbdOption.EXPORT_NAME.code(), utf8("disk"))).getFirst());
        assertFalse(d.soft());
        assertTrue(d.reason().contains("without TLS"), d.reason());
    }

    @Test
    void starttls_accepted_handsTheSocketToTlsThenOptionsGoOn() {
        handshake = new ServerHandshake(CATALOG, ServerHandshake.Policy.OFFER_ALL.withTls(ServerHandshake.Tls.REQUIRE));
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.STARTTLS.code(), new byte[0]));
        assertReply(sent(actions, 0), NbdOption.STARTTLS.code(), OptionReplyType.ACK.code());
        assertInstanceOf(ServerHandshake.StartTls.class, actions.get(1));
        assertEquals(State.TLS_HANDSHAKE, handshake.state());
        assertThrows(IllegalStateException.class, () -> handshake.receive(ByteBuffer.allocate(1)));
        handshake.tlsEstablished();
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
        assertReply(sent(handshake.receive(option(NbdOption.STARTTLS.code(), new byte[0])), 0),
                NbdOption.STARTTLS.code(), OptionReplyType.ERR_INVALID.code());
        List<Action> go = handshake.receive(option(NbdOption.GO.code(), goData("disk")));
        assertInstanceOf(ServerHandshake.EnterTransmission.class, go.getLast());
    }

    @Test
    void starttls_bytesBehindIt_areRefusedNotTakenIntoTls() {
        // CVE-2021-3716: plaintext sent after STARTTLS must not count as sent inside TLS.
        handshake = new ServerHandshake(CATALOG, ServerHandshake.Policy.OFFER_ALL.withTls(ServerHandshake.Tls.ON));
        negotiated(true);
        ByteBuffer starttls = option(NbdOption.STARTTLS.code(), new byte[0]);
        ByteBuffer go = option(NbdOption.GO.code(), goData("disk"));
        ByteBuffer both = ByteBuffer.allocate(starttls.remaining() + go.remaining()).put(starttls).put(go).flip();
        Disconnect d = assertInstanceOf(Disconnect.class, handshake.receive(both).getFirst());
        assertFalse(d.soft());
        assertEquals(State.CLOSED, handshake.state());
    }

    @Test
    void starttls_withData_errInvalid() {
        negotiated(true);
        assertReply(sent(handshake.receive(option(NbdOption.STARTTLS.code(), new byte[] {0})), 0), NbdOption.STARTTLS.code(), OptionReplyType.ERR_INVALID.code());
    }

    @Test
    void info_known_sendsExportNameDescriptionBlockSizeThenAckAndStays() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.INFO.code(), goData("disk",
                InfoType.NAME.code(), InfoType.DESCRIPTION.code(), InfoType.BLOCK_SIZE.code(), 77)));
        assertEquals(5, actions.size());
        ByteBuffer export = assertReply(sent(actions, 0), NbdOption.INFO.code(), OptionReplyType.INFO.code());
        assertEquals(InfoType.EXPORT.code(), export.getShort());
        assertEquals(DISK.size(), export.getLong());
        assertEquals((short) FLAGS, export.getShort());
        ByteBuffer name = assertReply(sent(actions, 1), NbdOption.INFO.code(), OptionReplyType.INFO.code());
        assertEquals(InfoType.NAME.code(), name.getShort());
        assertEquals("disk", StandardCharsets.UTF_8.decode(name).toString());
        ByteBuffer description = assertReply(sent(actions, 2), NbdOption.INFO.code(), OptionReplyType.INFO.code());
        assertEquals(InfoType.DESCRIPTION.code(), description.getShort());
        assertEquals("a test disk", StandardCharsets.UTF_8.decode(description).toString());
        ByteBuffer bs = assertReply(sent(actions, 3), NbdOption.INFO.code(), OptionReplyType.INFO.code());
        assertEquals(InfoType.BLOCK_SIZE.code(), bs.getShort());
        assertEquals(1, bs.getInt());
        assertEquals(4096, bs.getInt());
        assertEquals(1 << 25, bs.getInt());
        assertReply(sent(actions, 4), NbdOption.INFO.code(), OptionReplyType.ACK.code());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void info_unknownExport_errUnknown() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.INFO.code(), goData("nope")));
        assertEquals(1, actions.size());
        assertReply(sent(actions, 0), NbdOption.INFO.code(), OptionReplyType.ERR_UNKNOWN.code());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void info_nameLongerThanData_errInvalid() {
        negotiated(true);
        ByteBuffer data = ByteBuffer.allocate(8).putInt(100).putShort((short) 0).putShort((short) 0);
        assertReply(sent(handshake.receive(option(NbdOption.INFO.code(), data.array())), 0), NbdOption.INFO.code(), OptionReplyType.ERR_INVALID.code());
    }

    @Test
    void info_requestCountNotMatchingData_errInvalid() {
        negotiated(true);
        ByteBuffer data = ByteBuffer.allocate(10).putInt(0).putShort((short) 3).putShort((short) 0).putShort((short) 1);
        assertReply(sent(handshake.receive(option(NbdOption.INFO.code(), data.array())), 0), NbdOption.INFO.code(), OptionReplyType.ERR_INVALID.code());
    }

    @Test
    void go_known_acksAndEntersTransmission() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.GO.code(), goData("other", InfoType.BLOCK_SIZE.code())));
        assertReply(sent(actions, actions.size() - 2), NbdOption.GO.code(), OptionReplyType.ACK.code());
        EnterTransmission t = assertInstanceOf(EnterTransmission.class, actions.getLast());
        assertEquals(OTHER, t.negotiated().export());
        assertTrue(t.negotiated().blockSizeRequested());
        assertEquals(State.TRANSMISSION, handshake.state());
    }

    @Test
    void go_unknownExport_errUnknownAndStaysInOptions() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(NbdOption.GO.code(), goData("nope")));
        assertReply(sent(actions, 0), NbdOption.GO.code(), OptionReplyType.ERR_UNKNOWN.code());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void go_bytesAfterGo_areLeftForTransmission() {
        negotiated(true);
        ByteBuffer both = ByteBuffer.allocate(64);
        both.put(option(NbdOption.GO.code(), goData("disk"))).put(new byte[] {9, 8, 7}).flip();
        handshake.receive(both);
        assertArrayEquals(new byte[] {9, 8, 7}, handshake.leftover().array());
        assertThrows(IllegalStateException.class, () -> handshake.receive(ByteBuffer.allocate(1)));
    }

    @Test
    void structuredReply_acksAndGoCarriesIt() {
        negotiated(true);
        assertReply(sent(handshake.receive(option(NbdOption.STRUCTURED_REPLY.code(), new byte[0])), 0), NbdOption.STRUCTURED_REPLY.code(), OptionReplyType.ACK.code());
        List<Action> actions = handshake.receive(option(NbdOption.GO.code(), goData("disk")));
        assertTrue(assertInstanceOf(EnterTransmission.class, actions.getLast()).negotiated().structuredReplies());
    }

    @Test
    void structuredReply_twice_errInvalid() {
        negotiated(true);
        handshake.receive(option(NbdOption.STRUCTURED_REPLY.code(), new byte[0]));
        assertReply(sent(handshake.receive(option(NbdOption.STRUCTURED_REPLY.code(), new byte[0])), 0), NbdOption.STRUCTURED_REPLY.code(), OptionReplyType.ERR_INVALID.code());
    }

    @Test
    void structuredReply_withData_errInvalid() {
        negotiated(true);
        assertReply(sent(handshake.receive(option(NbdOption.STRUCTURED_REPLY.code(), new byte[] {1})), 0), NbdOption.STRUCTURED_REPLY.code(), OptionReplyType.ERR_INVALID.code());
    }

    @Test
    void extendedHeaders_notOffered_errUnsup() {
        negotiated(true);
        assertReply(sent(handshake.receive(option(NbdOption.EXTENDED_HEADERS.code(), new byte[0])), 0), NbdOption.EXTENDED_HEADERS.code(), OptionReplyType.ERR_UNSUP.code());
    }

    @Test
    void extendedHeaders_offered_acksAndGoCarriesItWithStructuredReplies() {
        handshake = new ServerHandshake(CATALOG, new ServerHandshake.Policy(true));
        negotiated(true);
        assertReply(sent(handshake.receive(option(NbdOption.EXTENDED_HEADERS.code(), new byte[0])), 0), NbdOption.EXTENDED_HEADERS.code(), OptionReplyType.ACK.code());
        ServerHandshake.Negotiated n = assertInstanceOf(EnterTransmission.class,
                handshake.receive(option(NbdOption.GO.code(), goData("disk"))).getLast()).negotiated();
        assertTrue(n.extendedHeaders());
        assertTrue(n.structuredReplies());
    }

    @Test
    void extendedHeaders_thenExportName_hardDisconnect() {
        handshake = new ServerHandshake(CATALOG, new ServerHandshake.Policy(true));
        negotiated(true);
        handshake.receive(option(NbdOption.EXTENDED_HEADERS.code(), new byte[0]));
        assertFalse(assertInstanceOf(Disconnect.class, handshake.receive(option(NbdOption.EXPORT_NAME.code(), utf8("disk"))).getFirst()).soft());
    }

    @Test
    void unknownOption_errUnsupAndStaysInOptions() {
        negotiated(true);
        List<Action> actions = handshake.receive(option(4242, new byte[] {1, 2, 3}));
        assertReply(sent(actions, 0), 4242, OptionReplyType.ERR_UNSUP.code());
        assertEquals(State.AWAIT_OPTION_HEADER, handshake.state());
    }

    @Test
    void metaContext_isUnsupported() {
        negotiated(true);
        assertReply(sent(handshake.receive(option(NbdOption.SET_META_CONTEXT.code(), new byte[8])), 0), NbdOption.SET_META_CONTEXT.code(), OptionReplyType.ERR_UNSUP.code());
    }

    // ---- helpers ------------------------------------------------------------------------------

    private void negotiated(boolean noZeroes) {
        handshake.start();
        handshake.receive(flags(HandshakeFlags.C_FIXED_NEWSTYLE | (noZeroes ? HandshakeFlags.C_NO_ZEROES : 0)));
    }

    private static ByteBuffer flags(int f) {
        return ByteBuffer.allocate(4).putInt(f).flip();
    }

    private static ByteBuffer option(int opt, byte[] data) {
        return ByteBuffer.allocate(16 + data.length).putLong(NbdMagic.IHAVEOPT).putInt(opt).putInt(data.length).put(data).flip();
    }

    private static byte[] goData(String name, int... requests) {
        byte[] n = utf8(name);
        ByteBuffer b = ByteBuffer.allocate(4 + n.length + 2 + 2 * requests.length);
        b.putInt(n.length).put(n).putShort((short) requests.length);
        for (int r : requests) b.putShort((short) r);
        return b.array();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] sent(List<Action> actions, int index) {
        return assertInstanceOf(Send.class, actions.get(index)).bytes();
    }

    /** Checks an option reply's header and returns its data. */
    private static ByteBuffer assertReply(byte[] reply, int opt, int type) {
        ByteBuffer b = ByteBuffer.wrap(reply);
        assertEquals(NbdMagic.OPTION_REPLY, b.getLong());
        assertEquals(opt, b.getInt());
        assertEquals(type, b.getInt(), "reply type");
        assertEquals(reply.length - 20, b.getInt());
        return b.slice();
    }
}
