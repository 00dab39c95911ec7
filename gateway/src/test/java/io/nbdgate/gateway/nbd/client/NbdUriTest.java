package io.nbdgate.gateway.nbd.client;

import io.nbdgate.gateway.tls.TlsSettings;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.tls.TlsSettings;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class NbdUriTest {

    @ParameterizedTest(name = "{0} -> export ''{1}''")
    @CsvSource(delimiter = '|', value = {
        "nbd://example.com/disk          | disk",
        "nbd://example.com/              | ''",
        "nbd://example.com               | ''",
        "nbd://example.com//disk         | /disk",
        "nbd://example.com/hello%20world | hello world",
        "nbd://example.com/a+b           | a+b",
    })
    void exportNamesFollowTheSpecTable(String uri, String export) throws InvalidNbdUriException {
        assertEquals(export, NbdUri.parse(uri).exportName());
    }

    @Test
    void tcpWithDefaultAndExplicitPort() throws InvalidNbdUriException {
        assertEquals(new NbdUri(false, "example.com", 10809, null, "disk"), NbdUri.parse("nbd://example.com/disk"));
        assertEquals(new NbdUri(false, "10.0.0.1", 2000, null, "x"), NbdUri.parse("nbd://10.0.0.1:2000/x"));
        assertEquals(new NbdUri(false, "host_with_underscore", 10809, null, ""), NbdUri.parse("nbd://host_with_underscore"));
    }

    @Test
    void ipv6LiteralLosesItsBrackets() throws InvalidNbdUriException {
        NbdUri u = NbdUri.parse("nbd://[::1]:10810/e");
        assertEquals("::1", u.host());
        assertEquals(10810, u.port());
        assertEquals("nbd://[::1]:10810/e", u.toString());
    }

    @Test
    void userinfoIsIgnored() throws InvalidNbdUriException {
        assertEquals("h", NbdUri.parse("nbd://alice@h:1/e").host());
    }

    @Test
    void unixSocketTakesThePathFromTheQuery() throws InvalidNbdUriException {
        NbdUri u = NbdUri.parse("nbd+unix:///disk?socket=/run/nbd%20x.sock");
        assertEquals(new NbdUri(false, null, 0, "/run/nbd x.sock", "disk"), u);
        assertTrue(u.unixSocket());
        assertEquals("nbd+unix:///disk?socket=/run/nbd x.sock", u.toString());
    }

    @Test
    void tlsSchemes() throws InvalidNbdUriException {
        assertTrue(NbdUri.parse("nbds://h/e").tls());
        assertTrue(NbdUri.parse("nbds+unix:///e?socket=s").tls());
        assertTrue(NbdUri.parse("nbds+vsock://2/e").tls());
    }

    @Test
    void tlsParametersAsTheSpecAndLibnbdNameThem() throws InvalidNbdUriException {
        NbdUri u = NbdUri.parse("nbds://alice@disk.example.com/e?tls-type=psk&tls-psk-file=/etc/keys.psk"
                + "&tls-hostname=other.example&tls-verify-peer=0&tls-certificates=/etc/pki/nbd&x-mine=1");
        TlsSettings t = u.tlsSettings();
        assertEquals(TlsSettings.Type.PSK, t.type());
        assertEquals(Path.of("/etc/keys.psk"), t.pskFile());
        assertEquals(Path.of("/etc/pki/nbd"), t.certificates());
        assertEquals("other.example", t.hostname());
        assertEquals(Boolean.FALSE, t.verifyPeer());
        assertEquals("alice", t.username());
        assertEquals("other.example", u.tlsHostname());
        assertEquals("disk.example.com", NbdUri.parse("nbds://disk.example.com/").tlsHostname());
        assertEquals(null, NbdUri.parse("nbds+unix:///?socket=/s").tlsHostname());
        assertEquals(TlsSettings.Type.X509, NbdUri.parse("nbds://h/").tlsSettings().effectiveType());
        assertEquals(TlsSettings.Type.PSK, NbdUri.parse("nbds://h/?tls-psk-file=/k").tlsSettings().effectiveType());
    }

    @Test
    void tlsParametersThatCannotWorkAreRefused() {
        assertRefused("nbd://h/?tls-certificates=/d", "does not ask for TLS; use nbds://");
        assertRefused("nbd+unix:///?socket=/s&tls-hostname=x", "use nbds+unix://");
        assertRefused("nbds://h/?tls-type=anon", "tls-type=anon is not supported");
        assertRefused("nbds://h/?tls-type=kerberos", "unknown tls-type 'kerberos'");
        assertRefused("nbds://h/?tls-verify-peer=maybe", "tls-verify-peer must be 0 or 1");
        assertRefused("nbds://h/?tls-cert=/d", "unknown parameter 'tls-cert'");
        assertRefused("nbds://h/?tls-hostname=a&tls-hostname=b", "given twice");
    }

    @Test
    void flagsJoinTheUriUnlessTheyContradictIt() throws InvalidNbdUriException {
        NbdUri u = NbdUri.parse("nbds://h/?tls-hostname=a")
                .withTls(new TlsSettings(null, null, null, Path.of("/d"), null, "bob"));
        assertEquals("a", u.tlsSettings().hostname());
        assertEquals(Path.of("/d"), u.tlsSettings().certificates());
        assertEquals("bob", u.tlsSettings().username());
        InvalidNbdUriException e = assertThrows(InvalidNbdUriException.class, () -> NbdUri.parse("nbds://h/?tls-hostname=a")
                .withTls(new TlsSettings(null, "b", null, null, null, null)));
        assertTrue(e.getMessage().contains("tls-hostname is given twice"), e.getMessage());
        assertThrows(InvalidNbdUriException.class, () -> NbdUri.parse("nbd://h/")
                .withTls(new TlsSettings(null, null, null, Path.of("/d"), null, null)));
    }

    private static void assertRefused(String uri, String expected) {
        InvalidNbdUriException e = assertThrows(InvalidNbdUriException.class, () -> NbdUri.parse(uri));
        assertTrue(e.getMessage().contains(expected), uri + ": " + e.getMessage());
    }

    @Test
    void vsockAsLibnbdWritesIt() throws InvalidNbdUriException {
        NbdUri host = NbdUri.parse("nbd+vsock://2/disk");
        assertEquals(new NbdUri(false, "2", 10809, null, "disk", true), host);
        assertEquals("nbd+vsock://2:10809/disk", host.toString());
        // CID and port are unsigned 32-bit: VMADDR_CID_ANY-1 and a port above 65535 are fine.
        NbdUri big = NbdUri.parse("nbd+vsock://4294967294:4000000000/");
        assertEquals("4294967294", big.host());
        assertEquals("4000000000", Integer.toUnsignedString(big.port()));
        assertEquals("nbd+vsock://4294967294:4000000000/", big.toString());
    }

    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource(delimiter = '|', value = {
        "http://h/e                  | unknown scheme 'http'",
        "example.com/disk            | has no scheme",
        "nbd:disk                    | must be written nbd://",
        "nbd:///disk                 | names no host",
        "nbd://h:0/e                 | port '0'",
        "nbd://h:99999/e             | port '99999'",
        "nbd://h:x/e                 | port 'x'",
        "nbd+unix:///disk            | needs the unix socket",
        "nbd+unix://h/disk?socket=s  | must not name a host",
        "nbd://[::1/e                | not a valid URI",
        "nbd://h/%zz                 | not a valid URI",
        "nbd+vsock://host/e          | vsock context id 'host'",
        "nbd+vsock://4294967296/e    | vsock context id '4294967296'",
        "nbd+vsock://2:0/e           | vsock port '0'",
        "nbd+vsock:///e              | names no host",
    })
    void badUrisSayWhatIsWrong(String uri, String expected) {
        var e = assertThrows(InvalidNbdUriException.class, () -> NbdUri.parse(uri));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }
}
