package io.nbdgate.gateway.config;

/** A config file the daemon refuses, with the key at fault, so the user can fix it in one go. */
public final class ConfigException extends Exception {
    private final String key;

    public ConfigException(String key, String problem) {
        super(key.isEmpty() ? problem : key + ": " + problem);
        this.key = key;
    }

    /** Dotted path of the offending key, e.g. {@code devices[1].queues}; empty for the whole file. */
    public String key() {
        return key;
    }
}
