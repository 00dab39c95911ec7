package io.nbdgate.protocol.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.InfoType;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.OptionReplyType;
import io.nbdgate.protocol.ProtocolViolation;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.client.ClientHandshake.State;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** One test per transition of {@link ClientHandshake}: bytes in, actions out. */
class ClientHandshakeTest {

    private final ByteBuffer in = ByteBuffer.allocate(1 << 16).flip();

    private void serverSends(ByteBuffer b) {
        in.compact().put(b.flip()).flip();
    }

    static ByteBuffer greeting(int flags) {
        return ByteBuffer.allocate(18).putLong(NbdMagic.NBDMAGIC).putLong(NbdMagic.IHAVEOPT).putShort((short) flags);
    }

    static ByteBuffer reply(NbdOption option, OptionReplyType type, byte[] payload) {
        return reply(option.code(), type.code(), payload);
    }

    static ByteBuffer reply(int option, int type, byte[] payload) {
        return ByteBuffer.allocate(20 + payload.length).putLong(NbdMagic.OPTION_REPLY).putInt(option).putInt(type)
                .putInt(payload.length).put(payload);
    }

    static ByteBuffer ack(NbdOption option) {
        return reply(option, OptionReplyType.ACK, new byte[0]);
    }

    static byte[] infoExport(long size, int flags) {
        return ByteBuffer.allocate(12).putShort((short) 0).putLong(size).putShort((short) flags).array();
    }

    static byte[] infoString(InfoType t, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(2 + b.length).putShort((short) t.code()).put(b).array();
    }

    static byte[] infoBlockSize(int min, int pref, int max) {
        return ByteBuffer.allocate(14).putShort((short) 3).putInt(min).putInt(pref).putInt(max).array();
    }

    private static String hex(HandshakeAction a) {
        ByteBuffer b = assertInstanceOf(HandshakeAction.Send.class, a).bytes();
        byte[] x = new byte[b.remaining()];
        b.duplicate().get(x);
        return HexFormat.of().formatHex(x);
    }

    private static String option(NbdOption o, String dataHex) {
        return "49484156454f5054" + String.format("%08x%08x", o.code(), dataHex.length() / 2) + dataHex;
    }

    /** Drives a machine through greeting and flags; returns it in the first option state. */
    private ClientHandshake afterFlags(HandshakeConfig config, int serverFlags) {
        ClientHandshake h = new ClientHandshake(config);
        serverSends(greeting(serverFlags));
        assertEquals("0000000" + (serverFlags & 3), hex(h.step(in)));
        return h;
    }

    private HandshakeAction.Failed failed(HandshakeAction a) {
        return assertInstanceOf(HandshakeAction.Failed.class, a);
    }

    // ---- RECV_GREETING ----

