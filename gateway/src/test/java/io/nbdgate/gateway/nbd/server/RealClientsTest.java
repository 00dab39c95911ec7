package io.nbdgate.gateway.nbd.server;

import static io.nbdgate.gateway.nbd.server.HostTool.nbdcopy;
import static io.nbdgate.gateway.nbd.server.HostTool.nbdinfo;
import static io.nbdgate.gateway.nbd.server.HostTool.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The embedded server against NBD clients nobody here wrote: nbdinfo and nbdcopy (libnbd-bin),
 * qemu-io (qemu-utils). Each test starts its own server on a free loopback port.
 */
class RealClientsTest {
    static final long MIB = 1 << 20;

    @TempDir Path dir;
    EmbeddedNbdServer server;

    @AfterEach
    void stop() throws Exception {
        if (server != null) server.close();
    }

    EmbeddedNbdServer serve(Export... exports) throws Exception {
        server = EmbeddedNbdServer.start(NbdServerConfig.tcp("127.0.0.1", 0, List.of(exports)));
        return server;
    }

    static JsonObject exportJson(String nbdinfoJson) {
        return new JsonObject(nbdinfoJson).getJsonArray("exports").getJsonObject(0);
    }

    @Test
    void nbdinfo_seesSizeFlagsAndBlockSizes() throws Exception {
        serve(Export.memory("disk", 64 * MIB, false));
        JsonObject e = exportJson(nbdinfo("--json", server.uri("disk")));
        assertEquals(64 * MIB, e.getLong("export-size"));
        assertEquals("disk", e.getString("export-name"));
        assertEquals("memory, 67108864 bytes", e.getString("description"));
        assertEquals(false, e.getBoolean("is_read_only"));
        for (String flag : List.of("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero", "can_multi_conn", "can_cache")) {
            assertEquals(true, e.getBoolean(flag), flag);
        }
        assertEquals(1, e.getInteger("block_size_minimum"));
        assertEquals(4096, e.getInteger("block_size_preferred"));
        assertEquals(32 * MIB, e.getLong("block_size_maximum"));
    }

    @Test
    void nbdinfo_readOnlyExportHidesWriteFeatures() throws Exception {
        serve(Export.memory("ro", MIB, true));
        JsonObject e = exportJson(nbdinfo("--json", server.uri("ro")));
        assertEquals(true, e.getBoolean("is_read_only"));
        assertEquals(false, e.getBoolean("can_trim"));
        assertEquals(false, e.getBoolean("can_zero"));
        assertEquals(true, e.getBoolean("can_multi_conn"));
    }

    @Test
    void nbdinfo_listShowsEveryExport() throws Exception {
        serve(Export.memory("alpha", MIB, false), Export.memory("beta", 2 * MIB, true),
                Export.file("gamma", dir.resolve("g.img"), OptionalLong.of(MIB), false));
        JsonArray exports = new JsonObject(nbdinfo("--list", "--json", server.uri(""))).getJsonArray("exports");
        List<String> names = new ArrayList<>();
        for (int i = 0; i < exports.size(); i++) names.add(exports.getJsonObject(i).getString("export-name"));
        assertEquals(List.of("alpha", "beta", "gamma"), names);
        assertEquals(2 * MIB, exports.getJsonObject(1).getLong("export-size"));
    }

    @Test
    void nbdinfo_overUnixSocket() throws Exception {
        Path socket = dir.resolve("nbd.sock");
        server = EmbeddedNbdServer.start(NbdServerConfig.unix(socket, List.of(Export.memory("disk", 8 * MIB, false))));
        assertEquals(8 * MIB, exportJson(nbdinfo("--json", server.uri("disk"))).getLong("export-size"));
    }

    @Test
    void nbdcopy_randomDataInAndOut_memory() throws Exception {
        serve(Export.memory("disk", 32 * MIB, false));
        roundTrip(server.uri("disk"), 32 * MIB);
    }

    @Test
    void nbdcopy_randomDataInAndOut_file() throws Exception {
        Path image = dir.resolve("disk.img");
        serve(Export.file("disk", image, OptionalLong.of(32 * MIB), false));
        Path source = roundTrip(server.uri("disk"), 32 * MIB);
        nbdcopy("--flush", source.toString(), server.uri("disk"));
        server.close();
        server = null;
        assertEquals(sha256(source), sha256(image), "the backing file holds exactly what was copied in");
    }

