package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IoUringTest {
    @TempDir
    Path dir;

    record Completion(long userData, int res, int flags) {
    }

    private static List<Completion> waitFor(IoUring ring, int n) throws UringException {
        List<Completion> out = new ArrayList<>();
        while (out.size() < n) {
            ring.submitAndWait(n - out.size(), 5_000_000_000L);
            int got = ring.drain((u, r, f) -> out.add(new Completion(u, r, f)));
            if (got == 0) {
                fail("no completion within 5 s");
            }
        }
        return out;
    }

    @Test
    void layoutsMatchTheKernelHeader() {
        assertEquals(64, SQE.byteSize());
        assertEquals(16, CQE.byteSize());
        assertEquals(120, PARAMS.byteSize());
        assertEquals(40, PARAMS.byteOffset(java.lang.foreign.MemoryLayout.PathElement.groupElement("sq_off")));
        assertEquals(80, PARAMS.byteOffset(java.lang.foreign.MemoryLayout.PathElement.groupElement("cq_off")));
        assertEquals(32, RSRC_REGISTER.byteSize());
        assertEquals(32, RSRC_UPDATE2.byteSize());
        assertEquals(24, GETEVENTS_ARG.byteSize());
        assertEquals(16, PROBE.byteSize());
        assertEquals(8, PROBE_OP.byteSize());
        assertEquals(SQE_USER_DATA, SQE.byteOffset(java.lang.foreign.MemoryLayout.PathElement.groupElement("user_data")));
        assertEquals(SQE_BUF_INDEX, SQE.byteOffset(java.lang.foreign.MemoryLayout.PathElement.groupElement("buf_index")));
        assertEquals(SQE_ADDR3, SQE.byteOffset(java.lang.foreign.MemoryLayout.PathElement.groupElement("addr3")));
    }

    @Test
    void nopRoundTripCarriesUserData() throws Exception {
        try (IoUring ring = IoUring.setup(8, SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN)) {
            for (int i = 0; i < 20; i++) { // more than the ring holds: nextSqe submits when full
                ring.nextSqe().opcode(OP_NOP).userData(1000 + i);
            }
            List<Completion> c = waitFor(ring, 20);
            for (int i = 0; i < 20; i++) {
                assertEquals(1000 + i, c.get(i).userData());
                assertEquals(0, c.get(i).res());
            }
        }
    }

    @Test
    void sqe128AndCqe32RingsWork() throws Exception {
        try (IoUring ring = IoUring.setup(4, SETUP_SQE128 | SETUP_CQE32)) {
            assertEquals(SETUP_SQE128 | SETUP_CQE32, ring.setupFlags() & (SETUP_SQE128 | SETUP_CQE32));
            Sqe sqe = ring.nextSqe().opcode(OP_NOP).userData(7);
            assertEquals(80, sqe.cmd().byteSize());
            ring.nextSqe().opcode(OP_NOP).userData(8);
            List<Completion> c = waitFor(ring, 2);
            assertEquals(List.of(7L, 8L), c.stream().map(Completion::userData).toList());
        }
    }

    @Test
    void timedWaitReturnsWithoutCompletions() throws Exception {
        try (IoUring ring = IoUring.setup(4, 0)) {
            long t0 = System.nanoTime();
            ring.submitAndWait(1, 50_000_000L);
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(ms >= 40 && ms < 2000, "waited " + ms + " ms");
            assertEquals(0, ring.readyCompletions());
        }
    }

    @Test
    void readAndWriteAFile() throws Exception {
        Path f = dir.resolve("data");
        byte[] expected = new byte[8192];
        new Random(1).nextBytes(expected);
        int fd = LinuxCalls.open(f.toString(), LinuxCalls.O_RDWR | LinuxCalls.O_CREAT, 0644);
        try (IoUring ring = IoUring.setup(8, 0); Arena a = Arena.ofConfined()) {
            MemorySegment src = a.allocate(8192, 4096).copyFrom(MemorySegment.ofArray(expected));
            ring.nextSqe().prepRw(OP_WRITE, fd, src.address(), 8192, 4096, 1);
            assertEquals(8192, waitFor(ring, 1).getFirst().res());
            MemorySegment dst = a.allocate(8192, 4096);
            ring.nextSqe().prepRw(OP_READ, fd, dst.address(), 8192, 4096, 2);
            assertEquals(8192, waitFor(ring, 1).getFirst().res());
            assertArrayEquals(expected, dst.toArray(ValueLayout.JAVA_BYTE));
        } finally {
            LinuxCalls.close(fd);
        }
        byte[] onDisk = Files.readAllBytes(f);
        assertEquals(4096 + 8192, onDisk.length);
        assertArrayEquals(expected, java.util.Arrays.copyOfRange(onDisk, 4096, onDisk.length));
    }

    @Test
    void readFixedAndWriteFixedUseASparseTableSlot() throws Exception {
        Path f = dir.resolve("fixed");
        byte[] expected = new byte[4096];
        new Random(2).nextBytes(expected);
        int fd = LinuxCalls.open(f.toString(), LinuxCalls.O_RDWR | LinuxCalls.O_CREAT, 0644);
        try (IoUring ring = IoUring.setup(8, SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN); Arena a = Arena.ofConfined()) {
            ring.registerSparseBuffers(16);
            MemorySegment buf = a.allocate(4096, 4096).copyFrom(MemorySegment.ofArray(expected));
            ring.updateBuffer(5, buf);
            ring.nextSqe().prepRw(OP_WRITE_FIXED, fd, buf.address(), 4096, 0, 1).bufIndex(5);
            assertEquals(4096, waitFor(ring, 1).getFirst().res());
            buf.fill((byte) 0);
            ring.nextSqe().prepRw(OP_READ_FIXED, fd, buf.address(), 4096, 0, 2).bufIndex(5);
            assertEquals(4096, waitFor(ring, 1).getFirst().res());
            assertArrayEquals(expected, buf.toArray(ValueLayout.JAVA_BYTE));
            // An empty slot must be refused by the kernel, not silently used.
            ring.nextSqe().prepRw(OP_READ_FIXED, fd, buf.address(), 4096, 0, 3).bufIndex(6);
            assertEquals(-Errno.EFAULT, waitFor(ring, 1).getFirst().res());
        } finally {
            LinuxCalls.close(fd);
        }
        assertArrayEquals(expected, Files.readAllBytes(f));
    }

    @Test
    void sparseFileTableSlotServesAFixedFileWrite() throws Exception {
        Path f = dir.resolve("fixed-file");
        int fd = LinuxCalls.open(f.toString(), LinuxCalls.O_RDWR | LinuxCalls.O_CREAT, 0644);
        try (IoUring ring = IoUring.setup(4, 0); Arena a = Arena.ofConfined()) {
            FixedResources.registerSparseFiles(ring.fd(), 8);
            FixedResources.updateFile(ring.fd(), 3, fd);
            MemorySegment src = a.allocateFrom("via slot 3");
            ring.nextSqe().prepRw(OP_WRITE, 3, src.address(), 10, 0, 1).flags(IOSQE_FIXED_FILE);
            assertEquals(10, waitFor(ring, 1).getFirst().res());
            ring.nextSqe().prepRw(OP_WRITE, 4, src.address(), 10, 0, 2).flags(IOSQE_FIXED_FILE);
            assertEquals(-Errno.EBADF, waitFor(ring, 1).getFirst().res(), "empty slot must be refused");
        } finally {
            LinuxCalls.close(fd);
        }
        assertEquals("via slot 3", Files.readString(f));
    }

    @Test
    void probeListsTheOpcodesWeNeed() throws Exception {
        try (IoUring ring = IoUring.setup(4, 0)) {
            OpcodeProbe p = ring.probe();
            assertTrue(p.lastOp() >= OP_SEND_ZC, p.toString());
            for (byte op : new byte[] {OP_NOP, OP_READ_FIXED, OP_WRITE_FIXED, OP_READ, OP_WRITE, OP_URING_CMD}) {
                assertTrue(p.supports(op), "opcode " + op);
            }
            assertFalse(p.supports(255));
        }
    }

    @Test
    void kernelErrorsNameTheErrno() {
        UringException e = assertThrows(UringException.class, () -> IoUring.setup(0, 0));
        assertEquals("io_uring_setup: EINVAL (22)", e.getMessage());
        assertEquals(Errno.EINVAL, e.errno());
        UringException e2 = assertThrows(UringException.class, () -> LinuxCalls.open("/nonexistent/x", 0, 0));
        assertEquals(Errno.ENOENT, e2.errno());
        assertTrue(e2.getMessage().endsWith("ENOENT (2)"), e2.getMessage());
    }
}
