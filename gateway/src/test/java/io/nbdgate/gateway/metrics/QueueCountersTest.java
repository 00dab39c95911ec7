package io.nbdgate.gateway.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.nbdgate.protocol.Command;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** The per-queue counters: bucket placement, what a result counts as, a scrape beside the writer, no allocation. */
class QueueCountersTest {
    private static final long US = 1_000;

    @Test
    void aLatencyLandsInTheFirstBucketWhoseBoundIsAtLeastIt() {
        assertEquals(10 * US, QueueCounters.boundNanos(0));
        assertEquals(20 * US, QueueCounters.boundNanos(1));
        assertEquals(10_485_760 * US, QueueCounters.boundNanos(QueueCounters.BOUNDS - 1), "the last bound is ~10 s");
        assertEquals(0, QueueCounters.bucket(0));
        assertEquals(0, QueueCounters.bucket(-5), "a clock that went back counts as no time");
        assertEquals(0, QueueCounters.bucket(1));
        assertEquals(0, QueueCounters.bucket(10 * US));
        assertEquals(1, QueueCounters.bucket(10 * US + 1));
        assertEquals(1, QueueCounters.bucket(20 * US));
        assertEquals(2, QueueCounters.bucket(20 * US + 1));
        assertEquals(2, QueueCounters.bucket(40 * US));
        assertEquals(3, QueueCounters.bucket(41 * US));
        for (int i = 0; i < QueueCounters.BOUNDS; i++) {
            long bound = QueueCounters.boundNanos(i);
            assertEquals(i, QueueCounters.bucket(bound), "bound " + i);
            assertEquals(i + 1, QueueCounters.bucket(bound + 1), "just above bound " + i);
        }
        assertEquals(QueueCounters.BOUNDS, QueueCounters.bucket(60_000_000_000L), "a minute: +Inf");
        assertEquals(QueueCounters.BOUNDS, QueueCounters.bucket(Long.MAX_VALUE));
    }

    @Test
    void aRequestCountsByOperationItsBytesOnlyOnSuccessAndItsErrnoOnFailure() {
        QueueCounters c = new QueueCounters(4);
        c.started(0, QueueCounters.op(Command.READ), 1_000_000);
        c.started(1, QueueCounters.op(Command.WRITE), 1_000_000);
        c.started(2, QueueCounters.op(Command.TRIM), 1_000_000);
        assertEquals(3, c.inFlight());
        c.finished(0, 4096, 4096, 1_000_000 + 15 * US);      // 15 µs: bucket 1
        c.finished(1, 65536, -28, 1_000_000 + 3_000 * US);  // ENOSPC after 3 ms
        c.finished(2, 1 << 20, -500, 1_000_000);             // an errno past the table: "other"
        assertEquals(0, c.inFlight());
        assertEquals(1, c.requests(QueueCounters.READ));
        assertEquals(1, c.requests(QueueCounters.WRITE));
        assertEquals(4096, c.bytes(QueueCounters.READ));
        assertEquals(0, c.bytes(QueueCounters.WRITE), "a failed write moved nothing");
        assertEquals(1, c.errors(28));
        assertEquals(1, c.errors(0));
        assertEquals(1, c.bucketCount(QueueCounters.READ, 1));
        assertEquals(1, c.bucketCount(QueueCounters.WRITE, QueueCounters.bucket(3_000 * US)));
        assertEquals(15 * US, c.latencyNanos(QueueCounters.READ));
        assertEquals(-1, QueueCounters.op(Command.DISC), "commands that are no block request are not counted by op");
    }

    @Test
    void aScrapeBesideTheWriterSeesCountsThatOnlyGrowAndEndExact() throws Exception {
        int depth = 64;
        long total = 2_000_000;
        QueueCounters c = new QueueCounters(depth);
        AtomicBoolean done = new AtomicBoolean();
        Thread writer = Thread.ofPlatform().start(() -> {
            long now = 0;
            for (long i = 0; i < total; i++) {
                int tag = (int) (i % depth);
                c.started(tag, QueueCounters.WRITE, now);
                now += 1 + (i % 3) * 15 * US; // 1 ns, 15 µs, 30 µs: buckets 0, 1, 2 in turn
                c.finished(tag, 512, (int) (i % 1000) == 0 ? -5 : 512, now);
            }
            done.set(true);
        });
        List<String> problems = new ArrayList<>();
        long lastRequests = 0;
        long lastBuckets = 0;
        int scrapes = 0;
        while (!done.get() || scrapes == 0) {
            long buckets = 0;
            for (int b = 0; b < QueueCounters.BUCKETS; b++) {
                buckets += c.bucketCount(QueueCounters.WRITE, b);
            }
            long requests = c.requests(QueueCounters.WRITE);
            long inFlight = c.inFlight();
            if (requests < lastRequests || buckets < lastBuckets) {
                problems.add("went back: " + lastRequests + " -> " + requests + ", " + lastBuckets + " -> " + buckets);
            }
            if (inFlight < 0 || inFlight > 1) {
                problems.add("in flight " + inFlight + " with one request at a time");
            }
            lastRequests = requests;
            lastBuckets = buckets;
            scrapes++;
        }
        writer.join();
        assertTrue(problems.isEmpty(), problems.stream().limit(5).toList() + " in " + scrapes + " scrapes");
        assertEquals(total, c.requests(QueueCounters.WRITE));
        assertEquals(total / 1000, c.errors(5));
        assertEquals((total - total / 1000) * 512, c.bytes(QueueCounters.WRITE));
        long third = total / 3;
        assertEquals(third + 1, c.bucketCount(QueueCounters.WRITE, 0));
        assertEquals(third + 1, c.bucketCount(QueueCounters.WRITE, 1));
        assertEquals(third, c.bucketCount(QueueCounters.WRITE, 2));
        assertEquals(0, c.inFlight());
        assertTrue(scrapes > 1, "the reader ran beside the writer: " + scrapes);
    }

    @Test
    void countingAllocatesNothing() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        QueueCounters c = new QueueCounters(128);
        Command[] commands = {Command.READ, Command.WRITE, Command.FLUSH, Command.TRIM, Command.WRITE_ZEROES};
        Runnable work = () -> {
            for (int i = 0; i < 100_000; i++) {
                int tag = i & 127;
                long now = System.nanoTime();
                c.started(tag, QueueCounters.op(commands[i % commands.length]), now);
                c.finished(tag, 4096, i % 97 == 0 ? -5 : 4096, System.nanoTime());
            }
        };
        for (int i = 0; i < 20; i++) {
            work.run(); // compiled before measuring: the interpreter may allocate where the JIT does not
        }
        long id = Thread.currentThread().threadId();
        long before = threads.getThreadAllocatedBytes(id);
        work.run();
        long allocated = threads.getThreadAllocatedBytes(id) - before;
        // The measurement itself may allocate a few bytes; one object per request would be 1.6 MB or more.
        assertTrue(allocated < 1024, allocated + " bytes allocated for 100k requests");
    }
}
