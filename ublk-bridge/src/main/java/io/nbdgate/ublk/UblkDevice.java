package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import io.netty.channel.IoEventLoop;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One ublk device and its queues: create (ADD_DEV + SET_PARAMS), {@link #start} the queues on
 * Netty io_uring event loops, {@link #close} (STOP_DEV, wait for the queues, DEL_DEV). A recoverable
 * device can be {@link #quiesce}d and {@link #resume}d with fresh queues without losing I/O. Every
 * device still open when the JVM exits normally or on SIGTERM is stopped and deleted by a shutdown hook.
 * A device stopped or deleted by another process is let go of at once, and its listener told
 * ({@link #onRemovedElsewhere}).
 */
public final class UblkDevice implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(UblkDevice.class);
    private static final Set<UblkDevice> OPEN = ConcurrentHashMap.newKeySet();
    private static volatile boolean ownerCloses;
    private static final long QUEUE_TIMEOUT_MS = 15_000;
    private static final long RELEASE_TIMEOUT_MS = 30_000;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(UblkDevice::closeAll, "ublk-teardown"));
    }

    private final ControlDevice control;
    private final int id;
    private final BufferMode mode;
    private final DeviceInfo added;
    /** Replaced by quiesce and resume while status readers may iterate it from other threads. */
    private final List<QueueEngine> queues = new CopyOnWriteArrayList<>();
    private final List<Target> targets = new ArrayList<>();
    private int charFd = -1;
    private boolean started;
    private boolean quiesced;
    private boolean closed;
    private volatile Consumer<String> removedElsewhere = what -> { };
    private volatile Boolean safeStop;
    /** TRY_STOP_DEV stopped it (closeIfUnused): close() need not stop it again. */
    private boolean stoppedAlready;
    /** Counters of the queues released by {@link #quiesce}, so the device's totals never go back. */
    private volatile long requestsServedBefore;
    private volatile long eventsOffLoopBefore;

    private UblkDevice(ControlDevice control, DeviceInfo added, BufferMode mode) {
        this.control = control;
        this.id = added.devId();
        this.added = added;
        this.mode = mode;
    }

    /** ADD_DEV and SET_PARAMS; the buffer mode is the spec's or the best the kernel offers. */
    public static UblkDevice create(ControlDevice control, DeviceSpec spec, DeviceParams params)
            throws UringException, InterruptedException {
        UblkFeatures features = control.features();
        BufferMode mode = spec.mode() != null ? spec.mode() : features.bestBufferMode();
        if ((features.mask() & mode.deviceFlags()) != mode.deviceFlags()) {
            throw new IllegalArgumentException("kernel lacks " + mode.label() + " (features " + features + ")");
        }
        if (spec.unprivileged() && (mode != BufferMode.COPY || spec.recoverable())) {
            throw new IllegalArgumentException("an unprivileged device has copy mode and no recovery (the kernel's rule)");
        }
        // A zero-copy device also takes USER_COPY where the kernel has it: a target may then write data it
        // holds in memory (e.g. read replies that arrived with their headers) into the request's pages.
        long userCopy = mode == BufferMode.ZERO_COPY ? features.mask() & F_USER_COPY : 0;
        long batch = spec.batchIo() ? features.mask() & F_BATCH_IO : 0;
        // QUIESCE_DEV on a batch device fails new I/O with EIO until the next server has prepped every tag
        // (force_abort), so batch devices hand over by releasing /dev/ublkcN instead and do not ask for it.
        long quiesce = spec.recoverable() && batch == 0 ? F_QUIESCE : 0;
        long flags = mode.deviceFlags() | userCopy | (spec.recoverable() ? F_USER_RECOVERY | F_USER_RECOVERY_REISSUE : 0)
                | (features.mask() & (F_UPDATE_SIZE | quiesce)) | batch | (spec.unprivileged() ? F_UNPRIVILEGED_DEV : 0);
        DeviceInfo info = control.addDevice(spec.id(), spec.queues(), spec.depth(), spec.maxIoBytes(), flags);
        UblkDevice dev = new UblkDevice(control, info, mode);
        OPEN.add(dev);
        try {
            if (spec.unprivileged()) {
                // Every later command is checked against our access to /dev/ublkcN, which udev hands to the owner.
                DeviceNodes.awaitAccess(ControlDevice.charDevice(info.devId()));
            }
            control.setParams(info.devId(), params);
        } catch (UringException | RuntimeException | InterruptedException e) {
            dev.close();
            throw e;
        }
        LOG.info("ublk device {} added: {} queue(s) x depth {}, max io {} bytes, buffer mode {}, {} commands",
                info.devId(), info.nrHwQueues(), info.queueDepth(), info.maxIoBufBytes(), mode.label(),
                info.has(F_BATCH_IO) ? "batch" : "per-tag");
        return dev;
    }

    /**
     * Takes over a device whose server died (it must have been created recoverable): START_USER_RECOVERY,
     * queues on the given loops, END_USER_RECOVERY. The device keeps its id and its /dev/ublkbN.
     */
    public static UblkDevice recover(ControlDevice control, int devId, List<IoEventLoop> loops,
            IntFunction<Target> targetForQueue) throws UringException, InterruptedException {
        DeviceInfo info = control.deviceInfo(devId);
        startRecovery(control, devId);
        UblkDevice dev = new UblkDevice(control, info, modeOf(info));
        OPEN.add(dev);
        try {
            dev.runQueuesAndEndRecovery(loops, targetForQueue);
        } catch (UringException | InterruptedException | RuntimeException e) {
            dev.letGo();
            throw e;
        }
        LOG.info("ublk device {} recovered, buffer mode {}", devId, dev.mode.label());
        return dev;
    }

    /** The buffer mode a device was created with, from its flags. */
    public static BufferMode modeOf(DeviceInfo info) {
        return info.has(F_AUTO_BUF_REG) ? BufferMode.ZERO_COPY
                : info.has(F_USER_COPY) ? BufferMode.USER_COPY : BufferMode.COPY;
    }

    /**
     * START_USER_RECOVERY, retried while the kernel answers EBUSY: the dead server's /dev/ublkcN is released
     * by a work item after its last reference goes (its rings freed, its registered buffers dropped).
     */
    private static void startRecovery(ControlDevice control, int devId) throws UringException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RELEASE_TIMEOUT_MS);
        while (true) {
            try {
                control.startUserRecovery(devId);
                return;
            } catch (UringException e) {
                if (e.errno() != Errno.EBUSY || System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(50);
            }
        }
    }

    /**
     * A take-over that failed half way: the device is not stopped, so the kernel keeps holding its I/O. The
     * queues' commands already given to the kernel keep /dev/ublkcN referenced (and their memory in use) until
     * their rings go, at the latest when this process exits; then the device is QUIESCED for the next server.
     */
    private synchronized void letGo() {
        if (closed) {
            return;
        }
        closed = true;
        if (queues.isEmpty() && charFd >= 0) {
            LinuxCalls.close(charFd);
            charFd = -1;
        }
        OPEN.remove(this);
        LOG.warn("ublk device {} left to the kernel, which holds its I/O for the next server{}", id,
                queues.isEmpty() ? "" : " (once this process has exited)");
    }

    /** The second half of a take-over, after START_USER_RECOVERY: fresh queues FETCH, END_USER_RECOVERY. */
    private void runQueuesAndEndRecovery(List<IoEventLoop> loops, IntFunction<Target> targetForQueue)
            throws UringException, InterruptedException {
        runQueues(loops, targetForQueue);
        control.endUserRecovery(id);
        started = true;
    }

    /**
     * Runs queue q on {@code loops.get(q % loops.size())} with {@code targetForQueue.apply(q)}, then
     * START_DEV. Returns once /dev/ublkbN exists. Must not run on one of those loops. The device owns
     * the targets from here on: {@link #close} closes each of them once, after the queues drained.
     */
    public void start(List<IoEventLoop> loops, IntFunction<Target> targetForQueue)
            throws UringException, InterruptedException {
        runQueues(loops, targetForQueue);
        control.startDevice(id);
        started = true;
        DeviceNodes.awaitBlockNode(id);
        if (added.has(F_UNPRIVILEGED_DEV)) {
            DeviceNodes.awaitAccess(blockDevice()); // the owner's programs open it as soon as we report it
        }
        LOG.info("ublk device {} started as {}", id, blockDevice());
    }

    private void runQueues(List<IoEventLoop> loops, IntFunction<Target> targetForQueue)
            throws UringException, InterruptedException {
        for (IoEventLoop loop : loops) {
            if (loop.inEventLoop()) {
                throw new IllegalStateException("start/recover/resume blocks; call it off the queue loops");
            }
        }
        charFd = DeviceNodes.openCharDevice(id);
        List<CompletableFuture<Void>> fetched = new ArrayList<>();
        for (int q = 0; q < added.nrHwQueues(); q++) {
            Target t = targetForQueue.apply(q);
            if (targets.stream().noneMatch(x -> x == t)) {
                targets.add(t); // one target may serve several queues; it is closed once
            }
            QueueEngine e = new QueueEngine(id, q, added.queueDepth(), added.maxIoBufBytes(), mode,
                    added.has(F_USER_COPY), added.has(F_BATCH_IO), charFd, t, loops.get(q % loops.size()));
            queues.add(e);
            fetched.add(e.start());
        }
        try {
            CompletableFuture.allOf(fetched.toArray(CompletableFuture[]::new))
                    .get(QUEUE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException("ublk device " + id + ": a queue failed to start", e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("ublk device " + id + ": queues did not start in time");
        }
        // A FETCH the kernel rejects completes at once; START_DEV would wait forever for it, so look first.
        Thread.sleep(100);
        for (QueueEngine e : queues) {
            if (e.stopped.isDone()) {
                throw new IllegalStateException("ublk device " + id + " queue " + e.qid + ": kernel refused FETCH");
            }
        }
        List<QueueEngine> engines = List.copyOf(queues);
        // Off the queue loops: queuesEnded takes this device's lock, which close() holds while it waits for them.
        CompletableFuture.allOf(engines.stream().map(q -> q.stopped).toArray(CompletableFuture[]::new))
                .thenRun(() -> Thread.ofPlatform().daemon().name("ublk-" + id + "-ended")
                        .start(() -> queuesEnded(engines)));
    }

    /**
     * Called with {@code what} happened ("stopped by another process", ...) when the kernel stopped the
     * device without this object asking: another ublk tool sent STOP_DEV or DEL_DEV. By then the queues and
     * /dev/ublkcN are released (so the other tool's DEL_DEV can return) and the device is closed here.
     */
    public void onRemovedElsewhere(Consumer<String> listener) {
        removedElsewhere = listener;
    }

    /** Every queue of one generation has stopped: by our close or quiesce, or by someone else's STOP_DEV. */
    private synchronized void queuesEnded(List<QueueEngine> engines) {
        if (closed || quiesced || !queues.containsAll(engines)) {
            return;
        }
        String what;
        try {
            DeviceInfo info = control.deviceInfo(id);
            if (info.state() != S_DEV_DEAD) {
                return; // the event loops shutting down with the process: close() or the shutdown hook follows
            }
            what = "stopped by another process (STOP_DEV or DEL_DEV)";
        } catch (UringException e) {
            // ENOENT: DEL_DEV has removed /dev/ublkcN, the path GET_DEV_INFO2 names, and waits for us to let go.
            if (e.errno() != Errno.ENODEV && e.errno() != Errno.ENOENT) {
                LOG.warn("ublk device {}: queues ended, state unknown: {}", id, e.getMessage());
                return;
            }
            what = "deleted by another process";
        }
        closed = true;
        releaseQueues();
        for (Target t : targets) {
            closeTarget(t);
        }
        OPEN.remove(this);
        LOG.debug("ublk device {} ({}) was {}; released it", id, blockDevice(), what); // the listener says it
        removedElsewhere.accept(what);
    }

    public int id() { return id; }
    public BufferMode mode() { return mode; }
    /** The device runs with UBLK_F_BATCH_IO: its queues fetch and commit many tags per command. */
    public boolean batchIo() { return added.has(F_BATCH_IO); }
    /** Whether {@link #resize} can work: the device was made with UBLK_F_UPDATE_SIZE (the kernel has it). */
    public boolean resizable() { return added.has(F_UPDATE_SIZE); }
    public String blockDevice() { return ControlDevice.blockDevice(id); }
    public String charDevice() { return ControlDevice.charDevice(id); }

    /** UPDATE_SIZE: the block device's capacity becomes {@code bytes}, live; the kernel tells udev. */
    public synchronized void resize(long bytes) throws UringException {
        control.updateSize(id, bytes);
    }

    /** Current kernel view (state LIVE/DEAD/QUIESCED/FAIL_IO, server pid, flags). */
    public DeviceInfo info() throws UringException {
        return control.deviceInfo(id);
    }

    public DeviceParams params() throws UringException {
        return control.params(id);
    }

    /** Requests taken from the kernel so far, over all queues (also those released by a quiesce). */
    public long requestsServed() {
        long n = requestsServedBefore;
        for (QueueEngine q : queues) {
            n += q.requestsServed;
        }
        return n;
    }

    /** Completions that reached a queue off its own loop thread; stays 0 by design. */
    public long eventsOffLoop() {
        long n = eventsOffLoopBefore;
        for (QueueEngine q : queues) {
            n += q.eventsOffLoop;
        }
        return n;
    }

    /** The threads the queues ran on (null until a queue began). */
    public List<Thread> queueThreads() {
        return queues.stream().map(q -> q.loopThread).toList();
    }

    /**
     * Holds the device's I/O in the kernel so that fresh queues can take it over without losing any:
     * QUIESCE_DEV makes the kernel stop dispatching (new and requeued requests wait in the block layer)
     * and abort the queues' idle commands; requests already in service complete normally. Once every queue has stopped, the queues
     * are released and /dev/ublkcN is closed, and the kernel reports the device QUIESCED. I/O then waits
     * until {@link #resume} takes the device over; {@link #close} (also the shutdown hook) instead stops
     * it and fails the waiting I/O. The targets stay open for {@link #resume}.
     *
     * <p>Needs a device created {@link DeviceSpec#recoverable() recoverable} on a kernel with
     * UBLK_F_QUIESCE. {@code timeoutMillis} bounds each QUIESCE_DEV's wait for an idle command per queue
     * (0 = no bound); the queues then get 15 s to stop. Blocks; call it off the queue loops. If it
     * throws, the kernel may already hold I/O: call it again, or close the device.
     */
    public synchronized void quiesce(long timeoutMillis) throws UringException, InterruptedException {
        if (closed || !started || quiesced) {
            throw new IllegalStateException("ublk device " + id + " is not live here; nothing to quiesce");
        }
        if (!added.has(F_QUIESCE)) {
            throw new IllegalStateException("ublk device " + id
                    + " cannot be quiesced: it was not created recoverable, or the kernel lacks UBLK_F_QUIESCE");
        }
        for (QueueEngine q : queues) {
            if (q.loop.inEventLoop()) {
                throw new IllegalStateException("quiesce blocks; call it off the queue loops");
            }
        }
        control.quiesce(id, timeoutMillis);
        int calls = 1;
        // A request in service during QUIESCE_DEV is committed with COMMIT_AND_FETCH, which gives the
        // kernel a new command that this QUIESCE_DEV did not see; the next QUIESCE_DEV aborts it.
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(QUEUE_TIMEOUT_MS);
        while (!queuesStoppedWithin(100)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("ublk device " + id + ": queues did not stop after QUIESCE_DEV");
            }
            control.quiesce(id, timeoutMillis);
            calls++;
        }
        releaseQueues();
        // The kernel marks the device QUIESCED in a work item once /dev/ublkcN is released.
        DeviceInfo info = control.deviceInfo(id);
        for (int i = 0; i < QUEUE_TIMEOUT_MS / 20 && info.state() != S_DEV_QUIESCED; i++) {
            Thread.sleep(20);
            info = control.deviceInfo(id);
        }
        if (info.state() != S_DEV_QUIESCED) {
            throw new IllegalStateException("ublk device " + id + " is " + info.stateName()
                    + ", not QUIESCED, after its queues stopped");
        }
        quiesced = true;
        LOG.info("ublk device {} quiesced ({} QUIESCE_DEV); its I/O waits for the next server", id, calls);
    }

    /**
     * Takes a {@link #quiesce}d device over again with fresh queues, as {@link #recover} does for a device
     * whose server died: START_USER_RECOVERY, queue q on {@code loops.get(q % loops.size())} with {@code
     * targetForQueue.apply(q)}, END_USER_RECOVERY. Returns once the device is LIVE; the I/O held meanwhile
     * reaches the new queues. Targets of the previous queues that the new ones do not use are closed.
     */
    public synchronized void resume(List<IoEventLoop> loops, IntFunction<Target> targetForQueue)
            throws UringException, InterruptedException {
        if (closed || !quiesced) {
            throw new IllegalStateException("ublk device " + id + " was not quiesced here; nothing to resume");
        }
        List<Target> previous = List.copyOf(targets);
        targets.clear();
        boolean resumed = false;
        try {
            control.startUserRecovery(id);
            runQueuesAndEndRecovery(loops, targetForQueue);
            resumed = true;
        } finally {
            for (Target t : previous) {
                if (targets.stream().noneMatch(x -> x == t)) {
                    if (resumed) {
                        closeTarget(t);
                    } else {
                        targets.add(t); // the take-over failed: close() still owns it
                    }
                }
            }
        }
        quiesced = false;
        LOG.info("ublk device {} resumed with fresh queues", id);
    }

    private boolean queuesStoppedWithin(long millis) throws InterruptedException {
        try {
            CompletableFuture.allOf(queues.stream().map(q -> q.stopped).toArray(CompletableFuture[]::new))
                    .get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (ExecutionException e) {
            throw new IllegalStateException("ublk device " + id + ": a queue failed while stopping", e.getCause());
        }
    }

    /** Frees the stopped queues and closes /dev/ublkcN; their mappings would otherwise keep it open. */
    private void releaseQueues() {
        for (QueueEngine q : queues) {
            requestsServedBefore += q.requestsServed;
            eventsOffLoopBefore += q.eventsOffLoop;
            q.release();
        }
        queues.clear();
        if (charFd >= 0) {
            LinuxCalls.close(charFd);
            charFd = -1;
        }
    }

    private void closeTarget(Target t) {
        try {
            t.close();
        } catch (RuntimeException e) {
            LOG.warn("ublk device {}: closing target: {}", id, e.toString());
        }
    }

    /** Whether {@link #closeIfUnused} can ask the kernel (UBLK_F_SAFE_STOP_DEV); asked once, it does not change. */
    public boolean canStopIfUnused() {
        Boolean can = safeStop;
        if (can == null) {
            try {
                can = (control.features().mask() & F_SAFE_STOP_DEV) != 0;
            } catch (UringException e) {
                can = false;
            }
            safeStop = can;
        }
        return can;
    }

    /**
     * {@link #close} if nobody has the block device open: TRY_STOP_DEV decides that in the kernel, atomically
     * with blocking new opens. Returns false, the device untouched, while it is open (mounted, held by a
     * process or a stacked device).
     */
    public synchronized boolean closeIfUnused() throws UringException {
        if (closed) {
            return true;
        }
        if (started && !quiesced) {
            try {
                control.tryStopDevice(id);
                stoppedAlready = true;
            } catch (UringException e) {
                if (e.errno() == Errno.EBUSY) {
                    return false;
                }
                throw e;
            }
        }
        close();
        return true;
    }

    /** Whether the device is gone: closed here, or removed by another process. */
    public synchronized boolean isClosed() {
        return closed;
    }

    /** STOP_DEV, wait for the queues to see their commands aborted, close, DEL_DEV. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        boolean inUse = false;
        try {
            if ((started || !queues.isEmpty()) && !stoppedAlready) {
                inUse = stop();
            }
            boolean drained = true;
            for (QueueEngine q : queues) {
                try {
                    q.stopped.get(QUEUE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                } catch (Exception e) {
                    drained = false;
                    LOG.warn("ublk device {} queue {} did not drain: {}", id, q.qid, e.toString());
                }
            }
            if (drained) {
                releaseQueues();
            } else if (charFd >= 0) {
                LinuxCalls.close(charFd);
                charFd = -1;
            }
            for (Target t : targets) {
                closeTarget(t);
            }
            if (drained && !inUse) {
                control.deleteDevice(id);
                DeviceNodes.awaitNodesGone(id);
                LOG.info("ublk device {} deleted", id);
            } else {
                deleteAsync();
                DeviceNodes.awaitNodesGone(id);
                LOG.info("ublk device {} deleted{}", id, inUse
                        ? " while in use: the kernel frees it once its last user (a mount, an open file) lets go" : "");
            }
        } catch (UringException e) {
            LOG.warn("ublk device {}: teardown: {}", id, e.getMessage());
        } finally {
            OPEN.remove(this);
        }
    }

    /**
     * STOP_DEV; returns whether the block device was open then (TRY_STOP_DEV said EBUSY): its users keep the
     * kernel's device alive after DEL_DEV, which would wait for them (a mount: until it is unmounted).
     */
    private boolean stop() {
        boolean inUse = false;
        if (canStopIfUnused()) {
            try {
                control.tryStopDevice(id);
                return false;
            } catch (UringException e) {
                if (e.errno() == Errno.ENODEV) {
                    return false; // stopped already (closeIfUnused, or another tool)
                }
                inUse = e.errno() == Errno.EBUSY;
                if (!inUse) {
                    LOG.warn("ublk device {}: {}", id, e.getMessage());
                }
            }
        }
        try {
            control.stopDevice(id);
        } catch (UringException e) {
            LOG.warn("ublk device {}: {}", id, e.getMessage());
        }
        return inUse;
    }

    private void deleteAsync() throws UringException {
        // Commands or users still hold the device; DEL_DEV would wait for them.
        control.deleteDeviceAsync(id);
    }

    /**
     * The process's own shutdown closes its devices, in its own order and time (a device still in use may get
     * a while to be closed by its users): the hook that stops every open device at exit then does nothing.
     */
    public static void ownerClosesAtExit() {
        ownerCloses = true;
    }

    static void closeAll() {
        if (ownerCloses) {
            return;
        }
        for (UblkDevice d : List.copyOf(OPEN)) {
            d.close();
        }
    }
}
