package io.nbdgate.gateway.logging;

import ch.qos.logback.classic.ClassicConstants;
import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ConfiguratorRank;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.core.spi.ContextAwareBase;
import java.util.Optional;

/**
 * nbdgate's logging: one line per event on stderr, so stdout carries only results (e.g. the device path);
 * Netty and Vert.x at WARN; the root level from NBDGATE_LOG_LEVEL (default INFO); NBDGATE_LOG_FORMAT=json
 * writes each line as one JSON object (logback's JsonEncoder) instead of text. A device's state changes carry
 * device=, queue= and state= as key-value pairs: after the message in text, as fields in JSON. Set up in code, not in a
 * logback.xml, because logback's XML configuration (Joran) cost seconds per JVM start in the TCG guest.
 * Logback finds this class through ServiceLoader (META-INF/services) and asks it before its own configurators.
 */
@ConfiguratorRank(ConfiguratorRank.CUSTOM_NORMAL_PRIORITY)
public final class LogConfigurator extends ContextAwareBase implements Configurator {
    static final String LEVEL_VARIABLE = "NBDGATE_LOG_LEVEL";
    static final String FORMAT_VARIABLE = "NBDGATE_LOG_FORMAT";
    // %kvp is empty without key-value pairs: the replace drops the space that would stay.
    static final String PATTERN = "%d{HH:mm:ss.SSS} %-5level %logger{0}: %msg%replace( %kvp){'^ $', ''}%n";

    @Override
    public ExecutionStatus configure(LoggerContext context) {
        if (userConfigured(System.getProperty(ClassicConstants.CONFIG_FILE_PROPERTY), getClass().getClassLoader())) {
            addInfo("A logback configuration file is given; leaving logging to logback's own configurators");
            return ExecutionStatus.INVOKE_NEXT_IF_ANY;
        }
        apply(context, System.getenv(LEVEL_VARIABLE), System.getenv(FORMAT_VARIABLE));
        return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
    }

    /** A -Dlogback.configurationFile or a logback-test.xml on the class path (the tests') wins over ours. */
    static boolean userConfigured(String configurationFileProperty, ClassLoader loader) {
        return configurationFileProperty != null
                || loader.getResource(ClassicConstants.TEST_AUTOCONFIG_FILE) != null;
    }

    /** Sets up the context; levelName and format are NBDGATE_LOG_LEVEL's and NBDGATE_LOG_FORMAT's values, or null. */
    static void apply(LoggerContext context, String levelName, String format) {
        boolean json = format != null && format.strip().equalsIgnoreCase("json");
        Encoder<ILoggingEvent> encoder;
        if (json) {
            JsonEncoder j = new JsonEncoder();
            j.setWithSequenceNumber(false);
            j.setWithNanoseconds(false);
            j.setWithContext(false);
            j.setWithMDC(false);
            j.setWithMessage(false);
            j.setWithArguments(false);
            j.setWithFormattedMessage(true);
            encoder = j;
        } else {
            PatternLayoutEncoder p = new PatternLayoutEncoder();
            p.setPattern(PATTERN);
            encoder = p;
        }
        encoder.setContext(context);
        encoder.start();
        ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
        stderr.setContext(context);
        stderr.setName("STDERR");
        stderr.setTarget("System.err");
        stderr.setEncoder(encoder);
        stderr.start();

        context.getLogger("io.netty").setLevel(Level.WARN);
        context.getLogger("io.vertx").setLevel(Level.WARN);
        Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
        Optional<Level> level = parseLevel(levelName);
        root.setLevel(level.orElse(Level.INFO));
        root.addAppender(stderr);
        if (level.isEmpty()) {
            context.getLogger(LogConfigurator.class).warn(
                    "{}={} is not a level (TRACE, DEBUG, INFO, WARN, ERROR, OFF); logging at INFO",
                    LEVEL_VARIABLE, levelName);
        }
        if (format != null && !json && !format.isBlank() && !format.strip().equalsIgnoreCase("text")) {
            context.getLogger(LogConfigurator.class).warn("{}={} is not a format (text, json); logging text",
                    FORMAT_VARIABLE, format);
        }
    }

    /** The level NBDGATE_LOG_LEVEL names, in any case; INFO when unset or blank, empty when it names none. */
    static Optional<Level> parseLevel(String levelName) {
        if (levelName == null || levelName.isBlank()) {
            return Optional.of(Level.INFO);
        }
        return Optional.ofNullable(Level.toLevel(levelName.strip(), null));
    }
}
