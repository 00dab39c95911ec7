package io.nbdgate.uring;

import static io.nbdgate.uring.IoUringAbi.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The io-wq count sees workers by their owner: forced async work makes one, inline work none. */
class IoWorkersTest {
    /** Runs one NOP on a fresh ring in a thread named {@code name}; returns the workers it owns afterwards. */
    private static int workersAfterNop(String name, byte sqeFlags) throws Exception {
        CompletableFuture<Integer> out = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().name(name).start(() -> {
            try (IoUring ring = IoUring.setup(4, 0)) {
                ring.nextSqe().opcode(OP_NOP).flags(sqeFlags).userData(1);
                ring.submitAndWait(1, 5_000_000_000L);
                assertEquals(1, ring.drain((u, r, f) -> { }));
                out.complete(IoWorkers.ownedBy(name));
            } catch (Throwable e) {
                out.completeExceptionally(e);
            }
        });
        int n = out.get(10, TimeUnit.SECONDS);
        t.join();
        return n;
    }

    @Test
    void workForcedIntoIoWqShowsUnderItsThread() throws Exception {
        assertTrue(workersAfterNop("iowq-async", IOSQE_ASYNC) >= 1, "IOSQE_ASYNC work made no io-wq worker");
        assertEquals(0, IoWorkers.ownedBy("no-such-thread"));
    }

    @Test
    void inlineWorkMakesNoWorker() throws Exception {
        assertEquals(0, workersAfterNop("iowq-inline", (byte) 0));
    }
}
