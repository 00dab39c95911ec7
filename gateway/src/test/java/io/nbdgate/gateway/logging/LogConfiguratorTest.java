package io.nbdgate.gateway.logging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.LoggingEvent;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.read.ListAppender;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.LocalTime;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;
import org.junit.jupiter.api.Test;

/** The configuration nbdgate's JVMs log with, applied to fresh LoggerContexts (not the tests' own). */
class LogConfiguratorTest {

    @Test
    void logsOneLinePerEventOnStderrWithNettyAndVertxAtWarn() {
        LoggerContext context = new LoggerContext();
        LogConfigurator.apply(context, null, null);

        Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
        assertEquals(Level.INFO, root.getLevel());
        assertEquals(Level.WARN, context.getLogger("io.netty").getLevel());
        assertEquals(Level.WARN, context.getLogger("io.vertx").getLevel());
        assertEquals(Level.WARN, context.getLogger("io.netty.channel.uring.IoUring").getEffectiveLevel());
        assertEquals(Level.INFO, context.getLogger("io.nbdgate.gateway.cli.Main").getEffectiveLevel());

        List<Appender<ILoggingEvent>> appenders = new ArrayList<>();
        root.iteratorForAppenders().forEachRemaining(appenders::add);
        assertEquals(1, appenders.size());
        ConsoleAppender<ILoggingEvent> stderr = assertInstanceOf(ConsoleAppender.class, appenders.get(0));
        assertTrue(stderr.isStarted());
        assertEquals("System.err", stderr.getTarget());
        PatternLayoutEncoder encoder = assertInstanceOf(PatternLayoutEncoder.class, stderr.getEncoder());
        assertEquals(LogConfigurator.PATTERN, encoder.getPattern());

        LoggingEvent event = new LoggingEvent(Logger.FQCN, context.getLogger("io.nbdgate.gateway.cli.ServeCommand"),
                Level.INFO, "serving {}", null, new Object[] {"nbd://127.0.0.1/a"});
        long millis = LocalTime.of(14, 3, 7, 45_000_000).atDate(LocalDate.of(2026, 1, 2))
                .atZone(ZoneId.systemDefault()).toInstant().toEpochMilli();
        event.setTimeStamp(millis);
        assertEquals("14:03:07.045 INFO  ServeCommand: serving nbd://127.0.0.1/a" + System.lineSeparator(),
                new String(encoder.encode(event), StandardCharsets.UTF_8));

        // A state change carries its keys after the message, for grep and journald filters.
        event.addKeyValuePair(new org.slf4j.event.KeyValuePair("device", "disk"));
        event.addKeyValuePair(new org.slf4j.event.KeyValuePair("state", "reconnecting"));
        assertEquals("14:03:07.045 INFO  ServeCommand: serving nbd://127.0.0.1/a device=\"disk\" state=\"reconnecting\""
                + System.lineSeparator(), new String(encoder.encode(event), StandardCharsets.UTF_8));
    }

    @Test
    void jsonWritesOneObjectPerLineWithTheKeysAsFields() throws Exception {
        LoggerContext context = new LoggerContext();
        context.setMDCAdapter(new ch.qos.logback.classic.util.LogbackMDCAdapter()); // as logback's provider does
        LogConfigurator.apply(context, null, "JSON");
        ConsoleAppender<ILoggingEvent> stderr = assertInstanceOf(ConsoleAppender.class,
                context.getLogger(Logger.ROOT_LOGGER_NAME).getAppender("STDERR"));
        LoggingEvent event = new LoggingEvent(Logger.FQCN, context.getLogger("io.nbdgate.gateway.session.QueueSession"),
                Level.WARN, "{}: connection lost", null, new Object[] {"disk queue 0"});
        event.addKeyValuePair(new org.slf4j.event.KeyValuePair("device", "disk"));
        event.addKeyValuePair(new org.slf4j.event.KeyValuePair("queue", 0));
        String line = new String(stderr.getEncoder().encode(event), StandardCharsets.UTF_8);
        assertEquals(1, line.strip().lines().count(), line);
        var json = new io.vertx.core.json.JsonObject(line.strip());
        assertEquals("WARN", json.getString("level"));
        assertEquals("disk queue 0: connection lost", json.getString("formattedMessage"));
        assertTrue(json.getJsonArray("kvpList").encode().contains("\"device\":\"disk\""), line);
    }

