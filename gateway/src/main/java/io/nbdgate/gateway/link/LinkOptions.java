package io.nbdgate.gateway.link;

import io.nbdgate.gateway.tls.ClientCredentials;
import java.time.Duration;

/**
 * How a link behaves, the same for every link of a device.
 *
 * @param connectTimeout connect and handshake together
 * @param ioTimeout      a request unanswered this long ends the link (not the request)
 * @param zeroFd         an open /dev/zero: zeroes for holes in replies to zero-copy READs
 * @param sendZcMin      payloads in fixed buffers of at least this many bytes go out with SEND_ZC, smaller ones
 *                       with SEND from the same buffer (the kernel copies them)
 * @param stageMax       READs of at most this many bytes may be received together with reply headers and then
 *                       copied into place; 0: never
 * @param keepalive      TCP keepalive and TCP_USER_TIMEOUT, so a dead peer is noticed while the link is idle
 * @param tls            TLS after NBD_OPT_STARTTLS with these credentials, records in the kernel; null: plaintext
 */
public record LinkOptions(Duration connectTimeout, Duration ioTimeout, int zeroFd, int sendZcMin, int stageMax,
                          Keepalive keepalive, ClientCredentials tls) {

    public LinkOptions(Duration connectTimeout, Duration ioTimeout, int zeroFd, int sendZcMin, int stageMax,
                       Keepalive keepalive) {
        this(connectTimeout, ioTimeout, zeroFd, sendZcMin, stageMax, keepalive, null);
    }

    /**
     * @param idle        idle time before the first probe
     * @param interval    between probes
     * @param count       unanswered probes before the peer is declared dead
     * @param userTimeout sent data unacknowledged this long ends the connection (TCP_USER_TIMEOUT)
     */
    public record Keepalive(Duration idle, Duration interval, int count, Duration userTimeout) {
        public static final Keepalive DEFAULT = new Keepalive(Duration.ofSeconds(10), Duration.ofSeconds(5), 3,
                Duration.ofSeconds(30));
    }
}
