package io.nbdgate.gateway.link;

import io.nbdgate.gateway.tls.KernelKeys;
import io.nbdgate.gateway.tls.KernelTls;
import io.nbdgate.gateway.tls.TlsEngine;
import io.nbdgate.gateway.tls.TlsDescription;
import io.nbdgate.gateway.tls.TlsException;
import io.nbdgate.gateway.tls.TlsRelay;
import io.nbdgate.protocol.client.ClientHandshake;
import io.nbdgate.protocol.client.HandshakeAction;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.Errno;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the protocol module's client handshake over the link's ring: its Send actions become SENDs from the
 * link's header buffer, its NeedMore actions RECVs into the reply buffer, one at a time. After
 * NBD_OPT_STARTTLS it runs the TLS handshake the same way, one record at a time so that no byte past the
 * server's last handshake record is taken, then hands the keys to the kernel: the rest of the NBD handshake
 * and all transmission are plaintext to us, ciphertext on the wire.
 */
final class HandshakeDriver {
    private static final Logger LOG = LoggerFactory.getLogger(HandshakeDriver.class);
    private static final int RECORD_HEADER = 5;

    private final Link link;
    private final HandshakeConfig config;
    private ClientHandshake handshake;
    private int runLength;
    private int runSent;
    /** The TLS handshake in progress; null before STARTTLS and once the kernel has the keys. */
    private TlsEngine tls;

    HandshakeDriver(Link link, HandshakeConfig config) {
        this.link = link;
        this.config = config;
    }

