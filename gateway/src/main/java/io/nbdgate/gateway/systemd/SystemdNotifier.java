package io.nbdgate.gateway.systemd;

import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * systemd's notify protocol (sd_notify(3)): KEY=VALUE lines in one datagram to the AF_UNIX socket named by
 * NOTIFY_SOCKET ('@' = abstract namespace). Without NOTIFY_SOCKET every call does nothing, so the daemon
 * behaves the same outside systemd.
 */
public final class SystemdNotifier implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(SystemdNotifier.class);

    private final String socket;
    private final Duration watchdog;
    private int fd = -1;
    private String lastStatus;
    private boolean warned;

    /** @param socket the notify socket, or null for none; @param watchdog WatchdogSec, or null for none */
    public SystemdNotifier(String socket, Duration watchdog) {
        this.socket = socket == null || socket.isEmpty() ? null : socket;
        this.watchdog = this.socket == null ? null : watchdog;
    }

    /** From NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, as systemd sets them for a Type=notify service. */
    public static SystemdNotifier fromEnvironment() {
        return fromEnvironment(System.getenv(), ProcessHandle.current().pid());
    }

    static SystemdNotifier fromEnvironment(Map<String, String> env, long pid) {
        Duration watchdog = null;
        String usec = env.get("WATCHDOG_USEC");
        String forPid = env.get("WATCHDOG_PID");
        // WATCHDOG_PID names the process the watchdog is meant for; a child that inherited it must not ping.
        if (usec != null && (forPid == null || forPid.equals(Long.toString(pid)))) {
            try {
                long us = Long.parseLong(usec.trim());
                watchdog = us > 0 ? Duration.ofNanos(us * 1000) : null;
            } catch (NumberFormatException e) {
                LOG.warn("ignoring WATCHDOG_USEC='{}': not a number of microseconds", usec);
            }
        }
        return new SystemdNotifier(env.get("NOTIFY_SOCKET"), watchdog);
    }

    public boolean enabled() {
        return socket != null;
    }

    /** The interval systemd expects pings within, or null when the watchdog is off. */
    public Duration watchdog() {
        return watchdog;
    }

    /** READY=1 with a status line: the service is up, units ordered after it may start. */
    public void ready(String status) {
        lastStatus = status;
        send("READY=1\nSTATUS=" + status);
    }

    /** A STATUS= line for `systemctl status`; sent only when it differs from the last one. */
    public void status(String status) {
        if (!status.equals(lastStatus)) {
            lastStatus = status;
            send("STATUS=" + status);
        }
    }

    public void watchdogPing() {
        send("WATCHDOG=1");
    }

    /** STOPPING=1: the service is shutting down, systemd's stop timeout runs from here. */
    public void stopping(String status) {
        lastStatus = status;
        send("STOPPING=1\nSTATUS=" + status);
    }

    private synchronized void send(String message) {
        if (socket == null) {
            return;
        }
        try {
            if (fd < 0) {
                fd = LinuxCalls.unixDatagramSocket();
            }
            LinuxCalls.sendToUnix(fd, socket, message.getBytes(StandardCharsets.UTF_8));
        } catch (UringException e) {
            // Once: a notify socket that went away (systemd restarted) must not fill the journal.
            if (!warned) {
                warned = true;
                LOG.warn("cannot notify systemd at {}: {}", socket, e.getMessage());
            }
        }
    }

    @Override
    public synchronized void close() {
        if (fd >= 0) {
            LinuxCalls.close(fd);
            fd = -1;
        }
    }
}
