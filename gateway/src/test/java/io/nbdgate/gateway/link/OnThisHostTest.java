package io.nbdgate.gateway.link;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.UnixDomainSocketAddress;
import java.util.Collections;
import org.junit.jupiter.api.Test;

/** Which servers count as on this host, where SEND_ZC is not used by default (the kernel copies on local delivery). */
class OnThisHostTest {
    @Test
    void loopbackAndThisHostsInterfaceAddressesAreLocal() throws Exception {
        assertTrue(SocketAddresses.onThisHost(new InetSocketAddress("127.0.0.1", 10809)));
        assertTrue(SocketAddresses.onThisHost(new InetSocketAddress("127.3.4.5", 10809)));
        assertTrue(SocketAddresses.onThisHost(new InetSocketAddress("::1", 10809)));
        for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            for (InetAddress a : Collections.list(nif.getInetAddresses())) {
                assertTrue(SocketAddresses.onThisHost(new InetSocketAddress(a, 10809)), a + " on " + nif.getName());
            }
        }
    }

    @Test
    void otherHostsAndUnresolvedNamesAreNot() {
        // TEST-NET-1 (RFC 5737): never assigned to a real interface.
        assertFalse(SocketAddresses.onThisHost(new InetSocketAddress("192.0.2.1", 10809)));
        assertFalse(SocketAddresses.onThisHost(InetSocketAddress.createUnresolved("nbd.example", 10809)));
        // A unix socket is local too, but has no SEND_ZC at all; the send path checks it separately.
        assertFalse(SocketAddresses.onThisHost(UnixDomainSocketAddress.of("/run/nbd.sock")));
    }
}
