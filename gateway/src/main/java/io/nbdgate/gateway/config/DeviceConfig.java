package io.nbdgate.gateway.config;

import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.tls.TlsSettings;
import java.time.Duration;

/**
 * One device the daemon attaches: an NBD export served as a ublk block device.
 *
 * @param name      unique name, used by {@code detach} and in logs and status
 * @param uri       NBD URI of the export
 * @param queues    ublk queues (= NBD connections); 0 means auto: several only if the server allows multi-conn
 * @param depth     requests in flight per queue
 * @param zeroCopy  buffer mode policy
 * @param readOnly  expose the device read-only even if the export is writable
 * @param deviceId  ublk device number, -1 lets the kernel choose
 * @param connectTimeout how long connecting and the handshake may take
 * @param ioTimeout how long a request may wait for its reply before its connection is given up (and a new
 *                  one carries it)
 * @param reconnectTimeout how long requests may wait without a connection before they fail with EIO;
 *                  null: forever
 * @param sendZcMin in zero-copy mode, the smallest write payload sent with SEND_ZC; smaller ones use SEND
 * @param stageReadsMax READs up to this size may be received together with other replies and copied into
 *                  place; 0 turns that off
 * @param batchIo   let the kernel hand over and take back many requests per ublk command (UBLK_F_BATCH_IO,
 *                  Linux 7.0+) where it can; false keeps one command per request
 * @param structuredReplies whether to ask the server for structured replies (and extended headers);
 *                  {@code auto}: only from a server on another host
 * @param keepalive TCP keepalive and TCP_USER_TIMEOUT, so that a dead link is noticed while idle
 * @param recovery  create the device recoverable: if its process dies, the kernel keeps the device and holds
 *                  its I/O until a new process takes it over
 * @param autoResize when a reconnect finds the export larger, the device grows to its size (as {@code nbdgate
 *                  resize} does); a smaller export is never followed
 * @param tls       TLS settings besides the URI's own (tls-certificates, tls-psk-file, ...); {@link TlsSettings#NONE}
 */
public record DeviceConfig(String name, String uri, int queues, int depth, ZeroCopy zeroCopy, boolean readOnly,
                           int deviceId, Duration connectTimeout, Duration ioTimeout, int sendZcMin,
                           int stageReadsMax, boolean batchIo, StructuredReplies structuredReplies,
                           Duration reconnectTimeout, LinkOptions.Keepalive keepalive, boolean recovery,
                           boolean autoResize, TlsSettings tls) {

    /** Without reconnect settings: the defaults. */
    public DeviceConfig(String name, String uri, int queues, int depth, ZeroCopy zeroCopy, boolean readOnly,
                        int deviceId, Duration connectTimeout, Duration ioTimeout, int sendZcMin, int stageReadsMax,
                        boolean batchIo, StructuredReplies structuredReplies) {
        this(name, uri, queues, depth, zeroCopy, readOnly, deviceId, connectTimeout, ioTimeout, sendZcMin,
                stageReadsMax, batchIo, structuredReplies, DEFAULT_RECONNECT_TIMEOUT, defaultKeepalive(ioTimeout), true,
                false, TlsSettings.NONE);
    }

    public static final int AUTO_QUEUES = 0;
    public static final int MAX_QUEUES = 64;
    public static final int DEFAULT_DEPTH = 128;
    /** UBLK_MAX_QUEUE_DEPTH in the kernel's ublk_cmd.h. */
    public static final int MAX_DEPTH = 4096;
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_IO_TIMEOUT = Duration.ofSeconds(30);
    public static final Duration DEFAULT_RECONNECT_TIMEOUT = Duration.ofMinutes(5);

    /** Probes after 10 s idle, every 5 s, 3 unanswered: a dead peer is noticed in 25 s; sent data may wait io-timeout. */
    public static LinkOptions.Keepalive defaultKeepalive(Duration ioTimeout) {
        return new LinkOptions.Keepalive(Duration.ofSeconds(10), Duration.ofSeconds(5), 3, ioTimeout);
    }
    /**
     * SEND_ZC pins the pages and costs a second completion, which pays off only for large payloads (and
     * never on loopback, where the kernel copies zero-copy pages anyway); below this, plain SEND from the
     * same registered buffer lets the kernel copy. Java touches no data byte either way.
     */
    public static final int DEFAULT_SEND_ZC_MIN = 64 << 10;
    /**
     * A small READ received straight into its buffer costs its own receive and a trip through the event loop
     * per reply; received together with the replies around it and copied into place, a bunch costs one.
     * Above this size the copy costs more than the trip.
     */
    public static final int DEFAULT_STAGE_READS_MAX = 16 << 10;
}
