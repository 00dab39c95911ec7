package io.nbdgate.gateway.link;

import io.nbdgate.gateway.tls.KernelKeys;
import io.nbdgate.gateway.tls.KernelTls;
import io.nbdgate.gateway.tls.TlsDescription;
import io.nbdgate.gateway.tls.TlsException;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.LongAdder;
import org.bouncycastle.tls.AlertDescription;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A link whose records the kernel encrypts and decrypts (kernel TLS). Its one job after the handshake: records
 * other than application data. The kernel does not hand such a record to a receive without room for control
 * messages (our RECVs have none); the receive fails with EIO and the record stays at the head of the stream.
 * This reads it with recvmsg, acts on it (NewSessionTicket: nothing; KeyUpdate: new keys, answered if asked;
 * alert: the link ends), then posts the interrupted receive again, unchanged; a receive of reply headers is
 * chosen afresh by the reply pipeline instead.
 */
final class LinkTls {
    private static final Logger LOG = LoggerFactory.getLogger(LinkTls.class);
    private static final int ALERT = 21, HANDSHAKE = 22;
    private static final int NEW_SESSION_TICKET = 4, KEY_UPDATE = 24, HELLO_REQUEST = 0;
    private static final int MAX_RECORD = (1 << 14) + 256;

    private final Link link;
    private final KernelKeys keys;
    final TlsDescription description;
    private final MemorySegment record;
    private final MemorySegment control;
    /** Alerts received on kernel TLS links, process-wide (tests). */
    static final LongAdder ALERTS = new LongAdder();

    private long controlRecords;

    // The receive in flight, as it was posted: one at a time on a TLS link.
    private byte sqeFlags;
    private short recvFlags;
    private long addr;
    private int len;
    private int msgFlags;
    private int bufIndex;
    private short data;

    LinkTls(Link link, Arena arena, KernelKeys keys, TlsDescription description) {
        this.link = link;
        this.keys = keys;
        this.description = description;
        this.record = arena.allocate(MAX_RECORD, 8);
        this.control = arena.allocate(64, 8);
    }

    /** Control records handled so far (tickets, key updates). */
    long controlRecords() {
        return controlRecords;
    }

    void remember(byte sqeFlags, short recvFlags, long addr, int len, int msgFlags, int bufIndex, short data) {
        this.sqeFlags = sqeFlags;
        this.recvFlags = recvFlags;
        this.addr = addr;
        this.len = len;
        this.msgFlags = msgFlags;
        this.bufIndex = bufIndex;
        this.data = data;
    }

    /**
     * Whether an EIO of a receive of {@code kind} means a TLS control record, not data; if so it is read and
     * the same receive posted again (or the link ended).
     */
    boolean controlRecordMet(int kind) {
        boolean receive = kind == OpKind.HS_RECV || kind == OpKind.RX_HEADER || kind == OpKind.RX_DATA;
        LinkState s = link.state();
        if (!receive || (s != LinkState.HANDSHAKE && s != LinkState.READY)) {
            return false;
        }
        onReceiveEio(kind);
        return true;
    }

    /**
     * A receive ended with EIO: reads the control record in its way and posts the receive again. False if the
     * link failed instead (an alert, or EIO that was no control record).
     */
    private boolean onReceiveEio(int kind) {
        long[] controlLen = new long[1];
        long n = LinuxCalls.recvmsg(link.fd, record, control, LinuxCalls.MSG_DONTWAIT, controlLen);
        if (n < 0) {
            link.fail("TLS receive failed: " + Errno.describe((int) -n));
            return false;
        }
        int type = recordType(controlLen[0]);
        if (type == ALERT) {
            ALERTS.increment();
            int description = n >= 2 ? record.get(ValueLayout.JAVA_BYTE, 1) & 0xff : -1;
            link.fail(description == AlertDescription.close_notify ? "the server closed the TLS connection"
                    : "TLS alert from the server: " + AlertDescription.getText((short) description));
            return false;
        }
        if (type != HANDSHAKE) {
            link.fail("TLS receive failed: EIO (record type " + type + ")");
            return false;
        }
        try {
            handshakeMessages((int) n);
        } catch (TlsException | IOException e) {
            link.fail("TLS key update failed: " + e.getMessage());
            return false;
        }
        controlRecords++;
        if (kind == OpKind.RX_HEADER) {
            // A READ that came meanwhile may not be served by the receive that met the record (a batching one):
            // the reply pipeline chooses the next receive afresh.
            link.replies.resumeAfterControlRecord();
            return true;
        }
        link.count(link.sqes.recv(sqeFlags, recvFlags, link.fd, addr, len, msgFlags, bufIndex, data));
        return true;
    }

