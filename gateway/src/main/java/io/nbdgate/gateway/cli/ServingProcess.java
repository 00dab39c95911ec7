package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.config.MemorySettings;
import io.nbdgate.gateway.control.ControlServer;
import io.nbdgate.gateway.control.DaemonHooks;
import io.nbdgate.gateway.control.DeviceLinks;
import io.nbdgate.gateway.control.DeviceRegistry;
import io.nbdgate.gateway.device.BlockHolders;
import io.nbdgate.gateway.device.EventLoops;
import io.nbdgate.gateway.device.MemoryGuard;
import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.systemd.ServiceStatus;
import io.nbdgate.gateway.systemd.SystemdNotifier;
import io.nbdgate.ublk.UblkDevice;
import io.nbdgate.uring.LinuxCalls;
import io.netty.channel.IoEventLoop;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What `attach` and `daemon` share once devices are live: the control socket for list/detach, systemd
 * notification, and a clean exit — every device detached — on SIGINT/SIGTERM or when the last device was
 * detached.
 */
final class ServingProcess {
    private static final Logger LOG = LoggerFactory.getLogger(ServingProcess.class);
    private static final Duration STATUS_PERIOD = Duration.ofSeconds(5);

    private final Vertx vertx;
    // Vert.x 5.0.10 cannot listen on a unix socket with io_uring; the control plane runs on NIO, which also
    // keeps its requests off the queues' event loops. One loop serves the control socket and the status server
    // (scrapes run on workers); Vert.x's default of two per CPU would be threads that never work.
    private final Vertx controlVertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    private final DeviceRegistry registry = new DeviceRegistry(DeviceLinks.system());
    private final SystemdNotifier notifier = SystemdNotifier.fromEnvironment();
    /** Devices of the config that failed to attach at start, until attached (a retry, a reload): in STATUS=. */
    private final List<String> notAttached = new ArrayList<>();
    private final CountDownLatch done = new CountDownLatch(1);
    private final CountDownLatch cleanedUp = new CountDownLatch(1);
    private final boolean exitWhenEmpty;
    private final Duration shutdownWait;
    private volatile boolean removedElsewhere;
    private ControlServer control;
    private ScheduledExecutorService timer;
    private boolean stopping; // from the moment the stop lists the devices it detaches: none may join after

    /** attach's exit code when another process stopped or deleted its device. */
    static final int EXIT_REMOVED_ELSEWHERE = 3;
    /** The daemon's exit code after a hand-over (EX_TEMPFAIL): the unit's RestartForceExitStatus starts the next. */
    static final int EXIT_HANDOVER = 75;

    ServingProcess(Vertx vertx, boolean exitWhenEmpty, Duration shutdownWait) {
        MemoryGuard.ioFlushers(controlVertx); // detach and list must not wait for writeback through our devices either
        this.vertx = vertx;
        this.exitWhenEmpty = exitWhenEmpty;
        this.shutdownWait = shutdownWait;
    }

    DeviceRegistry registry() {
        return registry;
    }

    /** Before the first device: the queue threads become IO flushers, the OOM killer passes by, memory stays. */
    static void guardMemory(Vertx vertx, MemorySettings m) {
        List<String> done = MemoryGuard.apply(vertx, m.oomScoreAdj(), m.lock());
        if (!done.isEmpty()) {
            LOG.info("memory pressure: {}", String.join(", ", done));
        }
    }

    /** Serves {@code d}: listed, linked by name, and (attach) the process ends with it. */
    void serve(NbdDevice d) {
        synchronized (this) {
            if (stopping) {
                // Attached (a retry, a reload) after the stop took its list: it would outlive the process.
                LOG.info("{}: attached while the process stops; detached again", d.name());
                d.closeNow();
                return;
            }
            notAttached.remove(d.name()); // attached by a reload or a retry after failing at start
            registry.add(d).thenAccept(x -> {
                if (x.removedElsewhere() != null) {
                    removedElsewhere = true;
                    notifier.status(statusLine());
                }
                if (exitWhenEmpty && !registry.anyServed()) {
                    done.countDown();
                }
            });
        }
    }

