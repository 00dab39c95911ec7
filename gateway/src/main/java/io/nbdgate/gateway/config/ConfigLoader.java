package io.nbdgate.gateway.config;

import io.vertx.config.ConfigRetriever;
import io.vertx.config.ConfigRetrieverOptions;
import io.vertx.config.ConfigStoreOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reads the daemon's YAML file through vertx-config and validates it into a {@link DaemonConfig}. */
public final class ConfigLoader {
    private ConfigLoader() {
    }

    /** Loads and validates {@code file}; every failure is a {@link ConfigException} with one readable line. */
    public static Future<DaemonConfig> load(Vertx vertx, Path file) {
        if (!Files.isRegularFile(file)) {
            return Future.failedFuture(new ConfigException("", "no such file: " + file));
        }
        if (!Files.isReadable(file)) {
            return Future.failedFuture(new ConfigException("", "cannot read " + file + " (permission denied)"));
        }
        ConfigStoreOptions store = new ConfigStoreOptions().setType("file").setFormat("yaml")
                .setConfig(new JsonObject().put("path", file.toAbsolutePath().toString()));
        ConfigRetriever retriever = ConfigRetriever.create(vertx,
                new ConfigRetrieverOptions().addStore(store).setIncludeDefaultStores(false).setScanPeriod(-1));
        return retriever.getConfig()
                .eventually(retriever::close)
                .recover(e -> Future.failedFuture(new ConfigException("", "not valid YAML: " + oneLine(e))))
                .compose(doc -> {
                    try {
                        return Future.succeededFuture(DaemonConfig.from(doc));
                    } catch (ConfigException e) {
                        return Future.failedFuture(e);
                    }
                });
    }

    // SnakeYAML messages span lines (with a caret drawing); keep the first line and the position.
    private static String oneLine(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String msg = String.valueOf(root.getMessage());
        String first = msg.lines().findFirst().orElse(msg).trim();
        String where = msg.lines().filter(l -> l.contains(" line ")).findFirst().map(String::trim).orElse("");
        return where.isEmpty() || first.contains(where) ? first : first + " (" + where + ")";
    }
}
