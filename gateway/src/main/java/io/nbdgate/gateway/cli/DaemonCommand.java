package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.config.ConfigException;
import io.nbdgate.gateway.config.ConfigLoader;
import io.nbdgate.gateway.config.DaemonConfig;
import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.config.NbdTab;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.device.EventLoops;
import io.nbdgate.gateway.device.DeviceOptions;
import io.nbdgate.gateway.device.DeviceRecords;
import io.nbdgate.gateway.device.NbdDevice;
import io.nbdgate.gateway.device.OrphanSweep;
import io.nbdgate.gateway.device.QuietUringTransport;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.nio.file.Path;
import java.time.Instant;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Model.ArgGroupSpec;
import picocli.CommandLine.Model.CommandSpec;

import static io.nbdgate.gateway.cli.CommandModel.flag;
import static io.nbdgate.gateway.cli.CommandModel.option;

/**
 * {@code nbdgate daemon --config FILE} (or {@code --nbdtab FILE}): attaches every device of the file and serves
 * them until SIGTERM.
 */
final class DaemonCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Attach every device listed in the config file (conf/nbdgate.yaml documents each key) and",
        "serve them until SIGINT/SIGTERM, which detach them all cleanly. The whole file is checked first:",
        "an invalid file prints one line naming the key and exits 2 without creating anything.",
        "A device that cannot be attached is logged and the others are served; it is tried again from 10 s",
        "on, backing off to once a minute, until attached or reloaded away. Exit 1 if none could be attached.",
        "Each device is also /dev/nbdgate/NAME while it is attached.",
        "Under systemd (Type=notify, NOTIFY_SOCKET set) it sends READY=1 once every device is live or has",
        "failed its first attempt, STATUS= lines with the devices' states, WATCHDOG=1 at half",
        "of WatchdogSec while its event loops answer, and STOPPING=1 on SIGTERM.",
        "SIGHUP or 'nbdgate reload' reads the file again: added devices attach, removed ones detach (one",
        "still in use as reload.in-use says: refuse by default, naming who holds it), changed ones are",
        "reported; a file that does not load changes nothing. Each outcome is one line in the log.",
        "Exit codes: 143 after SIGTERM (130 after SIGINT), a clean stop; 1 if no device could be attached;",
        "2 for an invalid file."
    };

    final CommandSpec spec = CommandModel.command(this, "daemon", DESCRIPTION);

    /** Loaded on first use: picocli instantiates this command for every --help, which must not start logback. */
    private static final class Log {
        static final Logger LOG = LoggerFactory.getLogger(DaemonCommand.class);
    }

    private Path config;
    private Path nbdtab;
    private boolean check;

    DaemonCommand() {
        spec.usageMessage().sortOptions(false);
        spec.addArgGroup(ArgGroupSpec.builder().exclusive(true).multiplicity("1")
                .addArg(option("--config", Path.class, v -> config = v).paramLabel("FILE").required(true)
                        .description("The YAML configuration file.").build())
                .addArg(option("--nbdtab", Path.class, v -> nbdtab = v).paramLabel("FILE").required(true)
                        .description("An nbd-client nbdtab(5) file instead (e.g. /etc/nbdtab): one device per line, "
                                + "DEVICE HOST EXPORT [OPTIONS]; DEVICE (nbd0 or /dev/nbd0) becomes the name, so "
                                + "/dev/nbdgate/nbd0. Options: port=, conns= (queues), timeout= (seconds, the I/O "
                                + "timeout), unix (HOST is a socket path), persist (requests wait for the server "
                                + "without a time limit: reconnect-timeout never), bs= (checked, not used: the "
                                + "server's block size applies), and nbdgate's readonly/ro and name=; _-prefixed "
                                + "options are ignored. TLS options (tls, certfile, keyfile, cacertfile, tlshostname, "
                                + "priority), swap, sdp, no_optgo, preinit, dead-timeout and any unknown option are "
                                + "errors naming the line. Every other setting takes its YAML default.").build())
                .build());
        spec.addOption(flag("--check", v -> check = v)
                .description("Only validate the file: print a summary, exit 0 if valid, 2 if not.").build());
    }

    @Override
    public Integer call() {
        DaemonConfig cfg = nbdtab != null ? nbdtab(nbdtab) : yaml(config);
        if (cfg == null) {
            return 2;
        }
        if (check) {
            System.out.println((nbdtab != null ? "nbdtab " + nbdtab : "config " + config)
                    + " is valid: " + cfg.devices().size() + " device(s)");
            return 0;
        }
        Vertx vertx = QuietUringTransport.vertx(new VertxOptions());
        ServingProcess serving = new ServingProcess(vertx, false, cfg.shutdownWait());
        ServingProcess.guardMemory(vertx, cfg.memory());
        ConfigReload reload = new ConfigReload(this::load, vertx, serving);
        reload.loaded(cfg);
        int attached = 0;
        int n = 0;
        for (DeviceConfig d : cfg.devices()) {
            serving.attaching(d.name(), ++n, cfg.devices().size());
            try {
                NbdDevice device = NbdDevice.attach(DeviceOptions.from(d), EventLoops.of(vertx));
                serving.serve(device);
                reload.attached(d);
                System.out.println(d.name() + " " + device.blockDevice());
                attached++;
            } catch (NbdConnectionException | RuntimeException e) {
                Log.LOG.error("{}: not attached: {}", d.name(), e.getMessage());
                serving.notAttached(d.name());
                reload.failed(d, e.getMessage());
            }
        }
        if (attached == 0) {
            System.err.println("nbdgate: no device could be attached");
            serving.failed("no device could be attached");
            vertx.close();
            return 1;
        }
        serving.start(cfg.statusListen(), reload::run, reload::attachAtRuntime);
        // SIGHUP re-reads the file, as daemons do; off the signal thread, one reload at a time (ConfigReload).
        sun.misc.Signal.handle(new sun.misc.Signal("HUP"), sig -> Thread.ofPlatform().name("nbdgate-reload")
                .start(reload::run));
        OrphanSweep orphans = new OrphanSweep(OrphanSweep.of(DeviceRecords.standard()), cfg.orphanTimeout(),
                reload::inFile);
        serving.every(orphans.period(), () -> orphans.sweep(Instant.now()));
        serving.every(ConfigReload.RETRY_TICK, reload::retryFailedInBackground);
        Log.LOG.info("serving {} of {} device(s)", attached, cfg.devices().size());
        return serving.awaitAndCleanUp();
    }

    /** The YAML file, or null after printing its one-line problem. */
    private static DaemonConfig yaml(Path config) {
        try {
            return yamlOrThrow(config);
        } catch (ConfigException e) {
            System.err.println("nbdgate: config " + config + ": " + e.getMessage());
            return null;
        }
    }

    private static DaemonConfig yamlOrThrow(Path config) throws ConfigException {
        Vertx loader = Vertx.vertx();
        try {
            return ConfigLoader.load(loader, config).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof ConfigException c ? c : new ConfigException("", String.valueOf(e.getCause()));
        } catch (java.util.concurrent.TimeoutException e) {
            throw new ConfigException("", "reading it timed out");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ConfigException("", "interrupted while reading it");
        } finally {
            loader.close();
        }
    }

    /** The nbdtab file, or null after printing its one-line problem. */
    private static DaemonConfig nbdtab(Path file) {
        try {
            return nbdtabOrThrow(file);
        } catch (ConfigException e) {
            System.err.println("nbdgate: nbdtab " + file + ": " + e.getMessage());
            return null;
        }
    }

    private static DaemonConfig nbdtabOrThrow(Path file) throws ConfigException {
        NbdTab.Result r = NbdTab.load(file);
        r.notes().forEach(note -> Log.LOG.warn("nbdtab {} {}", file, note));
        return r.config();
    }

    /** The file again, for a reload. */
    private DaemonConfig load() throws ConfigException {
        return nbdtab != null ? nbdtabOrThrow(nbdtab) : yamlOrThrow(config);
    }
}
