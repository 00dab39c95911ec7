package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.F_BATCH_IO;
import static io.nbdgate.ublk.UblkAbi.F_USER_COPY;

import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import io.netty.channel.IoEventLoop;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A device's queues, one generation at a time: {@link #run} opens /dev/ublkcN and starts a {@link QueueEngine}
 * per hardware queue; {@link #release} frees a stopped generation and closes /dev/ublkcN, so that a quiesce or
 * a take-over can run the next. The targets and the counters outlive a generation: a resumed device may keep
 * its targets, and its totals never go back. Not thread-safe except for the counters and {@link #threads};
 * {@link UblkDevice} calls it under its lock.
 */
final class DeviceQueues {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceQueues.class);
    static final long QUEUE_TIMEOUT_MS = 15_000;

    private final int devId;
    private final DeviceInfo added;
    private final BufferMode mode;
    /** Replaced by release and run while status readers may iterate it from other threads. */
    private final List<QueueEngine> queues = new CopyOnWriteArrayList<>();
    private final List<Target> targets = new ArrayList<>();
    private int charFd = -1;
    private volatile long requestsServedBefore;
    private volatile long loneCommitsBefore;
    private volatile long eventsOffLoopBefore;

    DeviceQueues(DeviceInfo added, BufferMode mode) {
        this.devId = added.devId();
        this.added = added;
        this.mode = mode;
    }

    /**
     * Runs queue q on {@code loops.get(q % loops.size())} with {@code targetForQueue.apply(q)}; returns once
     * every queue has fetched. {@code ended} is called, on a thread of its own, when every queue of this
     * generation has stopped.
     */
    void run(List<IoEventLoop> loops, IntFunction<Target> targetForQueue, Consumer<List<QueueEngine>> ended)
            throws UringException, InterruptedException {
        for (IoEventLoop loop : loops) {
            if (loop.inEventLoop()) {
                throw new IllegalStateException("start/recover/resume blocks; call it off the queue loops");
            }
        }
        charFd = DeviceNodes.openCharDevice(devId);
        List<CompletableFuture<Void>> fetched = new ArrayList<>();
        for (int q = 0; q < added.nrHwQueues(); q++) {
            Target t = targetForQueue.apply(q);
            if (targets.stream().noneMatch(x -> x == t)) {
                targets.add(t); // one target may serve several queues; it is closed once
            }
            QueueEngine e = new QueueEngine(devId, q, added.queueDepth(), added.maxIoBufBytes(), mode,
                    added.has(F_USER_COPY), added.has(F_BATCH_IO), charFd, t, loops.get(q % loops.size()));
            queues.add(e);
            fetched.add(e.start());
        }
        try {
            CompletableFuture.allOf(fetched.toArray(CompletableFuture[]::new)).get(QUEUE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException("ublk device " + devId + ": a queue failed to start", e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("ublk device " + devId + ": queues did not start in time");
        }
        // A FETCH the kernel rejects completes at once; START_DEV would wait forever for it, so look first.
        Thread.sleep(100);
        for (QueueEngine e : queues) {
            if (e.stopped.isDone()) {
                throw new IllegalStateException("ublk device " + devId + " queue " + e.qid + ": kernel refused FETCH");
            }
        }
        List<QueueEngine> generation = List.copyOf(queues);
        // Off the queue loops: the callback takes the device's lock, which close() holds while it waits for them.
        CompletableFuture.allOf(generation.stream().map(q -> q.stopped).toArray(CompletableFuture[]::new))
                .thenRun(() -> Thread.ofPlatform().daemon().name("ublk-" + devId + "-ended")
                        .start(() -> ended.accept(generation)));
    }

    boolean isEmpty() {
        return queues.isEmpty();
    }

    /** Whether {@code generation} is the one running now (not one released by a quiesce). */
    boolean isCurrent(List<QueueEngine> generation) {
        return queues.containsAll(generation);
    }

    /** Refuses a blocking call made on one of the queue loops, which it would wait for. */
    void checkOffLoops(String what) {
        for (QueueEngine q : queues) {
            if (q.loop.inEventLoop()) {
                throw new IllegalStateException(what + " blocks; call it off the queue loops");
            }
        }
    }

    boolean stoppedWithin(long millis) throws InterruptedException {
        try {
            CompletableFuture.allOf(queues.stream().map(q -> q.stopped).toArray(CompletableFuture[]::new))
                    .get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (ExecutionException e) {
            throw new IllegalStateException("ublk device " + devId + ": a queue failed while stopping", e.getCause());
        }
    }

    /**
     * After STOP_DEV: waits for every queue to see its commands aborted, then releases them. A queue that does
     * not drain keeps its memory (the kernel may still write it); /dev/ublkcN is closed either way. Returns
     * whether all drained.
     */
    boolean drainAndRelease() {
        boolean drained = true;
        for (QueueEngine q : queues) {
            try {
                q.stopped.get(QUEUE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                drained = false;
                LOG.warn("ublk device {} queue {} did not drain: {}", devId, q.qid, e.toString());
            }
        }
        if (drained) {
            release();
        } else {
            closeCharDevice();
        }
        return drained;
    }

    /** Frees the stopped queues and closes /dev/ublkcN; their mappings would otherwise keep it open. */
    void release() {
        for (QueueEngine q : queues) {
            requestsServedBefore += q.requestsServed;
            eventsOffLoopBefore += q.eventsOffLoop;
            loneCommitsBefore += q.loneCommits;
            q.release();
        }
        queues.clear();
        closeCharDevice();
    }

    void closeCharDevice() {
        if (charFd >= 0) {
            LinuxCalls.close(charFd);
            charFd = -1;
        }
    }

    /** Hands the targets over to a take-over: the next {@link #run} collects its own. */
    List<Target> takeTargets() {
        List<Target> previous = List.copyOf(targets);
        targets.clear();
        return previous;
    }

    /**
     * After a take-over: the {@code previous} targets the new queues do not use are closed, or, when the
     * take-over failed, kept for {@link #closeTargets}.
     */
    void settleTargets(List<Target> previous, boolean tookOver) {
        for (Target t : previous) {
            if (targets.stream().noneMatch(x -> x == t)) {
                if (tookOver) {
                    closeTarget(t);
                } else {
                    targets.add(t);
                }
            }
        }
    }

    void closeTargets() {
        for (Target t : targets) {
            closeTarget(t);
        }
    }

    private void closeTarget(Target t) {
        try {
            t.close();
        } catch (RuntimeException e) {
            LOG.warn("ublk device {}: closing target: {}", devId, e.toString());
        }
    }

    long requestsServed() {
        long n = requestsServedBefore;
        for (QueueEngine q : queues) {
            n += q.requestsServed;
        }
        return n;
    }

    long loneCommits() {
        long n = loneCommitsBefore;
        for (QueueEngine q : queues) {
            n += q.loneCommits;
        }
        return n;
    }

    long eventsOffLoop() {
        long n = eventsOffLoopBefore;
        for (QueueEngine q : queues) {
            n += q.eventsOffLoop;
        }
        return n;
    }

    List<Thread> threads() {
        return queues.stream().map(q -> q.loopThread).toList();
    }
}
