package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.gateway.link.NbdConnectionException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The take-over's connection attempts: retried until the deadline, the last failure thrown after it. */
class AttacherTest {

    @Test
    void aServerThatRefusesForAMomentIsConnectedOnALaterAttempt() throws Exception {
        AtomicInteger attempts = new AtomicInteger();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        String result = Attacher.untilDeadline(deadline, "disk", () -> {
            if (attempts.incrementAndGet() < 3) {
                throw new NbdConnectionException("cannot connect to /127.0.0.1:1: ECONNREFUSED (111)");
            }
            return "connected";
        });
        assertEquals("connected", result);
        assertEquals(3, attempts.get());
    }

    @Test
    void pastTheDeadlineTheLastFailureIsThrownWithoutAnotherWait() {
        List<NbdConnectionException> failures = new ArrayList<>();
        long start = System.nanoTime();
        long deadline = start + Duration.ofMillis(700).toNanos();
        NbdConnectionException thrown = assertThrows(NbdConnectionException.class,
                () -> Attacher.untilDeadline(deadline, "disk", () -> {
                    NbdConnectionException e = new NbdConnectionException("refused, attempt " + (failures.size() + 1));
                    failures.add(e);
                    throw e;
                }));
        assertSame(failures.getLast(), thrown);
        assertTrue(failures.size() >= 2, "attempts: " + failures.size());
        // Backoff 100, 200, 400 ms (jittered): no pause is begun that would end past the deadline.
        long overrun = System.nanoTime() - deadline;
        assertTrue(overrun < Duration.ofMillis(300).toNanos(),
                "ran " + Duration.ofNanos(System.nanoTime() - start).toMillis() + " ms for a 700 ms deadline");
    }

    @Test
    void aDeadlineAlreadyPastMeansOneAttempt() {
        AtomicInteger attempts = new AtomicInteger();
        assertThrows(NbdConnectionException.class, () -> Attacher.untilDeadline(System.nanoTime(), "disk", () -> {
            attempts.incrementAndGet();
            throw new NbdConnectionException("refused");
        }));
        assertEquals(1, attempts.get());
    }
}