    /** The record type from the TLS_GET_RECORD_TYPE control message, or -1. */
    private int recordType(long controlLen) {
        if (controlLen < 17) {
            return -1;
        }
        int level = control.get(ValueLayout.JAVA_INT, 8);
        int type = control.get(ValueLayout.JAVA_INT, 12);
        return level == LinuxCalls.SOL_TLS && type == LinuxCalls.TLS_GET_RECORD_TYPE
                ? control.get(ValueLayout.JAVA_BYTE, 16) & 0xff : -1;
    }

    private void handshakeMessages(int n) throws IOException {
        int at = 0;
        while (at + 4 <= n) {
            int msgType = record.get(ValueLayout.JAVA_BYTE, at) & 0xff;
            int length = (record.get(ValueLayout.JAVA_BYTE, at + 1) & 0xff) << 16
                    | (record.get(ValueLayout.JAVA_BYTE, at + 2) & 0xff) << 8 | record.get(ValueLayout.JAVA_BYTE, at + 3) & 0xff;
            switch (msgType) {
                case NEW_SESSION_TICKET -> LOG.debug("{}: TLS session ticket ignored (no resumption)", link.peer);
                case KEY_UPDATE -> keyUpdate(length > 0 && record.get(ValueLayout.JAVA_BYTE, at + 4) == 1);
                case HELLO_REQUEST -> LOG.debug("{}: TLS 1.2 renegotiation request ignored", link.peer);
                default -> throw new TlsException("unexpected TLS handshake message " + msgType + " after the handshake");
            }
            at += 4 + length;
        }
    }

    /** RFC 8446 4.6.3: new receive keys; when asked, our own KeyUpdate under the old send keys, then new ones. */
    private void keyUpdate(boolean requested) throws IOException {
        if (!keys.tls13()) {
            throw new TlsException("KeyUpdate on a TLS 1.2 connection");
        }
        KernelTls.rekeyRx(link.fd, keys.nextRx());
        if (requested) {
            MemorySegment msg = record.asSlice(0, 5);
            msg.set(ValueLayout.JAVA_BYTE, 0, (byte) KEY_UPDATE); // then a 24-bit big-endian length of 1
            msg.set(ValueLayout.JAVA_BYTE, 1, (byte) 0);
            msg.set(ValueLayout.JAVA_BYTE, 2, (byte) 0);
            msg.set(ValueLayout.JAVA_BYTE, 3, (byte) 1);
            msg.set(ValueLayout.JAVA_BYTE, 4, (byte) 0); // update_not_requested
            long sent = LinuxCalls.sendmsg(link.fd, msg, LinuxCalls.SOL_TLS, LinuxCalls.TLS_SET_RECORD_TYPE,
                    new byte[] {HANDSHAKE}, Link.MSG_NOSIGNAL);
            if (sent != 5) {
                throw new TlsException("our KeyUpdate was not sent: " + (sent < 0 ? Errno.describe((int) -sent) : sent));
            }
            KernelTls.rekeyTx(link.fd, keys.nextTx());
        }
        LOG.info("{}: TLS keys updated{}", link.peer, requested ? " in both directions" : " for receiving");
    }
}