    @Test
    void greetingNeedsEighteenBytes() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("x"));
        in.limit(0);
        assertEquals(new HandshakeAction.NeedMore(18), h.step(in));
        assertEquals(State.RECV_GREETING, h.state());
    }

    @Test
    void greetingWithBadMagicIsAViolation() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("x"));
        serverSends(ByteBuffer.allocate(18).putLong(0x1122334455667788L).putLong(NbdMagic.IHAVEOPT).putShort((short) 3));
        var f = failed(h.step(in));
        assertEquals(new HandshakeError.Violation(new ProtocolViolation.BadMagic("server greeting", NbdMagic.NBDMAGIC,
                0x1122334455667788L)), f.error());
        assertEquals(State.FAILED, h.state());
    }

    @Test
    void oldstyleServerIsUnsupported() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("x"));
        serverSends(ByteBuffer.allocate(18).putLong(NbdMagic.NBDMAGIC).putLong(NbdMagic.CLISERV_MAGIC).putShort((short) 0));
        assertInstanceOf(HandshakeError.Unsupported.class, failed(h.step(in)).error());
    }

    // ---- SEND_CLIENT_FLAGS ----

    @Test
    void clientFlagsEchoFixedNewstyleAndNoZeroes() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("x"));
        serverSends(greeting(3));
        assertEquals("00000003", hex(h.step(in)));
        assertEquals(State.SEND_EXTENDED_HEADERS, h.state());
    }

    @Test
    void clientFlagsOmitNoZeroesWhenTheServerDidNotOfferIt() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("x"));
        serverSends(greeting(1));
        assertEquals("00000001", hex(h.step(in)));
    }

    @Test
    void plainNewstyleServerGetsExportNameStraightAway() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("disk"));
        serverSends(greeting(0));
        assertEquals("00000000", hex(h.step(in)));
        assertEquals(option(NbdOption.EXPORT_NAME, "6469736b"), hex(h.step(in)));
        assertEquals(State.RECV_EXPORT_NAME_REPLY, h.state());
    }

    @Test
    void plainNewstyleServerCannotList() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.list());
        serverSends(greeting(0));
        h.step(in);
        assertInstanceOf(HandshakeError.Unsupported.class, failed(h.step(in)).error());
    }

    // ---- STARTTLS slot ----

    @Test
    void tlsConfigSendsStartTlsFirstAndAsksForTheUpgrade() {
        ClientHandshake h = afterFlags(new HandshakeConfig("x", HandshakeConfig.Goal.GO, true, true, true), 3);
        assertEquals(option(NbdOption.STARTTLS, ""), hex(h.step(in)));
        assertEquals(State.RECV_STARTTLS_REPLY, h.state());
        serverSends(ack(NbdOption.STARTTLS));
        assertEquals(new HandshakeAction.UpgradeToTls(), h.step(in));
        assertEquals(State.TLS_UPGRADE, h.state());
        h.tlsEstablished();
        assertEquals(option(NbdOption.EXTENDED_HEADERS, ""), hex(h.step(in)));
    }

    @Test
    void refusedStartTlsAbortsInsteadOfFallingBackToPlaintext() {
        ClientHandshake h = afterFlags(new HandshakeConfig("x", HandshakeConfig.Goal.GO, true, true, true), 3);
        h.step(in);
        serverSends(reply(NbdOption.STARTTLS, OptionReplyType.ERR_POLICY, new byte[0]));
        assertEquals(option(NbdOption.ABORT, ""), hex(h.step(in)));
        var f = failed(h.step(in));
        assertEquals(NbdOption.STARTTLS, ((HandshakeError.OptionRejected) f.error()).option());
    }

    @Test
    void tlsEstablishedOutsideTheUpgradeStateIsAProgrammingError() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("x"));
        assertThrows(IllegalStateException.class, h::tlsEstablished);
    }

    // ---- EXTENDED_HEADERS / STRUCTURED_REPLY ----

    @Test
    void extendedHeadersAckLeadsToGoWithAllInfoRequests() {
        ClientHandshake h = afterFlags(HandshakeConfig.go("disk"), 3);
        assertEquals(option(NbdOption.EXTENDED_HEADERS, ""), hex(h.step(in)));
        assertEquals(State.RECV_EXTENDED_HEADERS_REPLY, h.state());
        serverSends(ack(NbdOption.EXTENDED_HEADERS));
        // name length, name, 4 info requests: EXPORT, NAME, DESCRIPTION, BLOCK_SIZE
        assertEquals(option(NbdOption.GO, "00000004" + "6469736b" + "0004" + "0000000100020003"), hex(h.step(in)));
        assertEquals(State.RECV_GO_REPLY, h.state());
    }

    @Test
    void extendedHeadersRefusedFallsBackToStructuredReply() {
        ClientHandshake h = afterFlags(HandshakeConfig.go("disk"), 3);
        h.step(in);
        serverSends(reply(NbdOption.EXTENDED_HEADERS, OptionReplyType.ERR_UNSUP, new byte[0]));
        assertEquals(option(NbdOption.STRUCTURED_REPLY, ""), hex(h.step(in)));
        assertEquals(State.RECV_STRUCTURED_REPLY_REPLY, h.state());
    }

    @Test
    void extendedHeadersAnsweredWithShutdownAborts() {
        ClientHandshake h = afterFlags(HandshakeConfig.go("disk"), 3);
        h.step(in);
        serverSends(reply(NbdOption.EXTENDED_HEADERS, OptionReplyType.ERR_SHUTDOWN, new byte[0]));
        assertEquals(option(NbdOption.ABORT, ""), hex(h.step(in)));
        assertInstanceOf(HandshakeError.OptionRejected.class, failed(h.step(in)).error());
    }

    @Test
    void extendedHeadersAnsweredWithServerReplyTypeIsAViolation() {
        ClientHandshake h = afterFlags(HandshakeConfig.go("disk"), 3);
        h.step(in);
        serverSends(reply(NbdOption.EXTENDED_HEADERS, OptionReplyType.SERVER, new byte[4]));
        assertInstanceOf(HandshakeError.Violation.class, failed(h.step(in)).error());
    }

    @Test
    void structuredReplyRefusedMeansSimpleReplies() {
        ClientHandshake h = afterFlags(new HandshakeConfig("d", HandshakeConfig.Goal.GO, false, false, true), 3);
        assertEquals(option(NbdOption.STRUCTURED_REPLY, ""), hex(h.step(in)));
        serverSends(reply(NbdOption.STRUCTURED_REPLY, OptionReplyType.ERR_UNSUP, new byte[0]));
        assertTrue(hex(h.step(in)).startsWith(option(NbdOption.GO, "").substring(0, 24)));
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, infoExport(1024, 1)));
        serverSends(ack(NbdOption.GO));
        var ready = assertInstanceOf(HandshakeAction.Ready.class, h.step(in));
        assertEquals(TransmissionMode.SIMPLE, ready.export().mode());
    }

    // ---- GO ----

    private ClientHandshake atGo(int serverFlags) {
        ClientHandshake h = afterFlags(HandshakeConfig.go("disk"), serverFlags);
        h.step(in);
        serverSends(reply(NbdOption.EXTENDED_HEADERS, OptionReplyType.ERR_UNSUP, new byte[0]));
        h.step(in);
        serverSends(ack(NbdOption.STRUCTURED_REPLY));
        hex(h.step(in));
        assertEquals(State.RECV_GO_REPLY, h.state());
        return h;
    }

    @Test
    void goCollectsInfoRepliesAndIgnoresUnknownInfoTypes() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, infoString(InfoType.NAME, "canonical")));
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, new byte[] {0, 42, 1, 2}));
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, infoString(InfoType.DESCRIPTION, "a test disk")));
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, infoBlockSize(512, 4096, 1 << 20)));
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, infoExport(1L << 30, 0b1_0110_1101)));
        serverSends(ack(NbdOption.GO));
        in.compact().put(new byte[] {1, 2, 3}).flip(); // transmission bytes already arrived

        var ready = assertInstanceOf(HandshakeAction.Ready.class, h.step(in));

        ExportInfo e = ready.export();
        assertEquals(new ExportInfo("canonical", "a test disk", 1L << 30, 0b1_0110_1101, 512, 4096, 1 << 20, true,
                TransmissionMode.STRUCTURED), e);
        assertTrue(e.canFlush() && e.canFua() && e.canTrim() && e.canWriteZeroes() && e.canMultiConn());
        assertTrue(!e.readOnly() && !e.rotational() && !e.canCache() && !e.canFastZero());
        assertEquals(3, in.remaining());
        assertEquals(State.READY, h.state());
    }

    @Test
    void goAckWithoutInfoExportIsAViolation() {
        ClientHandshake h = atGo(3);
        serverSends(ack(NbdOption.GO));
        var f = failed(h.step(in));
        assertInstanceOf(ProtocolViolation.UnexpectedReply.class, ((HandshakeError.Violation) f.error()).violation());
    }

    @Test
    void infoExportOfWrongLengthIsAViolation() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, new byte[] {0, 0, 1}));
        assertInstanceOf(HandshakeError.Violation.class, failed(h.step(in)).error());
    }

    @Test
    void infoExportWithoutHasFlagsIsAViolation() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, infoExport(4096, 0)));
        assertInstanceOf(HandshakeError.Violation.class, failed(h.step(in)).error());
    }

    @Test
    void blockSizeThatBreaksTheSpecIsAViolation() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.INFO, infoBlockSize(3, 4096, 1 << 20)));
        assertInstanceOf(HandshakeError.Violation.class, failed(h.step(in)).error());
        assertEquals(null, ExportInfoReplies.checkBlockSizes(1, 512, 0xffff_ffffL));
        assertTrue(ExportInfoReplies.checkBlockSizes(4096, 512, 1 << 20).contains("preferred"));
        assertTrue(ExportInfoReplies.checkBlockSizes(512, 4096, 1024).contains("maximum"));
        assertTrue(ExportInfoReplies.checkBlockSizes(1 << 17, 1 << 17, 1 << 20).contains("minimum"));
    }

    @Test
    void goForUnknownExportAbortsAndReportsTheServersMessage() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.ERR_UNKNOWN, "no such export".getBytes()));
        assertEquals(option(NbdOption.ABORT, ""), hex(h.step(in)));
        var f = failed(h.step(in));
        assertEquals(new HandshakeError.OptionRejected(NbdOption.GO, OptionReplyType.ERR_UNKNOWN.code(), "no such export"),
                f.error());
        assertEquals("NBD_OPT_GO: export not found on the server (NBD_REP_ERR_UNKNOWN): no such export",
                f.error().message());
    }

    @Test
    void goRefusedForTlsSaysSo() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.ERR_TLS_REQD, new byte[0]));
        h.step(in);
        assertTrue(failed(h.step(in)).error().message().contains("requires TLS"));
    }

    @Test
    void goUnsupportedFallsBackToExportNameWithZeroes() {
        ClientHandshake h = atGo(1);
        serverSends(reply(NbdOption.GO, OptionReplyType.ERR_UNSUP, new byte[0]));
        assertEquals(option(NbdOption.EXPORT_NAME, "6469736b"), hex(h.step(in)));
        serverSends(ByteBuffer.allocate(10).putLong(8192).putShort((short) 3));
        assertEquals(new HandshakeAction.NeedMore(134), h.step(in));
        serverSends(ByteBuffer.allocate(124).position(124));
        var ready = assertInstanceOf(HandshakeAction.Ready.class, h.step(in));
        assertEquals(new ExportInfo("disk", null, 8192, 3, 1, 4096, 1 << 25, false, TransmissionMode.STRUCTURED),
                ready.export());
        assertTrue(ready.export().readOnly());
        assertEquals(0, in.remaining());
    }

    @Test
    void exportNameReplyWithoutZeroesWhenNoZeroesNegotiated() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.ERR_UNSUP, new byte[0]));
        h.step(in);
        serverSends(ByteBuffer.allocate(10).putLong(8192).putShort((short) 1));
        assertEquals(8192, assertInstanceOf(HandshakeAction.Ready.class, h.step(in)).export().size());
    }

    @Test
    void goUnsupportedAfterExtendedHeadersIsAViolation() {
        ClientHandshake h = afterFlags(HandshakeConfig.go("disk"), 3);
        h.step(in);
        serverSends(ack(NbdOption.EXTENDED_HEADERS));
        h.step(in);
        serverSends(reply(NbdOption.GO, OptionReplyType.ERR_UNSUP, new byte[0]));
        assertInstanceOf(HandshakeError.Violation.class, failed(h.step(in)).error());
    }

    @Test
    void serverClosingDuringExportNameExplainsTheLikelyCause() {
        ClientHandshake h = atGo(3);
        serverSends(reply(NbdOption.GO, OptionReplyType.ERR_UNSUP, new byte[0]));
        h.step(in);
        var f = failed(h.endOfStream());
        assertEquals(new HandshakeError.ServerClosed(State.RECV_EXPORT_NAME_REPLY), f.error());
        assertTrue(f.error().message().contains("export does not exist"));
    }

    // ---- option reply framing ----

    @Test
    void optionReplyArrivingInPiecesAsksForExactlyTheMissingBytes() {
        ClientHandshake h = atGo(3);
        ByteBuffer r = reply(NbdOption.GO, OptionReplyType.INFO, infoExport(512, 1)).flip();
        byte[] all = new byte[r.remaining()];
        r.get(all);
        in.compact().put(all, 0, 10).flip();
        assertEquals(new HandshakeAction.NeedMore(20), h.step(in));
        in.compact().put(all, 10, 15).flip();
        assertEquals(new HandshakeAction.NeedMore(32), h.step(in));
        in.compact().put(all, 25, all.length - 25).flip();
        assertEquals(new HandshakeAction.NeedMore(20), h.step(in));
        assertEquals(0, in.remaining());
    }

    @Test
    void optionReplyWithBadMagicIsAViolation() {
        ClientHandshake h = atGo(3);
        serverSends(ByteBuffer.allocate(20).putLong(NbdMagic.IHAVEOPT).putInt(7).putInt(1).putInt(0));
        var v = ((HandshakeError.Violation) failed(h.step(in)).error()).violation();
        assertInstanceOf(ProtocolViolation.BadMagic.class, v);
    }

    @Test
    void optionReplyForAnotherOptionIsAViolation() {
        ClientHandshake h = atGo(3);
        serverSends(ack(NbdOption.LIST));
        assertInstanceOf(HandshakeError.Violation.class, failed(h.step(in)).error());
    }

    @Test
    void oversizeOptionReplyIsRefusedBeforeBuffering() {
        ClientHandshake h = atGo(3);
        serverSends(ByteBuffer.allocate(20).putLong(NbdMagic.OPTION_REPLY).putInt(7).putInt(3).putInt(0x7fff_ffff));
        var v = ((HandshakeError.Violation) failed(h.step(in)).error()).violation();
        assertInstanceOf(ProtocolViolation.OversizeLength.class, v);
    }

    // ---- LIST / ABORT ----

    private static byte[] server(String name, String details) {
        byte[] n = name.getBytes();
        byte[] d = details.getBytes();
        return ByteBuffer.allocate(4 + n.length + d.length).putInt(n.length).put(n).put(d).array();
    }

    @Test
    void listCollectsExportsThenAbortsAndFinishesOnAck() {
        ClientHandshake h = afterFlags(HandshakeConfig.list(), 3);
        assertEquals(option(NbdOption.LIST, ""), hex(h.step(in)));
        serverSends(reply(NbdOption.LIST, OptionReplyType.SERVER, server("a", "")));
        serverSends(reply(NbdOption.LIST, OptionReplyType.SERVER, server("b", "second disk")));
        serverSends(ack(NbdOption.LIST));
        assertEquals(option(NbdOption.ABORT, ""), hex(h.step(in)));
        assertEquals(State.RECV_ABORT_REPLY, h.state());
        serverSends(ack(NbdOption.ABORT));
        assertEquals(new HandshakeAction.Listed(List.of(new ExportEntry("a", null), new ExportEntry("b", "second disk"))),
                h.step(in));
    }

    @Test
    void listFinishesWhenTheServerClosesInsteadOfAcknowledgingAbort() {
        ClientHandshake h = afterFlags(HandshakeConfig.list(), 3);
        h.step(in);
        serverSends(ack(NbdOption.LIST));
        h.step(in);
        assertEquals(new HandshakeAction.Listed(List.of()), h.endOfStream());
    }

    @Test
    void listRefusedByPolicyFails() {
        ClientHandshake h = afterFlags(HandshakeConfig.list(), 3);
        h.step(in);
        serverSends(reply(NbdOption.LIST, OptionReplyType.ERR_POLICY, new byte[0]));
        assertEquals(option(NbdOption.ABORT, ""), hex(h.step(in)));
        var e = (HandshakeError.OptionRejected) failed(h.step(in)).error();
        assertEquals(OptionReplyType.ERR_POLICY.code(), e.replyType());
        assertNull(e.serverMessage());
    }

    @Test
    void serverReplyWithNameLongerThanItselfIsAViolation() {
        ClientHandshake h = afterFlags(HandshakeConfig.list(), 3);
        h.step(in);
        serverSends(reply(NbdOption.LIST, OptionReplyType.SERVER, ByteBuffer.allocate(6).putInt(100).array()));
        assertInstanceOf(HandshakeError.Violation.class, failed(h.step(in)).error());
    }

    @Test
    void failedStateIsTerminal() {
        ClientHandshake h = new ClientHandshake(HandshakeConfig.go("x"));
        h.endOfStream();
        assertEquals(State.FAILED, h.state());
        assertInstanceOf(HandshakeAction.Failed.class, h.step(in));
        assertInstanceOf(HandshakeAction.Failed.class, h.endOfStream());
    }
}