    @Test
    void anUnknownFormatLogsTextAndSaysSo() {
        LoggerContext context = new LoggerContext();
        ListAppender<ILoggingEvent> seen = new ListAppender<>();
        seen.setContext(context);
        seen.start();
        context.getLogger(LogConfigurator.class).addAppender(seen);
        LogConfigurator.apply(context, null, "xml");
        assertInstanceOf(PatternLayoutEncoder.class, ((ConsoleAppender<ILoggingEvent>) context
                .getLogger(Logger.ROOT_LOGGER_NAME).getAppender("STDERR")).getEncoder());
        assertEquals(List.of("NBDGATE_LOG_FORMAT=xml is not a format (text, json); logging text"),
                seen.list.stream().map(ILoggingEvent::getFormattedMessage).toList());
    }

    @Test
    void rootLevelComesFromTheVariableInAnyCase() {
        assertEquals(Optional.of(Level.INFO), LogConfigurator.parseLevel(null));
        assertEquals(Optional.of(Level.INFO), LogConfigurator.parseLevel(""));
        assertEquals(Optional.of(Level.INFO), LogConfigurator.parseLevel("  "));
        assertEquals(Optional.of(Level.DEBUG), LogConfigurator.parseLevel("debug"));
        assertEquals(Optional.of(Level.WARN), LogConfigurator.parseLevel(" Warn "));
        assertEquals(Optional.of(Level.TRACE), LogConfigurator.parseLevel("TRACE"));
        assertEquals(Optional.of(Level.OFF), LogConfigurator.parseLevel("off"));
        assertEquals(Optional.empty(), LogConfigurator.parseLevel("verbose"));

        LoggerContext context = new LoggerContext();
        LogConfigurator.apply(context, "debug", null);
        assertEquals(Level.DEBUG, context.getLogger(Logger.ROOT_LOGGER_NAME).getLevel());
        assertEquals(Level.WARN, context.getLogger("io.netty").getLevel());
    }

    @Test
    void anInvalidLevelLogsAtInfoAndSaysSoOnce() {
        LoggerContext context = new LoggerContext();
        ListAppender<ILoggingEvent> seen = new ListAppender<>();
        seen.setContext(context);
        seen.start();
        // Attached before apply() so the warning apply() logs is seen here, next to stderr's copy.
        context.getLogger(LogConfigurator.class).addAppender(seen);

        LogConfigurator.apply(context, "verbose", null);

        assertEquals(Level.INFO, context.getLogger(Logger.ROOT_LOGGER_NAME).getLevel());
        assertEquals(1, seen.list.size());
        ILoggingEvent warning = seen.list.get(0);
        assertEquals(Level.WARN, warning.getLevel());
        assertEquals("NBDGATE_LOG_LEVEL=verbose is not a level (TRACE, DEBUG, INFO, WARN, ERROR, OFF); logging at INFO",
                warning.getFormattedMessage());
    }

    @Test
    void stepsAsideForAConfigurationFileOrALogbackTestXml() throws Exception {
        try (URLClassLoader bare = new URLClassLoader(new URL[0], null)) {
            assertFalse(LogConfigurator.userConfigured(null, bare));
            assertTrue(LogConfigurator.userConfigured("/etc/my-logback.xml", bare));
        }
        // This module's test class path has src/test/resources/logback-test.xml.
        assertTrue(LogConfigurator.userConfigured(null, getClass().getClassLoader()));

        LoggerContext context = new LoggerContext();
        LogConfigurator configurator = new LogConfigurator();
        configurator.setContext(context);
        assertEquals(Configurator.ExecutionStatus.INVOKE_NEXT_IF_ANY, configurator.configure(context));
        assertFalse(context.getLogger(Logger.ROOT_LOGGER_NAME).iteratorForAppenders().hasNext());
    }

    @Test
    void logbackFindsItThroughServiceLoader() {
        assertTrue(ServiceLoader.load(Configurator.class).stream()
                .anyMatch(provider -> provider.type() == LogConfigurator.class));
    }
}
