package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What UblkDevice.start accepts as the device's node. Every guest test that starts a device proves
 * the accepting side; these are the paths it must refuse.
 */
class BlockNodeTest {
    @TempDir
    Path dir;

    @Test
    void aRegularFileAtTheNodesPathIsNotTheDevice() throws Exception {
        Path sys = Files.writeString(dir.resolve("dev"), "259:0\n");
        Path file = Files.writeString(dir.resolve("ublkb0"), "written by a tool that found no node");
        assertEquals(file + " exists but is not a block device", DeviceNodes.nodeProblem(file, sys));
    }

    @Test
    void aCharacterDeviceIsNotTheDevice() throws Exception {
        Path sys = Files.writeString(dir.resolve("dev"), "1:3\n");
        assertEquals("/dev/null exists but is not a block device", DeviceNodes.nodeProblem(Path.of("/dev/null"), sys));
    }

    @Test
    void missingNodeAndMissingDiskAreReported() throws Exception {
        Path sys = Files.writeString(dir.resolve("dev"), "259:0\n");
        Path node = dir.resolve("ublkb7");
        assertEquals(node + " does not exist", DeviceNodes.nodeProblem(node, sys));
        Path noDisk = dir.resolve("no-such-disk");
        assertEquals(noDisk + " is not readable", DeviceNodes.nodeProblem(node, noDisk));
    }

    @Test
    void devNumbersDecodeAsSysfsPrintsThem() {
        assertEquals("259:3", DeviceNodes.devNumber((259L << 8) | 3));
        // minors above 255 and majors above 4095 use glibc's split encoding
        long rdev = ((4100L & 0xfff) << 8) | ((4100L & ~0xfffL) << 32) | (300 & 0xff) | ((300L & ~0xffL) << 12);
        assertEquals("4100:300", DeviceNodes.devNumber(rdev));
    }
}