    @Test
    void nbdcopy_multiConn_usesSeveralConnectionsAndDataSurvives() throws Exception {
        serve(Export.memory("disk", 32 * MIB, false));
        Path source = randomFile("multi.bin", 32 * MIB, 7);
        long before = server.connectionsAccepted();
        // nbdcopy caps connections at --threads, which defaults to the core count (2 here).
        nbdcopy("--threads=4", "--connections=4", "--requests=16", source.toString(), server.uri("disk"));
        assertTrue(server.connectionsAccepted() - before >= 4,
                "nbdcopy should open 4 connections to a CAN_MULTI_CONN export, opened " + (server.connectionsAccepted() - before));
        Path back = dir.resolve("back.bin");
        nbdcopy("--connections=1", server.uri("disk"), back.toString());
        assertEquals(sha256(source), sha256(back));
    }

    @Test
    void qemuIo_twoClientsWriteDisjointRangesAtOnce() throws Exception {
        serve(Export.memory("disk", 16 * MIB, false));
        CompletableFuture<HostTool.Result> a = CompletableFuture.supplyAsync(() -> quietly(() ->
                qemuIo("-f", "raw", server.uri("disk"), "-c", "write -P 0x11 0 8M")));
        CompletableFuture<HostTool.Result> b = CompletableFuture.supplyAsync(() -> quietly(() ->
                qemuIo("-f", "raw", server.uri("disk"), "-c", "write -P 0x22 8M 8M")));
        assertEquals(0, a.get().exit(), a.get().out());
        assertEquals(0, b.get().exit(), b.get().out());
        HostTool.Result check = qemuIo("-f", "raw", server.uri("disk"), "-c", "read -P 0x11 0 8M", "-c", "read -P 0x22 8M 8M");
        assertEquals(0, check.exit(), check.out());
        assertFalse(check.out().contains("Pattern verification failed"), check.out());
    }

    @Test
    void qemuIo_writeReadDiscardZero_memory() throws Exception {
        serve(Export.memory("exp", 16 * MIB, false));
        HostTool.Result r = qemuIo("-f", "raw", server.uri("exp"),
                "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
                "-c", "discard 0 64k", "-c", "read -P 0 0 64k",
                "-c", "write -z 512k 256k", "-c", "read -P 0 512k 256k", "-c", "read -P 0xab 768k 256k",
                "-c", "write -P 0xcd -f 4M 4k", "-c", "flush", "-c", "read -P 0xcd 4M 4k");
        assertEquals(0, r.exit(), r.out());
        assertFalse(r.out().contains("Pattern verification failed"), r.out());
        assertTrue(r.out().contains("discard 65536/65536 bytes at offset 0"), r.out());
    }

    @Test
    void qemuImg_convertIntoTheExportThenCompare_file() throws Exception {
        serve(Export.file("disk", dir.resolve("disk.img"), OptionalLong.of(16 * MIB), false));
        Path source = randomFile("src.bin", 16 * MIB, 3);
        HostTool.ok("qemu-img", "qemu-utils", "convert", "-n", "-f", "raw", "-O", "raw", source.toString(), server.uri("disk"));
        String same = HostTool.ok("qemu-img", "qemu-utils", "compare", "-f", "raw", "-F", "raw", source.toString(), server.uri("disk"));
        assertTrue(same.contains("Images are identical"), same);
        HostTool.Result differ = HostTool.run("qemu-img", "qemu-utils", "compare", "-f", "raw", "-F", "raw",
                randomFile("other.bin", 16 * MIB, 4).toString(), server.uri("disk"));
        assertEquals(1, differ.exit(), "qemu-img compare must see a difference: " + differ.out());
    }

