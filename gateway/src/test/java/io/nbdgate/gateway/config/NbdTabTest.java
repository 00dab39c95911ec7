package io.nbdgate.gateway.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.nbd.client.NbdUri;
import io.nbdgate.gateway.tls.TlsSettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** nbd-client's nbdtab(5) format: every option mapped or refused with its line, and a whole file. */
class NbdTabTest {
    @TempDir
    Path dir;

    @Test
    void aRealFileBecomesDevices() throws Exception {
        Path file = Files.writeString(dir.resolve("nbdtab"), """
                # /etc/nbdtab: device  host  export  options
                nbd0\tnbdserver.example.com  data
                /dev/nbd1 10.0.0.2 logs port=10900,conns=4,timeout=20,bs=4096,_site=rack3   # trailing comment

                nbd2 /run/nbd/backup.sock backup unix,readonly
                nbd3 2001:db8::7 scratch ro,name=scratch
                """);
        NbdTab.Result r = NbdTab.load(file);
        List<DeviceConfig> d = r.config().devices();
        assertEquals(4, d.size());

        assertEquals("nbd0", d.get(0).name());
        NbdUri u0 = NbdUri.parse(d.get(0).uri());
        assertEquals("nbdserver.example.com", u0.host());
        assertEquals(10809, u0.port());
        assertEquals("data", u0.exportName());
        assertEquals(DeviceConfig.AUTO_QUEUES, d.get(0).queues());
        assertEquals(DeviceConfig.DEFAULT_IO_TIMEOUT, d.get(0).ioTimeout());

        assertEquals("nbd1", d.get(1).name());
        NbdUri u1 = NbdUri.parse(d.get(1).uri());
        assertEquals(10900, u1.port());
        assertEquals("logs", u1.exportName());
        assertEquals(4, d.get(1).queues());
        assertEquals(Duration.ofSeconds(20), d.get(1).ioTimeout());
        assertEquals(List.of("line 3: bs=4096 is not used: nbdgate takes the block size the server advertises"),
                r.notes());

        NbdUri u2 = NbdUri.parse(d.get(2).uri());
        assertTrue(u2.unixSocket());
        assertEquals("/run/nbd/backup.sock", u2.socketPath());
        assertEquals("backup", u2.exportName());
        assertTrue(d.get(2).readOnly());

        assertEquals("scratch", d.get(3).name());
        assertEquals("2001:db8::7", NbdUri.parse(d.get(3).uri()).host());
        assertTrue(d.get(3).readOnly());
        assertTrue(!d.get(0).readOnly() && !d.get(1).readOnly());
        assertEquals(DaemonConfig.DEFAULT_STATUS_LISTEN, r.config().statusListen());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "too few fields      | nbd0 host                          | line 2: expected DEVICE HOST EXPORT [OPTION,...], got 2 field(s)",
        "too many fields     | nbd0 host data ro extra            | line 2: expected DEVICE HOST EXPORT [OPTION,...], got 5 field(s)",
        "empty option        | nbd0 host data port=10809,,ro      | line 2: malformed option '' (options are NAME or NAME=VALUE",
        "malformed option    | nbd0 host data =5                  | line 2: malformed option '=5'",
        "unknown option      | nbd0 host data port=1,fast         | line 2: unknown option 'fast' (known: bs, cacertfile, certfile, conns, keyfile, name, persist, port",
        "persist with value  | nbd0 host data persist=1           | line 2: option 'persist' takes no value, got '1'",
        "tls with value      | nbd0 host data tls=1               | line 2: option 'tls' takes no value, got '1'",
        "certfile no value   | nbd0 host data certfile            | line 2: option 'certfile' needs a value",
        "tlshostname empty   | nbd0 host data tlshostname=        | line 2: option 'tlshostname' needs a value",
        "priority            | nbd0 host data tls,priority=NORMAL | line 2: option 'priority': a GnuTLS priority string",
        "swap with value     | nbd0 host data swap=1              | line 2: option 'swap' takes no value, got '1'",
        "sdp                 | nbd0 host data sdp                 | line 2: option 'sdp': the Sockets Direct Protocol is not supported",
        "no_optgo            | nbd0 host data no_optgo            | line 2: option 'no_optgo': nbdgate always negotiates with NBD_OPT_GO",
        "preinit             | nbd0 host data preinit             | line 2: option 'preinit': nbdgate does the NBD handshake itself",
        "dead-timeout        | nbd0 host data dead-timeout=5      | line 2: option 'dead-timeout': not supported",
        "port zero           | nbd0 host data port=0              | line 2: option 'port': must be a whole number from 1 to 65535, got '0'",
        "port too big        | nbd0 host data port=70000          | line 2: option 'port': must be a whole number from 1 to 65535, got '70000'",
        "port text           | nbd0 host data port=nbd            | line 2: option 'port': must be a whole number from 1 to 65535, got 'nbd'",
        "port without value  | nbd0 host data port                | line 2: option 'port': must be a whole number from 1 to 65535, got no value",
        "conns zero          | nbd0 host data conns=0             | line 2: option 'conns': must be a whole number from 1 to 64, got '0'",
        "conns too many      | nbd0 host data conns=65            | line 2: option 'conns': must be a whole number from 1 to 64, got '65'",
        "timeout zero        | nbd0 host data timeout=0           | line 2: option 'timeout': must be a whole number from 1 to 86400, got '0'",
        "bs not power of 2   | nbd0 host data bs=1000             | line 2: option 'bs': must be a power of two from 512 to 4096, got 1000",
        "bs too big          | nbd0 host data bs=8192             | line 2: option 'bs': must be a whole number from 512 to 4096, got '8192'",
        "flag with value     | nbd0 host data unix=yes            | line 2: option 'unix' takes no value, got 'yes'",
        "ro with value       | nbd0 host data ro=1                | line 2: option 'ro' takes no value, got '1'",
        "empty name          | nbd0 host data name=               | line 2: option 'name' needs a value",
        "port with unix      | nbd0 /run/s data unix,port=1       | line 2: option 'port' does not go with 'unix'",
        "bad device name     | nbd:0 host data                    | line 2: device name: must be 1-32 letters, digits",
        "device with slashes | /dev/x/nbd0 host data              | line 2: device name: must be 1-32 letters, digits",
        "bad name option     | nbd0 host data name=..             | line 2: device name: must be 1-32 letters, digits",
    })
    void everyProblemNamesItsLineAndOption(String what, String line, String expected) {
        ConfigException e = assertThrows(ConfigException.class, () -> NbdTab.parse("# header\n" + line + "\n"));
        assertTrue(e.getMessage().startsWith(expected), what + ": " + e.getMessage());
        assertEquals(1, e.getMessage().lines().count());
    }

    @Test
    void tlsOptionsBecomeAnNbdsUriAndTheTlsKeys() throws Exception {
        NbdTab.Result r = NbdTab.parse("""
                nbd0 disk.example.com data tls
                nbd1 10.0.0.2 logs cacertfile=/etc/nbd/ca.pem,certfile=/etc/nbd/c.pem,keyfile=/etc/nbd/k.pem,tlshostname=logs.example.com
                nbd2 /run/nbd.sock backup unix,tls,cacertfile=/etc/nbd/ca.pem,swap
                nbd3 plain.example.com data
                """);
        List<DeviceConfig> d = r.config().devices();
        assertEquals("nbds://disk.example.com:10809/data", d.get(0).uri());
        assertEquals("nbds://10.0.0.2:10809/logs", d.get(1).uri(), "any TLS file means TLS, as in nbd-client");
        TlsSettings t = d.get(1).tls();
        assertEquals(Path.of("/etc/nbd/ca.pem"), t.caFile());
        assertEquals(Path.of("/etc/nbd/c.pem"), t.certFile());
        assertEquals(Path.of("/etc/nbd/k.pem"), t.keyFile());
        assertEquals("logs.example.com", t.hostname());
        assertTrue(NbdUri.parse(d.get(2).uri()).tls() && NbdUri.parse(d.get(2).uri()).unixSocket(), d.get(2).uri());
        assertEquals(Path.of("/etc/nbd/ca.pem"), d.get(2).tls().caFile());
        assertEquals("nbd://plain.example.com:10809/data", d.get(3).uri());
        assertEquals(List.of("line 3: swap: the daemon locks its memory and writes pages out as an IO flusher"
                + " (memory.lock, on by default), which swap on the device needs"), r.notes());
    }

    @Test
    void persistMeansRequestsWaitForTheServerWithoutATimeLimit() throws Exception {
        Path f = dir.resolve("persist.nbdtab");
        Files.writeString(f, "nbd0 host data persist,timeout=7\nnbd1 host data\n");
        List<DeviceConfig> d = NbdTab.load(f).config().devices();
        assertEquals(null, d.get(0).reconnectTimeout());
        assertEquals(java.time.Duration.ofSeconds(7), d.get(0).ioTimeout());
        assertEquals(DeviceConfig.DEFAULT_RECONNECT_TIMEOUT, d.get(1).reconnectTimeout());
    }

    @Test
    void aDuplicateNameIsTheLaterLine() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> NbdTab.parse("nbd0 a x\n\n# two\nnbd0 b y\n"));
        assertEquals("line 4: device name: 'nbd0' is used by an earlier device", e.getMessage());
    }

    @Test
    void aFileWithoutDevicesIsRefused() {
        ConfigException e = assertThrows(ConfigException.class, () -> NbdTab.parse("# nothing\n\n   \n"));
        assertTrue(e.getMessage().startsWith("no device lines"), e.getMessage());
    }

    @Test
    void aMissingFileIsRefused() {
        ConfigException e = assertThrows(ConfigException.class, () -> NbdTab.load(dir.resolve("nope")));
        assertTrue(e.getMessage().startsWith("no such file"), e.getMessage());
    }
}
