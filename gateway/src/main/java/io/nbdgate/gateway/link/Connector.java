package io.nbdgate.gateway.link;

import io.nbdgate.gateway.net.VsockAddress;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The CONNECTING state of a link: SOCKET, the socket's options (TCP_NODELAY through the ring, which also tells
 * whether socket uring_cmds work here; keepalive and TCP_USER_TIMEOUT), CONNECT, then the handshake.
 */
final class Connector {
    private static final Logger LOG = LoggerFactory.getLogger(Connector.class);
    private static final int SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;

    private final Link link;
    private final MemorySegment sockaddr;

    Connector(Link link, MemorySegment sockaddr) {
        this.link = link;
        this.sockaddr = sockaddr;
    }

    void start() {
        link.count(link.sqes.socket(SocketAddresses.family(link.address), SOCK_STREAM | SOCK_CLOEXEC,
                OpKind.data(OpKind.SOCKET, 0)));
    }

    void onSocket(int res) {
        if (res < 0) {
            link.fail("cannot create a socket: " + Errno.describe(-res));
            return;
        }
        link.fd = res;
        if (link.state != LinkState.CONNECTING) {
            return; // timed out meanwhile: draining closes it
        }
        if (link.address instanceof VsockAddress) {
            vsockBuffer();
        }
        if (!(link.address instanceof InetSocketAddress)) {
            connect(); // unix and vsock: no TCP options
            return;
        }
        keepalive();
        link.count(link.sqes.setsockopt((byte) 0, link.fd, LinuxCalls.IPPROTO_TCP, LinuxCalls.TCP_NODELAY,
                link.one.address(), OpKind.data(OpKind.SOCKOPT, 0)));
    }

    /**
     * vsock refuses (ENOMEM) a receive that waits for more bytes than its buffer holds (256 KiB by default), and a
     * READ's data is received whole into its buffer: give the socket room for the largest. Maximum first, then
     * the size, as the kernel checks the one against the other.
     */
    private void vsockBuffer() {
        long[][] settings = {{LinuxCalls.SO_VM_SOCKETS_BUFFER_MAX_SIZE, VSOCK_BUFFER},
                {LinuxCalls.SO_VM_SOCKETS_BUFFER_SIZE, VSOCK_BUFFER}};
        for (long[] s : settings) {
            int rc = LinuxCalls.setsockoptLong(link.fd, VsockAddress.AF_VSOCK, (int) s[0], s[1]);
            if (rc < 0) {
                LOG.warn("{}: vsock buffer size not set ({}): large reads may fail", link.peer, Errno.describe(-rc));
            }
        }
    }

    /** Above the largest payload plus headers and the replies received with it (a staged batch). */
    private static final long VSOCK_BUFFER = 8L << 20;

    /** TCP keepalive and TCP_USER_TIMEOUT: a dead peer is noticed while idle, and sent data cannot wait forever. */
    private void keepalive() {
        LinkOptions.Keepalive k = link.options.keepalive();
        if (k == null) {
            return;
        }
        int[][] settings = {
                {LinuxCalls.SOL_SOCKET, LinuxCalls.SO_KEEPALIVE, 1},
                {LinuxCalls.IPPROTO_TCP, LinuxCalls.TCP_KEEPIDLE, seconds(k.idle())},
                {LinuxCalls.IPPROTO_TCP, LinuxCalls.TCP_KEEPINTVL, seconds(k.interval())},
                {LinuxCalls.IPPROTO_TCP, LinuxCalls.TCP_KEEPCNT, Math.max(1, k.count())},
                {LinuxCalls.IPPROTO_TCP, LinuxCalls.TCP_USER_TIMEOUT,
                        (int) Math.min(Integer.MAX_VALUE, k.userTimeout().toMillis())}};
        for (int[] s : settings) {
            int rc = LinuxCalls.setsockoptInt(link.fd, s[0], s[1], s[2]);
            if (rc < 0) {
                LOG.debug("{}: socket option {}/{} not set: {}", link.peer, s[0], s[1],
                        Errno.describe(-rc));
            }
        }
    }

    private static int seconds(Duration d) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, d.toSeconds()));
    }

    void onSockopt(int res) {
        link.socketCommands = res >= 0;
        if (res < 0) {
            LOG.warn("{}: TCP_NODELAY not set ({}); small requests may wait for Nagle", link.peer,
                    Errno.describe(-res));
        }
        if (link.state == LinkState.CONNECTING) {
            connect();
        }
    }

    private void connect() {
        link.count(link.sqes.connect(link.fd, sockaddr.address(), sockaddr.byteSize(), OpKind.data(OpKind.CONNECT, 0)));
    }

    void onConnect(int res) {
        if (link.state != LinkState.CONNECTING) {
            return;
        }
        if (res == -Errno.EALREADY) {
            // io_uring retries an in-progress connect when the socket wakes it; if the socket is still connecting
            // then (vsock and TCP can wake early), the retry answers EALREADY: wait until it is writable instead.
            LOG.debug("{}: connect still in progress, waiting for it", link.peer);
            link.count(link.sqes.poll(link.fd, LinuxCalls.POLLOUT, OpKind.data(OpKind.CONNECT_WAIT, 0)));
            return;
        }
        connected(res);
    }

    /** The socket became writable (or failed) after an EALREADY: SO_ERROR tells how the connect ended. */
    void onConnectWait(int res) {
        if (link.state != LinkState.CONNECTING) {
            return;
        }
        connected(res < 0 ? res : LinuxCalls.socketError(link.fd));
    }

    private void connected(int res) {
        if (res != 0) { // minus errno from a completion, or a positive SO_ERROR
            link.fail("cannot connect to " + link.peer + ": " + Errno.describe(Math.abs(res)));
            return;
        }
        link.state = LinkState.HANDSHAKE;
        link.handshake.start();
    }
}