    /**
     * A planned hand-over to the next daemon (an upgrade): every device must be recoverable, or nothing happens
     * and the exception says which would be lost. The devices stay as they are; {@link #exitForHandover} then
     * ends the process without detaching them, the kernel holds their I/O, and the next daemon takes them over.
     */
    List<String> handover() {
        List<String> lost = registry.all().stream().filter(d -> !d.recoverable() && !d.gone().isDone())
                .map(NbdDevice::name).toList();
        if (!lost.isEmpty()) {
            throw new IllegalStateException("not handed over: " + String.join(", ", lost)
                    + " would go with this process (recovery: false); detach them first, or restart instead");
        }
        return registry.all().stream().filter(d -> !d.gone().isDone())
                .map(d -> d.name() + " " + d.blockDevice() + " left to the next daemon").toList();
    }

    /** Ends the process without a shutdown hook: its devices stay, held by the kernel for the next daemon. */
    private void exitForHandover() {
        LOG.info("handing {} device(s) over to the next daemon; exiting with {} (systemd restarts the daemon)",
                registry.all().size(), EXIT_HANDOVER);
        notifier.status("handing over to the next daemon");
        Runtime.getRuntime().halt(EXIT_HANDOVER);
    }

    void attaching(String name, int n, int of) {
        notifier.status("attaching " + name + " (" + n + " of " + of + ")");
    }

    synchronized void notAttached(String name) {
        notAttached.add(name);
    }

    private synchronized int notAttachedCount() {
        return notAttached.size();
    }

    /** Nothing to serve: the reason goes to STATUS=, and no READY=1 is ever sent. */
    void failed(String reason) {
        notifier.status(reason);
        notifier.close();
        controlVertx.close();
    }

    /**
     * Starts the control socket (without it the devices still work, only list/detach cannot find them), then
     * tells systemd the service is ready: every device has had its first attach attempt by now.
     */
    void start(String statusListen) {
        start(statusListen, (DaemonHooks) null);
    }

    /**
     * The same for a daemon: `nbdgate reload` runs {@code reload}, `nbdgate handover` {@link #handover}, `nbdgate
     * attach --daemon` {@code attach}.
     */
    void start(String statusListen, java.util.function.Supplier<List<String>> reload,
               java.util.function.Function<io.nbdgate.gateway.config.DeviceConfig, String> attach) {
        start(statusListen, new DaemonHooks(reload, this::handover, this::exitForHandover, attach));
    }

    private void start(String statusListen, DaemonHooks daemon) {
        control = new ControlServer(controlVertx, registry, daemon);
        try {
            control.start().await();
        } catch (Exception e) {
            LOG.warn("control socket unavailable ({}); 'nbdgate list' and 'detach' will not see these devices",
                    e.getMessage());
        }
        if (statusListen != null) {
            try {
                control.listenStatus(statusListen).await();
                registry.metrics().notAttached(this::notAttachedCount);
                LOG.info("status on http://{}/devices, /health and /metrics", statusListen);
            } catch (Exception e) {
                LOG.warn("status endpoint {} unavailable: {}", statusListen, e.getMessage());
            }
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            done.countDown();
            try {
                cleanedUp.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "nbdgate-shutdown"));
        // From here this class stops the devices at exit, by the policy of awaitAndCleanUp; a signal before
        // this point (devices still attaching) leaves them to the ublk layer's own hook, which stops them at once.
        UblkDevice.ownerClosesAtExit();
        notifier.ready(statusLine());
        if (notifier.enabled()) {
            startSystemdTimer();
        }
    }

    /** Runs {@code task} every {@code period} on the process's timer thread while it serves. */
    void every(Duration period, Runnable task) {
        timer().scheduleWithFixedDelay(() -> {
            try {
                task.run();
            } catch (RuntimeException e) {
                LOG.warn("periodic task: {}", e.toString());
            }
        }, period.toMillis(), period.toMillis(), TimeUnit.MILLISECONDS);
    }

