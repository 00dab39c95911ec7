package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.config.ConfigException;
import io.nbdgate.gateway.config.ConfigLoader;
import io.nbdgate.gateway.config.DaemonConfig;
import io.nbdgate.gateway.config.DeviceConfig;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.device.EventLoops;
import io.nbdgate.gateway.device.NbdDevice;
import io.vertx.core.Vertx;
import io.vertx.core.transport.Transport;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code nbdgate daemon --config FILE}: attaches every device of the file and serves them until SIGTERM. */
@Command(name = "daemon", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Attach every device listed in the config file (conf/nbdgate.yaml documents each key) and",
            "serve them until SIGINT/SIGTERM, which detach them all cleanly. The whole file is checked first:",
            "an invalid file prints one line naming the key and exits 2 without creating anything.",
            "A device that cannot be attached is logged and the others are served; exit 1 if none could be."})
final class DaemonCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(DaemonCommand.class);

    @Option(names = "--config", paramLabel = "FILE", required = true, description = "The YAML configuration file.")
    Path config;

    @Option(names = "--check", description = "Only validate the file: print a summary, exit 0 if valid, 2 if not.")
    boolean check;

    @Override
    public Integer call() throws InterruptedException {
        DaemonConfig cfg;
        Vertx loader = Vertx.vertx();
        try {
            cfg = ConfigLoader.load(loader, config).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            System.err.println("nbdgate: config " + config + ": " + (e.getCause() instanceof ConfigException c
                    ? c.getMessage() : String.valueOf(e.getCause())));
            return 2;
        } catch (java.util.concurrent.TimeoutException e) {
            System.err.println("nbdgate: config " + config + ": reading it timed out");
            return 2;
        } finally {
            loader.close();
        }
        if (check) {
            System.out.println("config " + config + " is valid: " + cfg.devices().size() + " device(s)");
            return 0;
        }
        Vertx vertx = Vertx.builder().withTransport(Transport.IO_URING).build();
        ServingProcess serving = new ServingProcess(vertx, false);
        int attached = 0;
        for (DeviceConfig d : cfg.devices()) {
            try {
                NbdDevice device = NbdDevice.attach(NbdDevice.Options.from(d), EventLoops.of(vertx));
                serving.registry().add(device);
                System.out.println(d.name() + " " + device.blockDevice());
                attached++;
            } catch (NbdConnectionException | RuntimeException e) {
                LOG.error("{}: not attached: {}", d.name(), e.getMessage());
            }
        }
        if (attached == 0) {
            System.err.println("nbdgate: no device could be attached");
            vertx.close();
            return 1;
        }
        serving.start(cfg.statusListen());
        LOG.info("serving {} of {} device(s)", attached, cfg.devices().size());
        serving.awaitAndCleanUp();
        return 0;
    }
}
