package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.UringException;
import io.netty.channel.IoEventLoop;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One ublk device's control lifecycle ({@link State}): create (ADD_DEV + SET_PARAMS), {@link #start} the queues
 * ({@link DeviceQueues}) on Netty io_uring event loops, {@link #close} (STOP_DEV, wait for the queues, DEL_DEV),
 * with the UBLK_F_* flags {@link DeviceSpec#addFlags} chooses. A recoverable
 * device can be {@link #quiesce}d and {@link #resume}d with fresh queues without losing I/O. Every
 * device still open when the JVM exits normally or on SIGTERM is stopped and deleted by a shutdown hook
 * ({@link OpenDevices}).
 * A device stopped or deleted by another process is let go of at once, and its listener told
 * ({@link #onRemovedElsewhere}).
 */
public final class UblkDevice implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(UblkDevice.class);
    private static final long QUEUE_TIMEOUT_MS = DeviceQueues.QUEUE_TIMEOUT_MS;
    private static final long RELEASE_TIMEOUT_MS = 30_000;

    private final ControlDevice control;
    private final int id;
    private final BufferMode mode;
    private final DeviceInfo added;
    private final DeviceQueues queues;
    private State state = State.ADDED;
    private volatile Consumer<String> removedElsewhere = what -> { };

    /**
     * The device's lifecycle in this process. {@link #create} leaves it ADDED, {@link #start} and {@link #recover}
     * make it LIVE, {@link #quiesce} QUIESCED and {@link #resume} LIVE again; {@link #close}, a failed take-over
     * and a removal by another process end it CLOSED, from any state.
     */
    private enum State { ADDED, LIVE, QUIESCED, CLOSED }

    private UblkDevice(ControlDevice control, DeviceInfo added, BufferMode mode) {
        this.control = control;
        this.id = added.devId();
        this.added = added;
        this.mode = mode;
        this.queues = new DeviceQueues(added, mode);
    }

    /** ADD_DEV and SET_PARAMS; the buffer mode is the spec's or the best the kernel offers. */
    public static UblkDevice create(ControlDevice control, DeviceSpec spec, DeviceParams params)
            throws UringException, InterruptedException {
        UblkFeatures features = control.features();
        long flags = spec.addFlags(features);
        DeviceInfo info = control.addDevice(spec.id(), spec.queues(), spec.depth(), spec.maxIoBytes(), flags);
        UblkDevice dev = new UblkDevice(control, info, spec.modeFor(features));
        OpenDevices.add(dev);
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
                info.devId(), info.nrHwQueues(), info.queueDepth(), info.maxIoBufBytes(), dev.mode.label(),
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
        control.startUserRecovery(devId, RELEASE_TIMEOUT_MS);
        UblkDevice dev = new UblkDevice(control, info, BufferMode.of(info));
        OpenDevices.add(dev);
        try {
            dev.runQueuesAndEndRecovery(loops, targetForQueue);
        } catch (UringException | InterruptedException | RuntimeException e) {
            dev.letGo();
            throw e;
        }
        LOG.info("ublk device {} recovered, buffer mode {}", devId, dev.mode.label());
        return dev;
    }

    /**
     * A take-over that failed half way: the device is not stopped, so the kernel keeps holding its I/O. The
     * queues' commands already given to the kernel keep /dev/ublkcN referenced (and their memory in use) until
     * their rings go, at the latest when this process exits; then the device is QUIESCED for the next server.
     */
    private synchronized void letGo() {
        if (state == State.CLOSED) {
            return;
        }
        state = State.CLOSED;
        if (queues.isEmpty()) {
            queues.closeCharDevice();
        }
        OpenDevices.remove(this);
        LOG.warn("ublk device {} left to the kernel, which holds its I/O for the next server{}", id,
                queues.isEmpty() ? "" : " (once this process has exited)");
    }

    /** The second half of a take-over, after START_USER_RECOVERY: fresh queues FETCH, END_USER_RECOVERY. */
    private void runQueuesAndEndRecovery(List<IoEventLoop> loops, IntFunction<Target> targetForQueue)
            throws UringException, InterruptedException {
        queues.run(loops, targetForQueue, this::queuesEnded);
        control.endUserRecovery(id);
        state = State.LIVE;
    }

    /**
     * Runs queue q on {@code loops.get(q % loops.size())} with {@code targetForQueue.apply(q)}, then
     * START_DEV. Returns once /dev/ublkbN exists. Must not run on one of those loops. The device owns
     * the targets from here on: {@link #close} closes each of them once, after the queues drained.
     */
    public void start(List<IoEventLoop> loops, IntFunction<Target> targetForQueue)
            throws UringException, InterruptedException {
        queues.run(loops, targetForQueue, this::queuesEnded);
        control.startDevice(id);
        state = State.LIVE;
        DeviceNodes.awaitBlockNode(id);
        if (added.has(F_UNPRIVILEGED_DEV)) {
            DeviceNodes.awaitAccess(blockDevice()); // the owner's programs open it as soon as we report it
        }
        LOG.info("ublk device {} started as {}", id, blockDevice());
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
        if (state == State.CLOSED || state == State.QUIESCED || !queues.isCurrent(engines)) {
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
        state = State.CLOSED;
        queues.release();
        queues.closeTargets();
        OpenDevices.remove(this);
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
        return queues.requestsServed();
    }

    /** Commits of a single request that posted no completion (batch commands); at queue depth 1, nearly all. */
    public long loneCommits() {
        return queues.loneCommits();
    }

    /** Completions that reached a queue off its own loop thread; stays 0 by design. */
    public long eventsOffLoop() {
        return queues.eventsOffLoop();
    }

    /** The threads the queues ran on (null until a queue began). */
    public List<Thread> queueThreads() {
        return queues.threads();
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
        if (state != State.LIVE) {
            throw new IllegalStateException("ublk device " + id + " is not live here; nothing to quiesce");
        }
        if (!added.has(F_QUIESCE)) {
            throw new IllegalStateException("ublk device " + id
                    + " cannot be quiesced: it was not created recoverable, or the kernel lacks UBLK_F_QUIESCE");
        }
        queues.checkOffLoops("quiesce");
        control.quiesce(id, timeoutMillis);
        int calls = 1;
        // A request in service during QUIESCE_DEV is committed with COMMIT_AND_FETCH, which gives the
        // kernel a new command that this QUIESCE_DEV did not see; the next QUIESCE_DEV aborts it.
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(QUEUE_TIMEOUT_MS);
        while (!queues.stoppedWithin(100)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("ublk device " + id + ": queues did not stop after QUIESCE_DEV");
            }
            control.quiesce(id, timeoutMillis);
            calls++;
        }
        queues.release();
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
        state = State.QUIESCED;
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
        if (state != State.QUIESCED) {
            throw new IllegalStateException("ublk device " + id + " was not quiesced here; nothing to resume");
        }
        List<Target> previous = queues.takeTargets();
        boolean resumed = false;
        try {
            control.startUserRecovery(id);
            runQueuesAndEndRecovery(loops, targetForQueue);
            resumed = true;
        } finally {
            queues.settleTargets(previous, resumed);
        }
        LOG.info("ublk device {} resumed with fresh queues", id);
    }

    /** Whether {@link #closeIfUnused} can ask the kernel (UBLK_F_SAFE_STOP_DEV). */
    public boolean canStopIfUnused() {
        return control.canTryStop();
    }

    /**
     * {@link #close} if nobody has the block device open: TRY_STOP_DEV decides that in the kernel, atomically
     * with blocking new opens. Returns false, the device untouched, while it is open (mounted, held by a
     * process or a stacked device).
     */
    public synchronized boolean closeIfUnused() throws UringException {
        if (state == State.CLOSED) {
            return true;
        }
        boolean stopped = false;
        if (state == State.LIVE) {
            try {
                control.tryStopDevice(id);
                stopped = true;
            } catch (UringException e) {
                if (e.errno() == Errno.EBUSY) {
                    return false;
                }
                throw e;
            }
        }
        close(stopped);
        return true;
    }

    /** Whether the device is gone: closed here, or removed by another process. */
    public synchronized boolean isClosed() {
        return state == State.CLOSED;
    }

    /** STOP_DEV, wait for the queues to see their commands aborted, close, DEL_DEV. Idempotent. */
    @Override
    public synchronized void close() {
        close(false);
    }

    /** {@code stoppedAlready}: TRY_STOP_DEV has stopped it ({@link #closeIfUnused}). */
    private void close(boolean stoppedAlready) {
        if (state == State.CLOSED) {
            return;
        }
        boolean stopNeeded = (state != State.ADDED || !queues.isEmpty()) && !stoppedAlready;
        state = State.CLOSED;
        boolean inUse = false;
        try {
            if (stopNeeded) {
                inUse = stop();
            }
            boolean drained = queues.drainAndRelease();
            queues.closeTargets();
            if (drained && !inUse) {
                control.deleteDevice(id);
                DeviceNodes.awaitNodesGone(id);
                LOG.info("ublk device {} deleted", id);
            } else {
                control.deleteDeviceAsync(id); // commands or users still hold the device; DEL_DEV would wait
                DeviceNodes.awaitNodesGone(id);
                LOG.info("ublk device {} deleted{}", id, inUse
                        ? " while in use: the kernel frees it once its last user (a mount, an open file) lets go" : "");
            }
        } catch (UringException e) {
            LOG.warn("ublk device {}: teardown: {}", id, e.getMessage());
        } finally {
            OpenDevices.remove(this);
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

    /**
     * The process's own shutdown closes its devices, in its own order and time (a device still in use may get
     * a while to be closed by its users): the hook that stops every open device at exit then does nothing.
     */
    public static void ownerClosesAtExit() {
        OpenDevices.ownerClosesAtExit();
    }
}
