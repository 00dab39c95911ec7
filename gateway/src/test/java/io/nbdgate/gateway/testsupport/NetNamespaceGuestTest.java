package io.nbdgate.gateway.testsupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fault tests' test bed, proven on its own (in the guest: it needs root, veth, sch_netem, tcp_diag):
 * a server in a namespace is reachable, netem's delay and partitions are real, ss -K resets exactly one
 * connection, and a killed server comes back on its port.
 */
@Tag("ublk")
class NetNamespaceGuestTest {
    private static final byte[] NBD_GREETING = "NBDMAGICIHAVEOPT".getBytes(StandardCharsets.US_ASCII);

    @TempDir
    Path dir;

    @Test
    void namespaceDelayPartitionConnectionResetAndRestartAllWork() throws Exception {
        try (NetNamespace ns = NetNamespace.create();
             ExternalNbdServer server = ExternalNbdServer.nbdkit(ns, dir, List.of(), "memory", "8M")) {
            InetSocketAddress at = server.socketAddress();
            greeting(at, Duration.ofSeconds(30)).close();
            long plain = roundTripMillis(at);

            ns.netem(0, Duration.ofMillis(150), Duration.ZERO);
            long delayed = roundTripMillis(at);
            // netem on both ends: a SYN and its SYN-ACK are delayed 150 ms each.
            assertTrue(delayed >= 300, "connect took " + delayed + " ms with 2 x 150 ms of netem (plain: " + plain
                    + " ms); " + ns.qdiscs());
            ns.clear();

            ns.partition();
            assertThrows(SocketTimeoutException.class, () -> greeting(at, Duration.ofSeconds(2)),
                    "a partitioned server must not answer");
            ns.heal();

            try (Socket a = greeting(at, Duration.ofSeconds(30)); Socket b = greeting(at, Duration.ofSeconds(30))) {
                List<Integer> ports = TcpConnections.clientPorts(ns.address(), server.port());
                assertEquals(List.of(a.getLocalPort(), b.getLocalPort()).stream().sorted().toList(),
                        ports.stream().sorted().toList());
                TcpConnections.reset(ns.address(), server.port(), a.getLocalPort());
                assertEquals(-1, readAfterReset(a), "ss -K must end the connection");
                assertEquals(List.of(b.getLocalPort()), TcpConnections.clientPorts(ns.address(), server.port()),
                        "only the one connection is gone");
            }

            server.restart();
            greeting(at, Duration.ofSeconds(30)).close();
        }
    }

    /** -1 once the socket was aborted (EOF or the abort's error); a live but quiet connection times out instead. */
    private static int readAfterReset(Socket s) throws IOException {
        s.setSoTimeout(10_000);
        try {
            return s.getInputStream().read();
        } catch (SocketTimeoutException stillOpen) {
            throw new AssertionError("the connection is still open", stillOpen);
        } catch (IOException aborted) {
            return -1;
        }
    }

    /** Connects and reads nbdkit's whole greeting (magic and handshake flags); a silent server times out. */
    private static Socket greeting(InetSocketAddress at, Duration timeout) throws IOException {
        Socket s = new Socket();
        try {
            s.connect(at, (int) timeout.toMillis());
            s.setSoTimeout((int) timeout.toMillis());
            InputStream in = s.getInputStream();
            assertArrayEquals(NBD_GREETING, in.readNBytes(NBD_GREETING.length));
            in.readNBytes(2); // the server's handshake flags; then it waits for ours
            return s;
        } catch (IOException | RuntimeException | Error e) {
            s.close();
            throw e;
        }
    }

    private static long roundTripMillis(InetSocketAddress at) throws IOException {
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            long t0 = System.nanoTime();
            try (Socket s = new Socket()) {
                s.connect(at, 30_000);
            }
            best = Math.min(best, (System.nanoTime() - t0) / 1_000_000);
        }
        return best;
    }
}
