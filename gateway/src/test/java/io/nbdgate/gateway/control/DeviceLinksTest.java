package io.nbdgate.gateway.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.config.ConfigException;
import io.nbdgate.gateway.config.DaemonConfig;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import io.nbdgate.uring.LinuxCalls;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** /dev/nbdgate/NAME links and the name file + change uevent for udev, in a scratch /dev, /run and /sys. */
class DeviceLinksTest {
    @TempDir
    Path dir;

    private DeviceLinks links;
    private Path linkDir;
    private Path names;
    private Path uevent;

    @BeforeEach
    void setUp() throws Exception {
        linkDir = dir.resolve("dev/nbdgate");
        names = dir.resolve("run/names");
        uevent = Files.createDirectories(dir.resolve("sys/block/ublkb7")).resolve("uevent");
        Files.writeString(uevent, "");
        links = new DeviceLinks(linkDir, names, dir.resolve("sys/block"));
    }

    @Test
    void publishLinksTheNameAndTellsUdev() throws Exception {
        links.publish("data", "/dev/ublkb7");
        Path link = linkDir.resolve("data");
        assertTrue(Files.isSymbolicLink(link));
        assertEquals(Path.of("/dev/ublkb7"), Files.readSymbolicLink(link));
        assertEquals("NBDGATE_NAME=data\n", Files.readString(names.resolve("ublkb7")));
        assertEquals("change", Files.readString(uevent));
        try (var s = Files.list(linkDir)) {
            assertEquals(1, s.count(), "no temporary link left behind");
        }
    }

    @Test
    void modesAreSetExplicitlyEvenWithUmaskZero() throws Exception {
        int old = LinuxCalls.umask(0);
        try {
            links.publish("data", "/dev/ublkb7");
        } finally {
            LinuxCalls.umask(old);
        }
        assertEquals("rwxr-xr-x", mode(linkDir));
        assertEquals("rwxr-xr-x", mode(names));
        assertEquals("rwxr-xr-x", mode(names.getParent()), "the run directory the control socket will check");
        assertEquals("rw-r--r--", mode(names.resolve("ublkb7")), "udev imports this file: only we may write it");
    }

    private static String mode(Path p) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }

    @Test
    void withdrawRemovesOnlyItsOwnLink() throws Exception {
        links.publish("data", "/dev/ublkb7");
        links.withdraw("data", "/dev/ublkb7");
        assertFalse(Files.exists(linkDir.resolve("data"), LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(names.resolve("ublkb7")));

        Files.createSymbolicLink(linkDir.resolve("other"), Path.of("/dev/ublkb9"));
        links.withdraw("other", "/dev/ublkb7");
        assertTrue(Files.isSymbolicLink(linkDir.resolve("other")), "a link to another device is not ours");
    }

    @Test
    void aNameHeldByAnotherLiveDeviceIsNotTaken() throws Exception {
        Path live = Files.writeString(dir.resolve("ublkb3"), ""); // stands in for a present device node
        Files.createDirectories(linkDir);
        Files.createSymbolicLink(linkDir.resolve("data"), live);
        links.publish("data", "/dev/ublkb7");
        assertEquals(live, Files.readSymbolicLink(linkDir.resolve("data")));
    }

    @Test
    void aStaleLinkFromACrashedDaemonIsReplaced() throws Exception {
        Files.createDirectories(linkDir);
        Files.createSymbolicLink(linkDir.resolve("data"), dir.resolve("gone"));
        links.publish("data", "/dev/ublkb7");
        assertEquals(Path.of("/dev/ublkb7"), Files.readSymbolicLink(linkDir.resolve("data")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"..", ".", "a/b", "../etc", ""})
    void namesThatAreNotFileNamesAreRefusedHereAndByTheConfig(String name) {
        assertThrows(IllegalArgumentException.class, () -> links.publish(name, "/dev/ublkb7"));
        JsonObject doc = new JsonObject().put("devices",
                new JsonArray().add(new JsonObject().put("name", name).put("uri", "nbd://h/e")));
        ConfigException e = assertThrows(ConfigException.class, () -> DaemonConfig.from(doc));
        assertEquals("devices[0].name", e.key());
    }
}
