package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.config.ConfigChanges;
import io.nbdgate.gateway.config.ConfigException;
import io.nbdgate.gateway.config.DaemonConfig;
import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.device.EventLoops;
import io.nbdgate.gateway.device.DeviceOptions;
import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.session.ReconnectPolicy;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon's reload (SIGHUP, `nbdgate reload`): reads the file again and brings the devices in line with it.
 * Added devices attach; removed ones detach, a removed device still in use as the file's {@code reload.in-use}
 * says (refuse by default: it stays, and the line names who holds it; the next reload tries again); changed
 * ones are reported and keep their settings until detached and attached again. A file that does not load
 * changes nothing. Every outcome is one line, logged and returned.
 */
final class ConfigReload {
    private static final Logger LOG = LoggerFactory.getLogger(ConfigReload.class);

    /** Reads the file again; a ConfigException's message is the one line that says what is wrong. */
    interface Source {
        DaemonConfig load() throws ConfigException;
    }

    private final Source source;
    private final Vertx vertx;
    private final ServingProcess serving;
    /** The devices this daemon serves from its file, as the file said when they were attached. */
    private final Map<String, DeviceConfig> served = new LinkedHashMap<>();
    /** Devices of the file whose attach failed (at start or at a reload): tried again until attached. */
    private final Map<String, Retry> retries = new LinkedHashMap<>();
    private volatile Set<String> inFile = Set.of();
    private final java.util.concurrent.atomic.AtomicBoolean retrying = new java.util.concurrent.atomic.AtomicBoolean();

    /** How often {@link #retryFailed} should run; each device backs off from RETRY_FIRST to RETRY_MAX. */
    static final Duration RETRY_TICK = Duration.ofSeconds(5);
    static final Duration RETRY_FIRST = Duration.ofSeconds(10);
    static final Duration RETRY_MAX = Duration.ofMinutes(1);

    /** The reconnect backoff's shape (doubling, jittered, capped), at the pace of whole attaches. */
    private static final ReconnectPolicy RETRY_BACKOFF = new ReconnectPolicy(null, RETRY_FIRST, RETRY_MAX);

    private record Retry(DeviceConfig device, int failures, long dueNanos, String lastError) {
        Retry failedAgain(String error, long now) {
            return new Retry(device, failures + 1, now + RETRY_BACKOFF.delay(failures + 1).toNanos(), error);
        }
    }

    ConfigReload(Source source, Vertx vertx, ServingProcess serving) {
        this.source = source;
        this.vertx = vertx;
        this.serving = serving;
    }

    /** Names of the devices of the file as last loaded: orphans so named are the daemon's to take over, not to sweep. */
    Set<String> inFile() {
        return inFile;
    }

    void loaded(DaemonConfig file) {
        inFile = file.devices().stream().map(DeviceConfig::name).collect(java.util.stream.Collectors.toUnmodifiableSet());
    }

    synchronized void attached(DeviceConfig d) {
        served.put(d.name(), d);
    }

    /** {@code d} failed to attach (at start, at a reload): {@link #retryFailed} tries it again. */
    synchronized void failed(DeviceConfig d, String error) {
        retries.put(d.name(), new Retry(d, 0, 0, error).failedAgain(error, System.nanoTime()));
    }

    /**
     * From the timer: the due retries run on a short-lived thread of their own, since an attach may take its
     * connect timeout and the timer also pings systemd's watchdog.
     */
    void retryFailedInBackground() {
        if (anyRetryDue() && retrying.compareAndSet(false, true)) {
            Thread.ofPlatform().name("nbdgate-retry").start(() -> {
                try {
                    retryFailed();
                } finally {
                    retrying.set(false);
                }
            });
        }
    }

    private synchronized boolean anyRetryDue() {
        long now = System.nanoTime();
        return retries.values().stream().anyMatch(r -> now - r.dueNanos() >= 0);
    }

