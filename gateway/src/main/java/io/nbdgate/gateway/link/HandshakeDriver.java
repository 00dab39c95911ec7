package io.nbdgate.gateway.link;

import io.nbdgate.protocol.client.ClientHandshake;
import io.nbdgate.protocol.client.HandshakeAction;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.Errno;
import java.nio.ByteBuffer;

/**
 * Runs the protocol module's client handshake over the link's ring: its Send actions become SENDs from the
 * link's header buffer, its NeedMore actions RECVs into the reply buffer, one at a time.
 */
final class HandshakeDriver {
    private final Link link;
    private final HandshakeConfig config;
    private ClientHandshake handshake;
    private int runLength;
    private int runSent;

    HandshakeDriver(Link link, HandshakeConfig config) {
        this.link = link;
        this.config = config;
    }

    void start() {
        handshake = new ClientHandshake(config);
        step();
    }

    private void step() {
        HandshakeAction a = handshake.step(link.rx);
        switch (a) {
            case HandshakeAction.Send s -> send(s.bytes());
            case HandshakeAction.NeedMore m -> receiveAtLeast(m.bytes());
            case HandshakeAction.Ready r -> link.handshakeDone(r.export());
            case HandshakeAction.Failed f -> link.fail("handshake with " + link.peer + " failed: "
                    + f.error().message());
            case HandshakeAction.UpgradeToTls t -> link.fail("the server requires TLS, which this version does not speak");
            case HandshakeAction.Listed l -> link.fail("unexpected export list in an attach handshake");
        }
    }

    private void send(ByteBuffer bytes) {
        if (bytes.remaining() > link.tx.capacity()) {
            link.fail("handshake message of " + bytes.remaining() + " bytes is too large");
            return;
        }
        link.tx.clear();
        link.tx.put(bytes);
        runLength = link.tx.position();
        runSent = 0;
        sendRest();
    }

    private void sendRest() {
        link.count(link.sqes.send((byte) 0, link.fd, link.txSeg.address() + runSent, runLength - runSent,
                Link.MSG_NOSIGNAL, -1, Link.data(Link.K_HS_SEND, 0)));
    }

    private void receiveAtLeast(int needed) {
        ByteBuffer rx = link.rx;
        if (needed > rx.capacity()) {
            link.fail("server message of " + needed + " bytes exceeds the " + rx.capacity() + "-byte limit");
            return;
        }
        if (rx.position() + needed > rx.capacity()) {
            rx.compact().flip();
        }
        int want = needed - rx.remaining();
        link.count(link.sqes.recv((byte) 0, (short) 0, link.fd, link.rxSeg.address() + rx.limit(), want,
                Link.MSG_WAITALL, -1, Link.data(Link.K_HS_RECV, 0)));
    }

    void onSent(int res) {
        if (link.state() != LinkState.HANDSHAKE) {
            return;
        }
        if (res <= 0) {
            link.fail("handshake send failed: " + (res == 0 ? "connection closed" : Errno.describe(-res)));
        } else if ((runSent += res) < runLength) {
            sendRest();
        } else {
            step();
        }
    }

    void onReceived(int res) {
        if (link.state() != LinkState.HANDSHAKE) {
            return;
        }
        if (res < 0) {
            link.fail("handshake receive failed: " + Errno.describe(-res));
        } else if (res == 0) {
            HandshakeAction end = handshake.endOfStream();
            link.fail("the server closed the connection during the handshake"
                    + (end instanceof HandshakeAction.Failed f ? ": " + f.error().message() : ""));
        } else {
            link.rx.limit(link.rx.limit() + res);
            step();
        }
    }
}
