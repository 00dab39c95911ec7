package io.nbdgate.gateway.device;

import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.StructuredReplies;
import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.link.SocketAddresses;
import io.nbdgate.gateway.nbd.client.InvalidNbdUriException;
import io.nbdgate.gateway.nbd.client.NbdUri;
import io.nbdgate.gateway.net.VsockAddress;
import io.nbdgate.gateway.tls.ClientCredentials;
import io.nbdgate.gateway.tls.TlsException;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.ublk.BufferMode;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;

/** What to attach and how; {@code queues} 0 means auto, {@code deviceId} -1 lets the kernel choose. */
public record DeviceOptions(String name, SocketAddress address, String exportName, int queues, int depth,
                            ZeroCopy zeroCopy, boolean readOnly, int deviceId, Duration connectTimeout,
                            Duration ioTimeout, BufferMode forcedMode, int sendZcMin, int stageReadsMax,
                            boolean batchIo, StructuredReplies structuredReplies, Duration reconnectTimeout,
                            LinkOptions.Keepalive keepalive, boolean recovery,
                            boolean autoResize, ClientCredentials tls) {

    public DeviceOptions(String name, SocketAddress address, String exportName, int queues, int depth, ZeroCopy zeroCopy,
                         boolean readOnly, int deviceId, Duration connectTimeout, Duration ioTimeout,
                         BufferMode forcedMode, int sendZcMin, int stageReadsMax) {
        this(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout, ioTimeout,
                forcedMode, sendZcMin, stageReadsMax, true, StructuredReplies.AUTO,
                DeviceConfig.DEFAULT_RECONNECT_TIMEOUT, DeviceConfig.defaultKeepalive(ioTimeout), true, false, null);
    }

    public DeviceOptions(String name, SocketAddress address, String exportName, int queues, int depth, ZeroCopy zeroCopy,
                         boolean readOnly, int deviceId, Duration connectTimeout, Duration ioTimeout, BufferMode forcedMode) {
        this(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout, ioTimeout,
                forcedMode, DeviceConfig.DEFAULT_SEND_ZC_MIN, DeviceConfig.DEFAULT_STAGE_READS_MAX);
    }

    /** The same options with an exact buffer mode instead of the zero-copy policy (tests, benchmarks). */
    public DeviceOptions withMode(BufferMode mode) {
        return new DeviceOptions(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, mode, sendZcMin, stageReadsMax, batchIo, structuredReplies, reconnectTimeout, keepalive, recovery, autoResize, tls);
    }

    /** The same options with batch commands allowed or not (tests, benchmarks). */
    public DeviceOptions withBatchIo(boolean b) {
        return new DeviceOptions(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, b, structuredReplies, reconnectTimeout, keepalive, recovery, autoResize, tls);
    }

    /** The same options with another structured-replies setting (tests, benchmarks). */
    public DeviceOptions withStructuredReplies(StructuredReplies s) {
        return new DeviceOptions(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, batchIo, s, reconnectTimeout, keepalive, recovery, autoResize, tls);
    }

    /** The same options under another name. */
    public DeviceOptions withName(String n) {
        return new DeviceOptions(n, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, batchIo, structuredReplies, reconnectTimeout, keepalive,
                recovery, autoResize, tls);
    }

    /** The same options with the queue count and depth of an existing device (a take-over). */
    public DeviceOptions withGeometry(int q, int d) {
        return new DeviceOptions(name, address, exportName, q, d, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, batchIo, structuredReplies, reconnectTimeout, keepalive,
                recovery, autoResize, tls);
    }

    /** The same options with devices created recoverable or not. */
    public DeviceOptions withRecovery(boolean r) {
        return new DeviceOptions(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, batchIo, structuredReplies, reconnectTimeout, keepalive, r, autoResize, tls);
    }

    /** The same options with another reconnect timeout; null: requests wait for a connection forever. */
    public DeviceOptions withReconnectTimeout(Duration d) {
        return new DeviceOptions(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, batchIo, structuredReplies, d, keepalive, recovery, autoResize, tls);
    }

    /** The same options over TLS with {@code credentials} (null: plaintext). */
    public DeviceOptions withTls(ClientCredentials credentials) {
        return new DeviceOptions(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, batchIo, structuredReplies, reconnectTimeout, keepalive,
                recovery, autoResize, credentials);
    }

    /** The same options with other keepalive settings. */
    public DeviceOptions withKeepalive(LinkOptions.Keepalive k) {
        return new DeviceOptions(name, address, exportName, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout,
                ioTimeout, forcedMode, sendZcMin, stageReadsMax, batchIo, structuredReplies, reconnectTimeout, k, recovery, autoResize, tls);
    }

    /** The handshake every connection of the device makes (and {@code resize} makes to ask the size again). */
    public HandshakeConfig handshake() {
        boolean rich = asksForStructuredReplies();
        return new HandshakeConfig(exportName, HandshakeConfig.Goal.GO, tls != null, rich, rich);
    }

    /**
     * Whether the handshake asks for structured replies (and extended headers): {@code auto} only for a server
     * on another host. On this host (loopback, one of its addresses, a unix socket) holes save no wire, and
     * the server's extra work per read reply is work on our own CPUs.
     */
    public boolean asksForStructuredReplies() {
        return switch (structuredReplies) {
            case ON -> true;
            case OFF -> false;
            case AUTO -> !(address instanceof UnixDomainSocketAddress) && !SocketAddresses.onThisHost(address);
        };
    }

    /** Parses the device's URI and resolves its host (blocking DNS: call it off the event loops). */
    public static DeviceOptions from(DeviceConfig c) throws NbdConnectionException {
        NbdUri uri;
        try {
            uri = NbdUri.parse(c.uri()).withTls(c.tls());
        } catch (InvalidNbdUriException e) {
            throw new NbdConnectionException(e.getMessage());
        }
        ClientCredentials tls = null;
        if (uri.tls()) {
            try {
                tls = ClientCredentials.load(uri.tlsSettings(), uri.tlsHostname()); // bad files fail before connecting
            } catch (TlsException e) {
                throw new NbdConnectionException("TLS for " + uri + ": " + e.getMessage());
            }
        }
        SocketAddress address;
        if (uri.unixSocket()) {
            address = UnixDomainSocketAddress.of(uri.socketPath());
        } else if (uri.vsock()) {
            address = new VsockAddress(Integer.parseUnsignedInt(uri.host()), uri.port());
        } else {
            try {
                address = new InetSocketAddress(InetAddress.getByName(uri.host()), uri.port());
            } catch (UnknownHostException e) {
                throw new NbdConnectionException("cannot resolve host '" + uri.host() + "'");
            }
        }
        return new DeviceOptions(c.name(), address, uri.exportName(), c.queues(), c.depth(), c.zeroCopy(), c.readOnly(),
                c.deviceId(), c.connectTimeout(), c.ioTimeout(), null, c.sendZcMin(), c.stageReadsMax(),
                c.batchIo(), c.structuredReplies(), c.reconnectTimeout(), c.keepalive(), c.recovery(),
                c.autoResize(), tls);
    }
}
