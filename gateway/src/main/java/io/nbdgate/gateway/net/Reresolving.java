package io.nbdgate.gateway.net;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A server's address for connection attempts, its host name looked up again for each one: a server that moved
 * (a new IP behind the same name) is found by the reconnects. Lookups block, and the caller is an event loop,
 * so each {@link #get} answers with the newest lookup done and starts the next one off the loop; the JVM keeps
 * answers for 30 s (networkaddress.cache.ttl). Literal addresses, unix and vsock ones are returned as they are.
 */
public final class Reresolving implements Supplier<SocketAddress> {
    private static final Logger LOG = LoggerFactory.getLogger(Reresolving.class);

    private final String host;
    private final int port;
    private final AtomicBoolean looking = new AtomicBoolean();
    private volatile InetSocketAddress last;

    private Reresolving(InetSocketAddress first) {
        this.host = first.getHostString();
        this.port = first.getPort();
        this.last = first;
    }

    /** {@code address} as resolved at attach time, looked up again from here on if it came from a host name. */
    public static Supplier<SocketAddress> of(SocketAddress address) {
        if (address instanceof InetSocketAddress i && i.getAddress() != null && !isLiteral(i)) {
            return new Reresolving(i);
        }
        return () -> address;
    }

    private static boolean isLiteral(InetSocketAddress i) {
        String h = i.getHostString();
        return h.equals(i.getAddress().getHostAddress()) || h.indexOf(':') >= 0
                || h.chars().allMatch(c -> Character.isDigit(c) || c == '.');
    }

    @Override
    public SocketAddress get() {
        InetSocketAddress now = last;
        if (looking.compareAndSet(false, true)) {
            Thread.ofVirtual().name("resolve-" + host).start(() -> {
                try {
                    InetSocketAddress next = new InetSocketAddress(InetAddress.getByName(host), port);
                    if (!next.getAddress().equals(last.getAddress())) {
                        LOG.info("{} now resolves to {} (was {}); the next connection attempt goes there", host,
                                next.getAddress().getHostAddress(), last.getAddress().getHostAddress());
                    }
                    last = next;
                } catch (UnknownHostException e) {
                    LOG.warn("cannot resolve {} now; connecting to {} as before", host,
                            last.getAddress().getHostAddress());
                } finally {
                    looking.set(false);
                }
            });
        }
        return now;
    }
}
