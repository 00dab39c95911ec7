package io.nbdgate.gateway.device;

import io.netty.channel.IoEventLoop;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.metrics.DeviceMetricsSource;
import io.nbdgate.gateway.metrics.QueueCounters;
import io.nbdgate.gateway.session.LinkStatus;
import io.nbdgate.gateway.session.QueueSession;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.ControlDevice;
import io.nbdgate.ublk.UblkDevice;
import io.nbdgate.uring.LinuxCalls;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An NBD export served as /dev/ublkbN: one NBD connection per ublk queue, each on that queue's event
 * loop. {@link #attach} either returns a live device or leaves nothing behind.
 */
public final class NbdDevice implements AutoCloseable, DeviceMetricsSource {
    private static final Logger LOG = LoggerFactory.getLogger(NbdDevice.class);

    private final DeviceOptions options;
    private volatile ExportInfo export;
    private volatile boolean resizing;
    private final UblkDevice device;
    private final List<QueueSession> sessions;
    private final ControlDevice control;
    private final int zeroFd;
    private final String modeReason;
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();
    private final CompletableFuture<NbdDevice> gone = new CompletableFuture<>();
    /** Set when another process stopped or deleted the device: what happened, for list and the log. */
    private volatile String removedElsewhere;
    /** Set while a deferred detach waits for the last user to close the device. */
    private volatile boolean detachPending;
    /** Where the device's state record is kept while it is served here; null: it has none (not recoverable). */
    private final DeviceRecords records;

    NbdDevice(DeviceOptions options, ExportInfo export, UblkDevice device, List<QueueSession> sessions,
              ControlDevice control, int zeroFd, String modeReason, DeviceRecords records) {
        this.records = records;
        this.options = options;
        this.export = export;
        this.device = device;
        this.sessions = sessions;
        this.control = control;
        this.zeroFd = zeroFd;
        this.modeReason = modeReason;
        if (options.autoResize()) {
            sessions.forEach(s -> s.onExportGrowth(bytes -> autoResize(bytes)));
        }
        device.onRemovedElsewhere(what -> {
            removedElsewhere = what;
            LOG.atError().addKeyValue("device", options.name()).addKeyValue("state", "removed")
                    .log("{}: {} was {}; nbdgate let go of it and will not add it again by itself", options.name(),
                    device.blockDevice(), what);
            close();
        });
    }

    /**
     * Connects, decides queues and buffer mode, creates and starts the ublk device; or takes over the device of
     * the same name that a dead process left. Blocks; call it off the given loops. On failure everything made
     * so far is closed (an orphan stays as it was) and the cause is one line.
     */
    public static NbdDevice attach(DeviceOptions o, List<IoEventLoop> loops) throws NbdConnectionException {
        return Attacher.attach(o, loops);
    }

    /** The export a device serves, as logs, errors and state records name it. */
    public static String describe(DeviceOptions o) {
        return "export '" + o.exportName() + "' at " + o.address();
    }

    static String oneLine(Throwable t) {
        String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        return m.lines().findFirst().orElse(m);
    }

    @Override
    public String name() {
        return options.name();
    }

    public String blockDevice() {
        return device.blockDevice();
    }

    public int id() {
        return device.id();
    }

    public BufferMode mode() {
        return device.mode();
    }

    /** The ublk device takes many requests per command (UBLK_F_BATCH_IO). */
    public boolean batchIo() {
        return device.batchIo();
    }

    /** Created recoverable: a take-over can serve it after this process is gone. */
    public boolean recoverable() {
        return records != null;
    }

    @Override
    public String bufferMode() {
        return mode().label();
    }

    @Override
    public int queueDepth() {
        return options.depth();
    }

    @Override
    public List<QueueCounters> queueCounters() {
        return sessions.stream().map(QueueSession::counters).toList();
    }

    public String modeReason() {
        return modeReason;
    }

    public int queues() {
        return sessions.size();
    }

    public ExportInfo export() {
        return export;
    }

    public DeviceOptions options() {
        return options;
    }

    /** True while every queue's connection is up. */
    public boolean healthy() {
        return removedElsewhere == null && sessions.stream().allMatch(QueueSession::connected);
    }

    /** Each queue's connection: state, attempts, last error, counts. Any thread. */
    @Override
    public List<LinkStatus> linkStates() {
        return sessions.stream().map(QueueSession::status).toList();
    }

    /**
     * The device's connection in a few words for `list` and the status endpoint: connected, or the worst queue's
     * state with its attempt, since when, and the last error.
     */
    public String stateSummary() {
        if (removedElsewhere != null) {
            return "removed: " + removedElsewhere;
        }
        String pending = detachPending ? "; detach pending until its last user closes it" : "";
        return linkSummary() + pending;
    }

    /** The device for /metrics: "removed", or its worst queue's connection state. */
    @Override
    public String state() {
        return removedElsewhere != null ? "removed" : worstLink().label();
    }

    private LinkStatus worstLink() {
        List<LinkStatus> all = linkStates();
        LinkStatus worst = all.getFirst();
        for (LinkStatus s : all) {
            if (s.state().compareTo(worst.state()) > 0 && s.state() != LinkStatus.State.CLOSED
                    || worst.state() == LinkStatus.State.CONNECTED && s.state() != LinkStatus.State.CONNECTED) {
                worst = s;
            }
        }
        return worst;
    }

    private String linkSummary() {
        LinkStatus worst = worstLink();
        return switch (worst.state()) {
            case CONNECTED -> "connected";
            case RECONNECTING -> "reconnecting (attempt " + worst.attempt() + ", since "
                    + java.time.format.DateTimeFormatter.ISO_INSTANT.format(worst.since().truncatedTo(
                            java.time.temporal.ChronoUnit.SECONDS)) + "; " + worst.lastError() + ")";
            case FAILED -> "failed (I/O fails with EIO: " + worst.lastError() + ")";
            case CLOSED -> "closed";
        };
    }

    /** Connections lost and replaced (or being replaced), over all queues. */
    public long reconnects() {
        return sessions.stream().mapToLong(s -> s.status().reconnects()).sum();
    }

    /** Requests sent again on a new connection because the old one ended without answering them. */
    public long resentRequests() {
        return sessions.stream().mapToLong(s -> s.status().resent()).sum();
    }

    /** Completes with this device once it is gone: detached, or removed by another process. */
    public CompletableFuture<NbdDevice> gone() {
        return gone;
    }

    /** What another process did to the device ("stopped by another process ..."), or null. */
    public String removedElsewhere() {
        return removedElsewhere;
    }

    public boolean detachPending() {
        return detachPending;
    }

    /**
     * Asks the server for the export's size again (a connection of its own) and gives the device that size, live
     * (UPDATE_SIZE): a file system on it can then grow (resize2fs, xfs_growfs). A smaller export is refused unless
     * {@code shrink}: what lies past the new end is gone for whatever uses the device. Returns the line to print;
     * a refusal or failure is a {@link ResizeException} with the reason, nothing changed. Blocks.
     */
    public synchronized String resize(boolean shrink) {
        resizing = true;
        try {
            return resizeNow(shrink);
        } finally {
            resizing = false;
        }
    }

    private String resizeNow(boolean shrink) {
        if (!device.resizable()) {
            throw new ResizeException(name() + ": this kernel cannot resize a ublk device (no UBLK_F_UPDATE_SIZE); "
                    + "detach and attach it again");
        }
        ExportInfo now;
        try {
            now = io.nbdgate.gateway.nbd.client.NbdQuery.info(options.address(), options.handshake(),
                    options.tls(), (int) options.connectTimeout().toMillis(), describe(options));
        } catch (RuntimeException e) {
            throw new ResizeException(name() + ": asking the server for the export's size: " + oneLine(e));
        }
        long was;
        try {
            was = device.params().sizeBytes(); // the kernel's: a device taken over may be smaller than its export
        } catch (io.nbdgate.uring.UringException e) {
            throw new ResizeException(name() + ": GET_PARAMS failed: " + e.getMessage());
        }
        long bytes = DeviceGeometry.params(now, device.mode(), options.readOnly()).sizeBytes();
        if (bytes == was) {
            return name() + ": " + blockDevice() + " unchanged at " + bytes + " bytes (the export's size)";
        }
        if (bytes < was && !shrink) {
            throw new ResizeException(name() + ": the export shrank from " + was + " to " + bytes + " bytes; "
                    + blockDevice() + " keeps its size (--shrink cuts it: what lies past the new end is gone)");
        }
        if (bytes > was) {
            // The server checks requests against the size it announced on each connection: every queue
            // connects again (what it had in flight goes out again) before the kernel may send past the old end.
            try {
                CompletableFuture.allOf(sessions.stream().map(s -> s.renewLink("resize: reconnecting to see "
                        + bytes + " bytes")).toArray(CompletableFuture[]::new))
                        .get(options.connectTimeout().toMillis() + 30_000, java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                Throwable c = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null
                        ? e.getCause() : e;
                throw new ResizeException(name() + ": the queues did not connect again to see the new size ("
                        + oneLine(c) + "); " + blockDevice() + " keeps " + was + " bytes");
            }
        }
        try {
            device.resize(bytes);
        } catch (io.nbdgate.uring.UringException e) {
            throw new ResizeException(name() + ": UPDATE_SIZE failed: " + e.getMessage());
        }
        sessions.forEach(s -> s.resized(bytes)); // later reconnects check the export against this size
        export = export.withSize(now.size());
        LOG.atInfo().addKeyValue("device", name()).addKeyValue("state", "resized")
                .log("{}: {} resized from {} to {} bytes", name(), blockDevice(), was, bytes);
        return name() + ": " + blockDevice() + " resized from " + was + " to " + bytes + " bytes";
    }

    /** auto-resize: a reconnect found the export at {@code bytes}, more than the device has. Off the loop. */
    private void autoResize(long bytes) {
        if (resizing) {
            return; // the reconnects of a resize under way see the larger export too
        }
        LOG.info("{}: the export has grown to {} bytes; resizing {} (auto-resize)", name(), bytes, blockDevice());
        Thread.ofVirtual().name(name() + "-auto-resize").start(() -> {
            try {
                resize(false);
            } catch (ResizeException e) {
                LOG.warn("{} (auto-resize)", e.getMessage());
            }
        });
    }

    /** A resize refused or failed; the message is the one line to show. */
    public static final class ResizeException extends RuntimeException {
        ResizeException(String message) {
            super(message);
        }
    }

    /**
     * Detaches as {@code mode} says when the device is open; at once when it is not. Returns null when the device
     * is gone (or, DEFERRED, will go once its last user closes it), else the one line that says who holds it
     * (REFUSE; nothing changed). Blocks; call it off the event loops.
     */
    public String detach(DetachMode mode) {
        if (mode == DetachMode.FORCE) {
            closeNow();
            return null;
        }
        if (closeIfUnused()) {
            return null;
        }
        if (mode == DetachMode.REFUSE) {
            return BlockHolders.describe(blockDevice(), BlockHolders.of(blockDevice()));
        }
        if (!detachPending) {
            detachPending = true;
            LOG.info("{}: {} is in use; it will be detached when its last user closes it", name(), blockDevice());
            Thread.ofPlatform().daemon().name(name() + "-deferred-detach").start(() -> closeWhenUnused(null));
        }
        return null;
    }

    /**
     * {@link #closeIfUnused} until it succeeds or {@code limit} (null: no limit) has passed; true once the device
     * is gone. The kernel has no event for a block device's last close, so it asks twice a second. Blocks.
     */
    public boolean closeWhenUnused(Duration limit) {
        long deadline = limit == null ? Long.MAX_VALUE : System.nanoTime() + limit.toNanos();
        while (!closeIfUnused()) {
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    /**
     * Stops and deletes the device if nobody has it open (TRY_STOP_DEV, atomic with new opens; where the kernel
     * lacks it, no holder found in /proc and /sys); false, nothing changed, while it is in use.
     */
    public boolean closeIfUnused() {
        if (closed.get()) {
            return true;
        }
        try {
            if (device.canStopIfUnused() ? !device.closeIfUnused() : !BlockHolders.of(blockDevice()).isEmpty()) {
                return false;
            }
        } catch (io.nbdgate.uring.UringException e) {
            LOG.warn("{}: TRY_STOP_DEV failed ({}); stopping it", name(), e.getMessage());
        }
        close();
        return true;
    }

    /**
     * Stops and deletes the device now, in use or not: nothing waits for the server any more, so requests in
     * flight and later ones fail with EIO at once (a filesystem on it shuts down), even with the server gone.
     */
    public void closeNow() {
        for (QueueSession s : sessions) {
            s.stop(Duration.ZERO);
        }
        close();
    }

    /** Stops and deletes the device (in-flight requests finish first), then disconnects. Idempotent. */
    @Override
    public void close() {
        // A second close would close the /dev/zero descriptor number again, which may belong to someone else by then.
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        // Nothing may wait for a connection while the kernel drains the queues: without one, requests fail now.
        for (QueueSession s : sessions) {
            s.detaching();
        }
        device.close(); // closes the targets, which disconnect their connections
        if (records != null) {
            records.delete(options.name(), device.id());
        }
        for (QueueSession c : sessions) {
            try {
                c.stop(Duration.ofSeconds(5)).get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.debug("closing connection: {}", e.toString());
            }
        }
        control.close();
        LinuxCalls.close(zeroFd);
        detachPending = false;
        if (removedElsewhere == null) {
            LOG.atInfo().addKeyValue("device", options.name()).addKeyValue("state", "detached")
                    .log("{}: detached {}", options.name(), device.blockDevice());
        }
        gone.complete(this);
    }
}