    void start() {
        handshake = new ClientHandshake(config);
        tls = null;
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
            case HandshakeAction.UpgradeToTls t -> startTls();
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
                Link.MSG_NOSIGNAL, -1, OpKind.data(OpKind.HS_SEND, 0)));
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
        link.recv((byte) 0, (short) 0, link.rxSeg.address() + rx.limit(), want, Link.MSG_WAITALL, -1,
                OpKind.data(OpKind.HS_RECV, 0));
    }

    void onSent(int res) {
        if (link.state() != LinkState.HANDSHAKE) {
            return;
        }
        if (res <= 0) {
            link.fail("handshake send failed: " + (res == 0 ? "connection closed" : Errno.describe(-res)));
        } else if ((runSent += res) < runLength) {
            sendRest();
        } else if (tls != null) {
            tlsNext();
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
            if (tls != null) {
                TlsException why = tls.endOfStream();
                link.fail("TLS with " + link.peer + " failed: " + (why != null ? why.getMessage()
                        : "the server closed the connection during the TLS handshake"));
                return;
            }
            HandshakeAction end = handshake.endOfStream();
            link.fail("the server closed the connection during the handshake"
                    + (end instanceof HandshakeAction.Failed f ? ": " + f.error().message() : ""));
        } else {
            link.rx.limit(link.rx.limit() + res);
            if (tls != null) {
                tlsReceived();
            } else {
                step();
            }
        }
    }

    // ---------------------------------------------------------------- TLS

    private void startTls() {
        if (link.options.tls() == null) {
            link.fail("the server accepted a STARTTLS that was not asked for");
            return;
        }
        if (link.rx.hasRemaining()) {
            // Bytes between the STARTTLS reply and our ClientHello were injected in plaintext (CVE-2021-3716).
            link.fail("the server sent data in plaintext after accepting STARTTLS");
            return;
        }
        link.rx.clear().limit(0);
        var credentials = link.options.tls();
        boolean kernel = kernelTlsWanted();
        HandshakeCrypto.run(link, () -> TlsEngine.start(credentials, kernel), (engine, failure) -> {
            if (link.state() != LinkState.HANDSHAKE) {
                return; // the link failed or was closed meanwhile
            }
            if (failure != null) {
                tlsFailed(failure);
                return;
            }
            tls = engine;
            tlsNext();
        });
    }

    private void tlsFailed(Throwable failure) {
        link.fail("TLS with " + link.peer + " failed: " + (failure instanceof TlsException e ? e.getMessage()
                : failure.toString()));
    }

    /** -Dnbdgate.kernelTls=false keeps TLS in userspace even where the kernel could take it (comparisons). */
    private static boolean kernelTlsWanted() {
        return !"false".equals(System.getProperty("nbdgate.kernelTls"));
    }

    /** Sends what the TLS engine has for the server, else receives its next record, else hands over. */
    private void tlsNext() {
        if (tls.outputAvailable() > 0) {
            link.tx.clear();
            tls.takeOutput(link.tx);
            runLength = link.tx.position();
            runSent = 0;
            sendRest();
        } else if (tls.handshaking()) {
            receiveRecordPart();
        } else {
            tlsEstablished();
        }
    }

    /** The next record's 5-byte header, then exactly its body: never a byte past the record. */
    private void receiveRecordPart() {
        ByteBuffer rx = link.rx;
        int have = rx.limit();
        int want = have < RECORD_HEADER ? RECORD_HEADER : RECORD_HEADER + (rx.getShort(3) & 0xffff);
        if (want > rx.capacity()) {
            link.fail("TLS record of " + want + " bytes from " + link.peer);
            return;
        }
        if (have >= want) {
            tlsReceived();
            return;
        }
        link.recv((byte) 0, (short) 0, link.rxSeg.address() + have, want - have, Link.MSG_WAITALL, -1,
                OpKind.data(OpKind.HS_RECV, 0));
    }

    private void tlsReceived() {
        ByteBuffer rx = link.rx;
        int have = rx.limit();
        if (have < RECORD_HEADER || have < RECORD_HEADER + (rx.getShort(3) & 0xffff)) {
            receiveRecordPart();
            return;
        }
        byte[] record = new byte[have];
        rx.get(0, record);
        rx.clear().limit(0);
        TlsEngine engine = tls;
        HandshakeCrypto.run(link, () -> {
            engine.received(ByteBuffer.wrap(record));
            return engine;
        }, (done, failure) -> {
            if (link.state() != LinkState.HANDSHAKE || tls != engine) {
                return; // the link failed or was closed meanwhile
            }
            if (failure != null) {
                tlsFailed(failure);
                return;
            }
            tlsNext();
        });
    }

    /**
     * Our last handshake record has left: the kernel takes the record layer, or where it cannot, a
     * {@link TlsRelay} in userspace. Then the NBD handshake goes on in plaintext on the link's socket.
     */
    private void tlsEstablished() {
        String noKernel = !kernelTlsWanted() ? "kernel TLS is turned off (-Dnbdgate.kernelTls=false)"
                : !(link.address instanceof InetSocketAddress) ? "kernel TLS is for TCP connections only" : null;
        try {
            KernelKeys keys = null;
            if (noKernel == null) {
                try {
                    keys = tls.kernelKeys();
                } catch (TlsException e) {
                    noKernel = e.getMessage(); // a cipher the kernel has no implementation of
                }
            }
            if (noKernel == null) {
                noKernel = KernelTls.tryInstall(link.fd, keys);
            }
            TlsDescription description = tls.description();
            if (noKernel == null) {
                // From now on receives may meet control records.
                link.tls = new LinkTls(link, link.arena, keys, description);
                link.tlsStatus = "kernel " + description;
            } else {
                // The link speaks plaintext to the relay, which holds the server's socket from here on.
                link.relay = TlsRelay.start(link.fd, tls, link.peer);
                link.fd = link.relay.linkFd();
                link.socketCommands = false; // a unix socket: no socket commands through the ring
                link.tlsStatus = "userspace " + description;
                LOG.info("TLS with {} runs in userspace: {}", link.peer, noKernel);
            }
        } catch (TlsException e) {
            link.fail("TLS with " + link.peer + ": " + e.getMessage());
            return;
        }
        tls = null;
        handshake.tlsEstablished();
        step();
    }
}
