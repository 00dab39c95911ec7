package io.nbdgate.gateway.device;

import io.netty.channel.IoEventLoop;
import io.nbdgate.gateway.config.StructuredReplies;
import io.nbdgate.gateway.config.ProcessUser;
import io.nbdgate.gateway.config.ZeroCopy;
import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.link.RecvFixedProbe;
import io.nbdgate.gateway.session.QueueSession;
import io.nbdgate.gateway.session.ReconnectPolicy;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.ControlDevice;
import io.nbdgate.ublk.DeviceParams;
import io.nbdgate.ublk.DeviceSpec;
import io.nbdgate.ublk.UblkAbi;
import io.nbdgate.ublk.UblkDevice;
import io.nbdgate.ublk.UblkFeatures;
import io.nbdgate.uring.LinuxCalls;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import java.net.SocketAddress;
import io.nbdgate.gateway.net.Reresolving;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How an {@link NbdDevice} comes to be: connections first (one per queue, each on its queue's loop), then the
 * buffer mode and geometry, then the ublk device, created new or taken over from a dead process. Either a live
 * device comes out or nothing is left behind.
 */
final class Attacher {
    private static final Logger LOG = LoggerFactory.getLogger(NbdDevice.class);
    private static final int AUTO_QUEUE_LIMIT = 4;

    private Attacher() {
    }

    /** {@link NbdDevice#attach}: a take-over if the state directory names an orphan of this name, else a new device. */
    static NbdDevice attach(DeviceOptions options, List<IoEventLoop> loops) throws NbdConnectionException {
        boolean unprivileged = !ProcessUser.root();
        DeviceOptions o = unprivileged ? unprivileged(options) : options;
        DeviceRecords records = DeviceRecords.standard();
        ControlDevice control;
        try {
            control = ControlDevice.open();
        } catch (Exception e) {
            throw new NbdConnectionException("attaching " + NbdDevice.describe(o) + " failed: " + NbdDevice.oneLine(e));
        }
        Optional<Takeover.Orphan> orphan;
        try {
            orphan = Takeover.find(records, control, o.name(), NbdDevice.describe(o));
        } catch (NbdConnectionException | RuntimeException e) {
            control.close();
            throw e;
        }
        // Each closes the control device itself when it fails.
        return orphan.isPresent() ? takeOver(o, loops, orphan.get(), control, records)
                : create(o, loops, control, o.recovery() ? records : null, unprivileged);
    }

    /**
     * A user other than root gets an unprivileged device (UBLK_F_UNPRIVILEGED_DEV): the kernel allows it copy
     * mode only and no crash recovery, so asking for more is an error rather than a silent downgrade.
     */
    static DeviceOptions unprivileged(DeviceOptions o) throws NbdConnectionException {
        if (o.zeroCopy() == ZeroCopy.ON || (o.forcedMode() != null && o.forcedMode() != BufferMode.COPY)) {
            throw new NbdConnectionException(o.name() + ": " + (o.forcedMode() != null ? "buffer mode "
                    + o.forcedMode().label() : "zero copy") + " needs root; the kernel gives a device made by "
                    + "another user copy mode only (leave zero-copy at auto)");
        }
        if (o.recovery()) {
            LOG.info("{}: not root, so the device is unprivileged: copy mode, and no crash recovery (the kernel "
                    + "allows neither zero copy nor user recovery to such a device)", o.name());
        }
        return o.withRecovery(false).withMode(BufferMode.COPY);
    }

    private static NbdDevice create(DeviceOptions o, List<IoEventLoop> loops, ControlDevice control,
                                    DeviceRecords records, boolean unprivileged) throws NbdConnectionException {
        Supplier<SocketAddress> address = Reresolving.of(o.address());
        List<QueueSession> conns = new ArrayList<>();
        UblkDevice device = null;
        int zeroFd = -1;
        try {
            zeroFd = LinuxCalls.open("/dev/zero", LinuxCalls.O_RDONLY, 0);
            NbdTarget firstTarget = new NbdTarget(o.depth());
            QueueSession first = connect(o, address, loops.get(0), 0, false, zeroFd, firstTarget);
            conns.add(first);
            firstTarget.attach(first);
            ExportInfo export = first.export();
            int queues = queueCount(o, export);
            UblkFeatures features = control.features();
            boolean recvFixed = RecvFixedProbe.run(loops.get(0)).get(10, TimeUnit.SECONDS);
            BufferMode mode = o.forcedMode() != null ? requireMode(o.forcedMode(), features, recvFixed)
                    : chooseMode(o.zeroCopy(), features, recvFixed);
            String reason = unprivileged ? "not root: an unprivileged device has copy mode only"
                    : modeReason(mode, features, recvFixed);
            NbdTarget[] targets = new NbdTarget[queues];
            targets[0] = firstTarget;
            for (int q = 1; q < queues; q++) {
                targets[q] = new NbdTarget(o.depth());
                QueueSession c = connect(o, address, loops.get(q % loops.size()), q, true, zeroFd, targets[q]);
                conns.add(c);
                targets[q].attach(c);
            }
            int maxIo = DeviceGeometry.maxIoBytes(export, mode);
            DeviceParams params = DeviceGeometry.params(export, mode, o.readOnly());
            DeviceSpec spec = new DeviceSpec(o.deviceId(), queues, o.depth(), maxIo, mode, o.recovery(), o.batchIo(),
                    unprivileged);
            device = UblkDevice.create(control, spec, params);
            if (records != null) {
                // Before START_DEV: a process that dies from here on leaves a device the record names.
                records.write(new DeviceRecord(o.name(), device.id(), NbdDevice.describe(o), ProcessIdentity.current(),
                        Instant.now()));
            }
            final NbdTarget[] ts = targets;
            device.start(loops, q -> ts[q]);
            LOG.atInfo().addKeyValue("device", o.name()).addKeyValue("state", "attached")
                    .log("{}: {} attached as {} ({} bytes, {} queue(s) x depth {}, buffer mode {}: {}; {}{})", o.name(),
                    NbdDevice.describe(o), device.blockDevice(), params.sizeBytes(), queues, o.depth(), mode.label(),
                    reason + (device.batchIo() ? "; batch ublk commands" : "; per-request ublk commands"),
                    replies(export, o), o.recovery() ? "; recoverable" : "");
            return new NbdDevice(o, export, device, conns, control, zeroFd, reason, records);
        } catch (NbdConnectionException e) {
            cleanUp(conns, device, control, zeroFd, records, o.name());
            throw e;
        } catch (Exception e) {
            cleanUp(conns, device, control, zeroFd, records, o.name());
            Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            throw new NbdConnectionException("attaching " + NbdDevice.describe(o) + " failed: " + NbdDevice.oneLine(c));
        }
    }

    /**
     * Serves an orphan again: a connection per queue of the existing device (its queue count and depth), the
     * export checked against what the device promised, then START/END_USER_RECOVERY with fresh queues. The
     * requests the kernel held, and those the dead process had not answered, reach the new connections.
     */
    private static NbdDevice takeOver(DeviceOptions options, List<IoEventLoop> loops, Takeover.Orphan orphan,
                                      ControlDevice control, DeviceRecords records) throws NbdConnectionException {
        DeviceRecord was = orphan.record();
        DeviceOptions o = options.withGeometry(orphan.info().nrHwQueues(), orphan.info().queueDepth());
        Supplier<SocketAddress> address = Reresolving.of(o.address());
        List<QueueSession> conns = new ArrayList<>();
        int zeroFd = -1;
        try {
            zeroFd = LinuxCalls.open("/dev/zero", LinuxCalls.O_RDONLY, 0);
            NbdTarget[] targets = new NbdTarget[o.queues()];
            long deadline = System.nanoTime() + o.connectTimeout().toNanos();
            for (int q = 0; q < targets.length; q++) {
                final int queue = q;
                final int fd = zeroFd;
                targets[q] = new NbdTarget(o.depth());
                QueueSession c = untilDeadline(deadline, o.name() + " (take-over of " + was.blockDevice() + ")",
                        () -> connect(o, address, loops.get(queue % loops.size()), queue, queue > 0, fd,
                                targets[queue]));
                conns.add(c);
                targets[q].attach(c);
            }
            ExportInfo export = conns.get(0).export();
            BufferMode mode = orphan.mode();
            String why = Takeover.mismatch(orphan, export,
                    DeviceGeometry.params(export, mode, o.readOnly() || orphan.params().readOnly()));
            if (why != null) {
                throw new NbdConnectionException("'" + o.name() + "' (" + was.blockDevice() + ") cannot be taken over: "
                        + why + "; it stays as it was, its I/O held");
            }
            long start = System.nanoTime();
            UblkDevice device = UblkDevice.recover(control, was.devId(), loops, q -> targets[q]);
            records.write(new DeviceRecord(o.name(), device.id(), NbdDevice.describe(o), ProcessIdentity.current(), Instant.now()));
            LOG.atInfo().addKeyValue("device", o.name()).addKeyValue("state", "taken-over")
                    .log("{}: took over {} from pid {} (gone) in {} ms: {}, {} queue(s) x depth {}, buffer mode {}", o.name(),
                    device.blockDevice(), was.owner().pid(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start),
                    NbdDevice.describe(o), o.queues(), o.depth(), mode.label());
            return new NbdDevice(o, export, device, conns, control, zeroFd,
                    "as created by pid " + was.owner().pid(), records);
        } catch (NbdConnectionException e) {
            cleanUp(conns, null, control, zeroFd, null, o.name());
            throw e;
        } catch (Exception e) {
            cleanUp(conns, null, control, zeroFd, null, o.name());
            Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            throw new NbdConnectionException("taking over '" + o.name() + "' (" + was.blockDevice() + ") failed: "
                    + NbdDevice.oneLine(c) + "; it stays as it was, its I/O held");
        }
    }

    /** One connection attempt; fails with the one line that says why. */
    interface Attempt<T> {
        T run() throws NbdConnectionException;
    }

    /**
     * A take-over's connections: attempts with the reconnect backoff until {@code deadline} (System.nanoTime), the
     * last failure thrown. The device exists and its users wait either way, so a server that refuses for a moment
     * (restarted at the same time as the daemon) must not end the take-over.
     */
    static <T> T untilDeadline(long deadline, String what, Attempt<T> attempt) throws NbdConnectionException {
        ReconnectPolicy backoff = ReconnectPolicy.of(null);
        for (int n = 1; ; n++) {
            try {
                return attempt.run();
            } catch (NbdConnectionException e) {
                Duration pause = backoff.delay(n);
                long left = deadline - System.nanoTime();
                if (left <= pause.toNanos()) {
                    throw e;
                }
                if (n == 1) {
                    LOG.info("{}: {}; trying again for up to {} s more (the connect timeout), its I/O held meanwhile",
                            what, e.getMessage(), TimeUnit.NANOSECONDS.toSeconds(left));
                } else {
                    LOG.debug("{}: attempt {}: {}", what, n, e.getMessage());
                }
                try {
                    Thread.sleep(pause);
                } catch (InterruptedException stop) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }

    private static QueueSession connect(DeviceOptions o, Supplier<SocketAddress> address, IoEventLoop loop, int queue,
                                        boolean needsMultiConn, int zeroFd, QueueSession.Listener listener)
            throws NbdConnectionException {
        try {
            HandshakeConfig handshake = o.handshake();
            LinkOptions links = new LinkOptions(o.connectTimeout(), o.ioTimeout(), zeroFd, o.sendZcMin(),
                    o.stageReadsMax(), o.keepalive(), o.tls());
            return QueueSession.open(o.name(), queue, loop, address, handshake, links, o.depth(),
                            ReconnectPolicy.of(o.reconnectTimeout()), needsMultiConn, listener)
                    .get(o.connectTimeout().toMillis() + 5000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof NbdConnectionException n ? n
                    : new NbdConnectionException(NbdDevice.oneLine(e.getCause()));
        } catch (TimeoutException e) {
            throw new NbdConnectionException("connecting to " + NbdDevice.describe(o) + ": not connected within the"
                    + " connect timeout (" + o.connectTimeout().toSeconds() + " s); --connect-timeout gives it longer");
        } catch (Exception e) {
            throw new NbdConnectionException("connecting to " + NbdDevice.describe(o) + ": " + NbdDevice.oneLine(e));
        }
    }

    static int queueCount(DeviceOptions o, ExportInfo e) {
        int wanted = o.queues() > 0 ? o.queues() : Math.min(AUTO_QUEUE_LIMIT, Runtime.getRuntime().availableProcessors());
        if (wanted > 1 && !e.canMultiConn()) {
            if (o.queues() > 1) {
                LOG.warn("{}: the server does not advertise CAN_MULTI_CONN, so {} connections could see each "
                        + "other's writes out of order; using 1 queue instead of {}", o.name(), o.queues(), o.queues());
            } else {
                LOG.info("{}: one queue, because the server does not advertise CAN_MULTI_CONN", o.name());
            }
            return 1;
        }
        return wanted;
    }

    static BufferMode chooseMode(ZeroCopy policy, UblkFeatures f, boolean recvFixed) throws NbdConnectionException {
        boolean zeroCopy = f.has(UblkAbi.F_AUTO_BUF_REG) && f.has(UblkAbi.F_SUPPORT_ZERO_COPY) && recvFixed;
        BufferMode fallback = f.has(UblkAbi.F_USER_COPY) ? BufferMode.USER_COPY : BufferMode.COPY;
        return switch (policy) {
            case AUTO -> zeroCopy ? BufferMode.ZERO_COPY : fallback;
            case OFF -> fallback;
            case ON -> {
                if (!zeroCopy) {
                    throw new NbdConnectionException("zero copy is impossible here: " + modeReason(fallback, f, recvFixed));
                }
                yield BufferMode.ZERO_COPY;
            }
        };
    }

    static BufferMode requireMode(BufferMode mode, UblkFeatures f, boolean recvFixed) throws NbdConnectionException {
        boolean ok = switch (mode) {
            case ZERO_COPY -> f.has(UblkAbi.F_AUTO_BUF_REG) && f.has(UblkAbi.F_SUPPORT_ZERO_COPY) && recvFixed;
            case USER_COPY -> f.has(UblkAbi.F_USER_COPY);
            case COPY -> true;
        };
        if (!ok) {
            throw new NbdConnectionException("buffer mode " + mode.label() + " is impossible here: "
                    + modeReason(BufferMode.COPY, f, recvFixed));
        }
        return mode;
    }

    static String modeReason(BufferMode mode, UblkFeatures f, boolean recvFixed) {
        if (mode == BufferMode.ZERO_COPY) {
            return "ublk AUTO_BUF_REG with io_uring SEND_ZC and RECV on fixed buffers";
        }
        if (mode == BufferMode.USER_COPY && f.has(UblkAbi.F_AUTO_BUF_REG) && recvFixed) {
            return "zero copy turned off";
        }
        if (!f.has(UblkAbi.F_AUTO_BUF_REG)) {
            return "the kernel's ublk lacks AUTO_BUF_REG (Linux 6.16+)";
        }
        if (!recvFixed) {
            return "io_uring RECV cannot target fixed buffers before Linux 7.2";
        }
        return "zero copy turned off";
    }

    private static void cleanUp(List<QueueSession> conns, UblkDevice device, ControlDevice control, int zeroFd,
                                DeviceRecords records, String name) {
        if (device != null) {
            device.close();
            if (records != null) {
                records.delete(name, device.id());
            }
        }
        for (QueueSession c : conns) {
            try {
                c.stop(Duration.ZERO).get(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.debug("closing connection: {}", e.toString());
            }
        }
        if (control != null) {
            control.close();
        }
        if (zeroFd >= 0) {
            LinuxCalls.close(zeroFd);
        }
    }

    /** The reply format the handshake settled on, and why, for the log. */
    static String replies(ExportInfo export, DeviceOptions o) {
        String what = switch (export.mode()) {
            case SIMPLE -> "simple replies";
            case STRUCTURED -> "structured replies";
            case EXTENDED -> "extended headers";
        };
        return what + (o.structuredReplies() == StructuredReplies.AUTO && !o.asksForStructuredReplies()
                ? " (server on this host)" : "");
    }
}
