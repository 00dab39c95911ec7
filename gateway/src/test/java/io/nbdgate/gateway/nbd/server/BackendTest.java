package io.nbdgate.gateway.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The two backends on their own, without a server: data, holes, trim, zeroing. */
class BackendTest {
    @TempDir Path dir;

    static byte[] bytes(List<Backend.ReadPiece> pieces, int length, long offset) {
        byte[] out = new byte[length];
        for (Backend.ReadPiece p : pieces) {
            if (p instanceof Backend.Data d) d.bytes().duplicate().get(out, (int) (d.offset() - offset), d.bytes().remaining());
        }
        return out;
    }

    static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @Test
    void memory_unwrittenReadsAsOneHole_writtenReadsBack() throws Exception {
        MemoryBackend m = new MemoryBackend(1 << 20);
        assertEquals(List.of(new Backend.Zeroes(0, 1 << 20)), m.read(0, 1 << 20));
        m.write(70_000, ByteBuffer.wrap(filled(100, 0xab)), false);
        List<Backend.ReadPiece> pieces = m.read(0, 200_000);
        assertEquals(3, pieces.size(), pieces.toString());
        byte[] back = bytes(pieces, 200_000, 0);
        assertEquals((byte) 0xab, back[70_000]);
        assertEquals((byte) 0xab, back[70_099]);
        assertEquals(0, back[70_100]);
        assertEquals(MemoryBackend.CHUNK, m.allocatedBytes());
    }

    @Test
    void memory_trimOfWholeChunkFreesIt_writeZeroesNoHoleKeepsItAllocated() throws Exception {
        MemoryBackend m = new MemoryBackend(1 << 20);
        m.write(0, ByteBuffer.wrap(filled(2 * MemoryBackend.CHUNK, 1)), false);
        m.trim(0, MemoryBackend.CHUNK, false);
        assertEquals(MemoryBackend.CHUNK, m.allocatedBytes());
        m.writeZeroes(MemoryBackend.CHUNK, MemoryBackend.CHUNK, true, false, false);
        assertEquals(MemoryBackend.CHUNK, m.allocatedBytes());
        assertArrayEquals(new byte[2 * MemoryBackend.CHUNK], bytes(m.read(0, 2 * MemoryBackend.CHUNK), 2 * MemoryBackend.CHUNK, 0));
    }

    @Test
    void file_createdSparseWithTheGivenSize() throws Exception {
        Path p = dir.resolve("disk.img");
        try (FileBackend f = FileBackend.open(p, OptionalLong.of(64L << 20), false)) {
            assertEquals(64L << 20, f.size());
            assertEquals(0, FileBlocks.allocatedBytes(p));
            assertEquals(List.of(new Backend.Zeroes(0, 4096)), f.read(0, 4096));
        }
    }

    @Test
    void file_missingWithoutSize_failsWithAHint() {
        NoSuchFileException e = assertThrows(NoSuchFileException.class,
                () -> FileBackend.open(dir.resolve("none.img"), OptionalLong.empty(), false));
        assertTrue(e.getMessage().contains("give a size"), e.getMessage());
    }

    @Test
    void file_writeWithFuaIsInTheFile_trimPunchesAHole() throws Exception {
        Path p = dir.resolve("disk.img");
        try (FileBackend f = FileBackend.open(p, OptionalLong.of(4L << 20), false)) {
            f.write(1 << 20, ByteBuffer.wrap(filled(1 << 20, 0x5a)), true);
            byte[] onDisk = Files.readAllBytes(p);
            assertEquals((byte) 0x5a, onDisk[1 << 20]);
            assertEquals((byte) 0x5a, onDisk[(2 << 20) - 1]);
            assertTrue(FileBlocks.allocatedBytes(p) >= 1 << 20);
            f.trim(1 << 20, 1 << 20, false);
            assertEquals(0, FileBlocks.allocatedBytes(p));
            assertEquals(List.of(new Backend.Zeroes(1 << 20, 1 << 20)), f.read(1 << 20, 1 << 20));
        }
    }

    @Test
    void file_writeZeroesNoHoleKeepsBlocks_withoutNoHolePunches() throws Exception {
        Path p = dir.resolve("disk.img");
        try (FileBackend f = FileBackend.open(p, OptionalLong.of(4L << 20), false)) {
            f.write(0, ByteBuffer.wrap(filled(2 << 20, 7)), false);
            f.writeZeroes(0, 1 << 20, true, true, false);
            f.writeZeroes(1 << 20, 1 << 20, false, true, false);
            long allocated = FileBlocks.allocatedBytes(p);
            assertTrue(allocated >= 1 << 20 && allocated < 2 << 20, "allocated " + allocated);
            assertArrayEquals(new byte[2 << 20], bytes(f.read(0, 2 << 20), 2 << 20, 0));
        }
    }

    @Test
    void file_readMixesDataAndHoles() throws Exception {
        Path p = dir.resolve("disk.img");
        try (FileBackend f = FileBackend.open(p, OptionalLong.of(4L << 20), false)) {
            f.write(1 << 20, ByteBuffer.wrap(filled(4096, 3)), false);
            List<Backend.ReadPiece> pieces = f.read(0, 2 << 20);
            assertEquals(3, pieces.size(), pieces.toString());
            assertInstanceOf(Backend.Zeroes.class, pieces.get(0));
            assertEquals(3, bytes(pieces, 2 << 20, 0)[1 << 20]);
        }
    }

    @Test
    void file_onTmpfs_fastZeroWithNoHoleIsENOTSUP_slowZeroStillWorks() throws Exception {
        // tmpfs punches holes but has no FALLOC_FL_ZERO_RANGE: an allocated zero range can only be written.
        Path shm = Path.of("/dev/shm");
        assertTrue(Files.isDirectory(shm), "/dev/shm (tmpfs) is needed for this test");
        Path p = Files.createTempFile(shm, "nbdgate-backend", ".img");
        try {
            Files.delete(p);
            try (FileBackend f = FileBackend.open(p, OptionalLong.of(1 << 20), false)) {
                f.write(0, ByteBuffer.wrap(filled(8192, 9)), false);
                CommandFailure e = assertThrows(CommandFailure.class, () -> f.writeZeroes(0, 4096, true, true, false));
                assertEquals(io.nbdgate.protocol.NbdError.ENOTSUP, e.error);
                assertEquals(9, bytes(f.read(0, 4096), 4096, 0)[0], "a refused fast zero changes nothing");
                f.writeZeroes(0, 4096, true, false, false);
                assertArrayEquals(new byte[4096], bytes(f.read(0, 4096), 4096, 0));
                f.writeZeroes(4096, 4096, false, true, false);
                assertArrayEquals(new byte[4096], bytes(f.read(4096, 4096), 4096, 4096));
            }
        } finally {
            Files.deleteIfExists(p);
        }
    }
}