    private synchronized ScheduledExecutorService timer() {
        if (timer == null) {
            timer = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "nbdgate-timer");
                t.setDaemon(true);
                return t;
            });
        }
        return timer;
    }

    private void startSystemdTimer() {
        ScheduledExecutorService systemdTimer = timer();
        long statusMs = STATUS_PERIOD.toMillis();
        systemdTimer.scheduleAtFixedRate(() -> notifier.status(statusLine()), statusMs, statusMs, TimeUnit.MILLISECONDS);
        Duration watchdog = notifier.watchdog();
        if (watchdog != null) {
            long half = Math.max(1, watchdog.toMillis() / 2);
            systemdTimer.scheduleAtFixedRate(() -> watchdogTick(Duration.ofMillis(half / 2)), 0, half,
                    TimeUnit.MILLISECONDS);
            LOG.info("systemd watchdog: {} ms, pinging every {} ms while the event loops answer",
                    watchdog.toMillis(), half);
        }
    }

    // A ping proves more than a live JVM: every event loop that carries ublk queues ran a task just now.
    private void watchdogTick(Duration patience) {
        List<IoEventLoop> loops = EventLoops.of(vertx);
        List<Future<?>> answers = new ArrayList<>();
        for (IoEventLoop loop : loops) {
            answers.add(loop.submit(() -> { }));
        }
        long deadline = System.nanoTime() + patience.toNanos();
        for (int i = 0; i < answers.size(); i++) {
            try {
                answers.get(i).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (Exception e) {
                LOG.warn("event loop {} did not answer within {} ms; withholding the systemd watchdog ping", i,
                        patience.toMillis());
                return;
            }
        }
        notifier.watchdogPing();
    }

    private synchronized String statusLine() {
        List<ServiceStatus.Device> devices = new ArrayList<>();
        for (NbdDevice d : registry.all()) {
            devices.add(new ServiceStatus.Device(d.name(), d.blockDevice(), DeviceRegistry.state(d)));
        }
        devices.sort((a, b) -> a.name().compareTo(b.name()));
        for (String name : notAttached) {
            devices.add(new ServiceStatus.Device(name, null, "not attached"));
        }
        return ServiceStatus.line(devices);
    }

    /**
     * Blocks until a signal or the last detach, then detaches what is left and stops; returns the exit code:
     * {@link #EXIT_REMOVED_ELSEWHERE} when another process removed a device of this run, else 0.
     *
     * <p>The shutdown policy for a device still in use (a file system mounted on it, a process holding it): it
     * keeps serving for up to {@code shutdownWait} while its users finish (systemd unmounts remote-fs file
     * systems before stopping nbdgate, so normally none is left); then every file system is synced and the
     * device is removed anyway, its users getting EIO, with one line naming them.
     */
    int awaitAndCleanUp() {
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (timer != null) {
            timer.shutdownNow();
        }
        List<NbdDevice> all;
        synchronized (this) {
            stopping = true;
            all = List.copyOf(registry.all());
        }
        notifier.stopping("stopping: detaching " + all.size() + " device(s)");
        List<Thread> stoppers = new ArrayList<>();
        for (NbdDevice d : all) {
            stoppers.add(Thread.ofPlatform().name(d.name() + "-stop").start(() -> stop(d)));
        }
        for (Thread t : stoppers) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        control.stop();
        controlVertx.close().await();
        vertx.close().await();
        notifier.close();
        cleanedUp.countDown();
        return removedElsewhere ? EXIT_REMOVED_ELSEWHERE : 0;
    }

    private void stop(NbdDevice d) {
        if (d.removedElsewhere() != null || d.closeIfUnused()) {
            registry.remove(d.name());
            return;
        }
        String holders = BlockHolders.describe(d.blockDevice(), BlockHolders.of(d.blockDevice()));
        LOG.warn("{}: {} at shutdown; it serves for up to {} s more while its users finish", d.name(), holders,
                shutdownWait.toSeconds());
        if (d.closeWhenUnused(shutdownWait)) {
            LOG.info("{}: no longer in use; detached", d.name());
            registry.remove(d.name());
            return;
        }
        syncWithin(Duration.ofSeconds(10)); // what file systems hold goes to the server while the device serves
        LOG.error("{}: {} after {} s; synced and removed anyway: its users now get EIO", d.name(),
                BlockHolders.describe(d.blockDevice(), BlockHolders.of(d.blockDevice())), shutdownWait.toSeconds());
        d.closeNow();
        registry.remove(d.name());
    }

    /** sync(2), but no longer than {@code limit}: with its server gone, a device's writeback would wait for it. */
    private static void syncWithin(Duration limit) {
        Thread sync = Thread.ofPlatform().daemon().name("nbdgate-sync").start(LinuxCalls::sync);
        try {
            if (!sync.join(limit)) {
                LOG.warn("sync did not finish within {} s; stopping anyway", limit.toSeconds());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