    @Test
    void qemuIo10_negotiatesExtendedHeaders_andWritesReadsZeroes() throws Exception {
        // qemu 10 is the one installed client with extended headers; scripts/test unpacks it (see ExternalNbdServer).
        Path qemuIo = Path.of(io.nbdgate.gateway.testsupport.ExternalNbdServer.qemuNbdBinary()).resolveSibling("qemu-io");
        String version = HostTool.ok(qemuIo.toString(), "qemu-utils from bookworm-backports (scripts/test unpacks it)", "--version");
        assertTrue(version.matches("(?s)qemu-io version (1\\d|[2-9]\\d)\\..*"), "need qemu-io 10 or newer for extended headers: " + version);
        serve(Export.file("exp", dir.resolve("disk.img"), OptionalLong.of(16 * MIB), false));
        HostTool.Result r = HostTool.run(qemuIo.toString(), "qemu-utils", "--trace", "nbd_receive_option_reply", "-f", "raw", server.uri("exp"),
                "-c", "write -P 0xab 0 1M", "-c", "read -P 0xab 0 1M",
                "-c", "discard 0 64k", "-c", "read -P 0 0 64k", "-c", "write -z -u 1M 1M", "-c", "read -P 0 1M 1M");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("option reply 11 (extended headers), type 1 (ack)"), r.out());
        assertFalse(r.out().contains("Pattern verification failed") || r.out().contains("failed:"), r.out());
    }

    @Test
    void qemuIo_patternMismatchIsReported() throws Exception {
        // Guards the tests above: qemu-io must notice wrong data, or their checks prove nothing.
        serve(Export.memory("exp", MIB, false));
        HostTool.Result r = qemuIo("-f", "raw", server.uri("exp"), "-c", "write -P 0xab 0 4k", "-c", "read -P 0xac 0 4k");
        assertTrue(r.out().contains("Pattern verification failed"), r.out());
    }

    @Test
    void qemuIo_fileBackend_fuaWriteIsInTheFile_discardLeavesAHole() throws Exception {
        Path image = dir.resolve("disk.img");
        serve(Export.file("exp", image, OptionalLong.of(16 * MIB), false));
        HostTool.Result w = qemuIo("-f", "raw", server.uri("exp"), "-c", "write -f -P 0x5a 1M 2M");
        assertEquals(0, w.exit(), w.out());
        byte[] written = new byte[2 * (int) MIB];
        java.util.Arrays.fill(written, (byte) 0x5a);
        assertArrayEquals(written, readFile(image, MIB, 2 * (int) MIB), "FUA write is in the backing file when acknowledged");
        long allocated = FileBlocks.allocatedBytes(image);
        assertTrue(allocated >= 2 * MIB, "allocated " + allocated);

        HostTool.Result d = qemuIo("-f", "raw", server.uri("exp"), "-c", "discard 1M 1M", "-c", "write -z -u 2M 1M");
        assertEquals(0, d.exit(), d.out());
        assertEquals(0, FileBlocks.allocatedBytes(image), "discard and write -z -u punched holes");
        // Without -u qemu sends NO_HOLE: the zeroes must stay allocated.
        HostTool.Result z = qemuIo("-f", "raw", server.uri("exp"), "-c", "write -z 3M 1M");
        assertEquals(0, z.exit(), z.out());
        assertEquals(MIB, FileBlocks.allocatedBytes(image), "write -z (NO_HOLE) kept the range allocated");
        assertArrayEquals(new byte[2 * (int) MIB], readFile(image, MIB, 2 * (int) MIB));
    }

    @Test
    void qemuIo_readOnlyExportRefusesWrites() throws Exception {
        serve(Export.memory("ro", MIB, true));
        HostTool.Result r = qemuIo("-f", "raw", "-r", server.uri("ro"), "-c", "read -P 0 0 64k");
        assertEquals(0, r.exit(), r.out());
        HostTool.Result w = qemuIo("-f", "raw", server.uri("ro"), "-c", "write -P 1 0 4k");
        // qemu sees READ_ONLY and refuses to open read-write, so EPERM is proven in RawProtocolTest.
        assertNotEquals(0, w.exit(), w.out());
        assertTrue(w.out().contains("Permission denied"), w.out());
    }

    // ---- helpers ------------------------------------------------------------------------------

    interface Call<T> {
        T call() throws Exception;
    }

    static <T> T quietly(Call<T> call) {
        try {
            return call.call();
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    Path randomFile(String name, long size, long seed) throws Exception {
        byte[] data = new byte[(int) size];
        new Random(seed).nextBytes(data);
        Path p = dir.resolve(name);
        Files.write(p, data);
        return p;
    }

    /** Copies random bytes in with nbdcopy, copies them back out, and compares checksums. */
    Path roundTrip(String uri, long size) throws Exception {
        Path source = randomFile("in.bin", size, 42);
        nbdcopy(source.toString(), uri);
        Path back = dir.resolve("out.bin");
        nbdcopy(uri, back.toString());
        assertEquals(sha256(source), sha256(back), "data copied out equals data copied in");
        return source;
    }

    static String sha256(Path p) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }

    static byte[] readFile(Path p, long offset, int length) throws Exception {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) { }
            return b.array();
        }
    }
}