    /**
     * Attaches again the devices of the file that failed to, each once its backoff (10 s, doubling to a minute)
     * has passed: a server that comes up after the daemon (a boot where both start at once) gets its device
     * without a reload. A device detached on purpose is not in the list.
     */
    synchronized void retryFailed() {
        long now = System.nanoTime();
        for (Retry r : List.copyOf(retries.values())) {
            String name = r.device().name();
            if (now - r.dueNanos() < 0) {
                continue;
            }
            if (serving.registry().find(name).isPresent()) {
                retries.remove(name); // attached by other means (nbdgate attach --daemon refuses file names)
                continue;
            }
            try {
                NbdDevice device = NbdDevice.attach(DeviceOptions.from(r.device()), EventLoops.of(vertx));
                serving.serve(device);
                served.put(name, r.device());
                retries.remove(name);
                LOG.info("{}: attached as {} on attempt {} (before: {})", name, device.blockDevice(),
                        r.failures() + 1, r.lastError());
                System.out.println(name + " " + device.blockDevice());
            } catch (NbdConnectionException | RuntimeException e) {
                Retry next = r.failedAgain(e.getMessage(), System.nanoTime());
                retries.put(name, next);
                long in = Duration.ofNanos(next.dueNanos() - System.nanoTime()).toSeconds();
                if (e.getMessage() != null && e.getMessage().equals(r.lastError())) {
                    LOG.debug("{}: still not attached: {}; next attempt in {} s", name, e.getMessage(), in);
                } else {
                    LOG.info("{}: still not attached: {}; next attempt in {} s", name, e.getMessage(), in);
                }
            }
        }
    }

    synchronized List<String> run() {
        List<String> lines = new ArrayList<>();
        DaemonConfig file;
        try {
            file = source.load();
            loaded(file);
        } catch (ConfigException e) {
            lines.add("reload: the file is not valid, nothing changed: " + e.getMessage());
            LOG.error(lines.getFirst());
            return lines;
        }
        served.keySet().removeIf(name -> serving.registry().find(name).map(d -> d.gone().isDone()).orElse(true));
        retries.clear(); // the file decides again: what it names and fails to attach below is retried
        ConfigChanges c = ConfigChanges.between(served, file);
        for (String name : c.removed()) {
            lines.add(detach(name, file));
        }
        for (DeviceConfig d : c.added()) {
            lines.add(attach(d));
        }
        c.changed().forEach((name, keys) -> lines.add(name + ": changed (" + String.join(", ", keys)
                + "); not applied while attached: remove it from the file and reload, then add it back"));
        if (lines.isEmpty()) {
            lines.add("reload: nothing changed");
        }
        lines.forEach(LOG::info);
        return lines;
    }

    private String detach(String name, DaemonConfig file) {
        Optional<NbdDevice> found = serving.registry().find(name);
        if (found.isEmpty()) {
            served.remove(name);
            return name + ": no longer served";
        }
        NbdDevice d = found.get();
        String busy = d.detach(file.reloadInUse());
        if (busy != null) {
            return name + ": removed from the file but " + busy + "; left attached (reload.in-use: refuse)";
        }
        served.remove(name);
        return d.gone().isDone() ? name + ": detached " + d.blockDevice()
                : name + ": in use; " + d.blockDevice() + " will be detached when its last user closes it";
    }

    /**
     * `nbdgate attach --daemon`: one more device, not from the file. A reload leaves it alone (the file does not
     * name it) and it lives until detached or the daemon stops; its /dev/ublkbN is returned. Blocks.
     */
    synchronized String attachAtRuntime(DeviceConfig d) {
        if (serving.registry().find(d.name()).isPresent()) {
            throw new IllegalStateException("a device named '" + d.name() + "' is served already; choose another --name");
        }
        if (inFile.contains(d.name())) {
            throw new IllegalStateException("'" + d.name() + "' is a device of the daemon's file (not attached now: "
                    + "see the daemon's log); choose another --name, or fix the file and reload");
        }
        try {
            NbdDevice device = NbdDevice.attach(DeviceOptions.from(d), EventLoops.of(vertx));
            serving.serve(device);
            LOG.info("{}: attached as {} (nbdgate attach --daemon; not in the file)", d.name(), device.blockDevice());
            return device.blockDevice();
        } catch (NbdConnectionException e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }

    private String attach(DeviceConfig d) {
        if (serving.registry().find(d.name()).isPresent()) {
            return d.name() + ": a device of that name is listed already (removed by another process?); "
                    + "'nbdgate detach " + d.name() + "' first";
        }
        try {
            NbdDevice device = NbdDevice.attach(DeviceOptions.from(d), EventLoops.of(vertx));
            serving.serve(device);
            served.put(d.name(), d);
            return d.name() + ": attached as " + device.blockDevice();
        } catch (NbdConnectionException | RuntimeException e) {
            failed(d, e.getMessage());
            return d.name() + ": not attached: " + e.getMessage() + "; tried again from " + RETRY_FIRST.toSeconds()
                    + " s on";
        }
    }
}
