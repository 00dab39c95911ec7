package io.nbdgate.gateway.session;

import io.netty.channel.IoEventLoop;
import io.nbdgate.gateway.link.Link;
import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.link.LinkOwner;
import io.nbdgate.gateway.link.LinkState;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.link.Request;
import io.nbdgate.gateway.link.TimeoutTicker;
import io.nbdgate.gateway.metrics.QueueCounters;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.Errno;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.event.Level;
import org.slf4j.spi.LoggingEventBuilder;
import org.slf4j.LoggerFactory;

/**
 * One ublk queue's requests and the links that carry them. The session owns a record per tag; a link takes
 * requests and hands back the ones it could not answer when it ends. A lost link is not a failed request:
 * the session connects again (at once, then with backoff), checks that the export is still the one the device
 * was made from, and sends the unanswered requests again in their original order, before any newer one.
 * Acknowledged requests were completed and are never sent again. Requests wait without a link for at most
 * the policy's reconnect timeout; past it they fail with EIO, and so do new ones, until a link is back.
 *
 * <p>Loop thread only, except {@link #open}, {@link #status} and {@link #stop}.
 */
public final class QueueSession implements LinkOwner {
    private static final Logger LOG = LoggerFactory.getLogger(QueueSession.class);

    /** Where finished requests go, on the loop thread. */
    public interface Listener {
        void completed(Request request);
    }

    private final String name;
    private final String device;
    private final int queue;
    private final IoEventLoop loop;
    private final Supplier<SocketAddress> address;
    private final HandshakeConfig handshake;
    private final LinkOptions linkOptions;
    private final ReconnectPolicy policy;
    private final boolean needsMultiConn;
    private final Request[] requests;
    private final QueueCounters counters;
    private final List<Request> waiting = new ArrayList<>();
    private final CompletableFuture<QueueSession> opened = new CompletableFuture<>();
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    private Listener listener;
    private volatile java.util.function.LongConsumer onGrowth;
    // renewLink callers, told when the next link is READY (or that none will be)
    private final List<CompletableFuture<Void>> renewals = new ArrayList<>();
    private ExportInfo export;
    private Link link;       // READY, carrying requests
    private Link attempt;    // connecting
    private final SessionStatus status = new SessionStatus();
    private long nextSeq;
    private Future<?> retryTimer;
    private Future<?> giveUpTimer;
    private boolean detaching;
    // Since a link was lost and until a new one answers something: the reconnect timeout runs on, so a server that
    // accepts connections but never answers cannot make requests wait forever.
    private boolean recovering;

    private QueueSession(String device, int queue, IoEventLoop loop, Supplier<SocketAddress> address,
                         HandshakeConfig handshake, LinkOptions linkOptions, int depth, ReconnectPolicy policy,
                         boolean needsMultiConn) {
        this.name = device + " queue " + queue;
        this.device = device;
        this.queue = queue;
        this.loop = loop;
        this.address = address;
        this.handshake = handshake;
        this.linkOptions = linkOptions;
        this.policy = policy;
        this.needsMultiConn = needsMultiConn;
        this.requests = new Request[depth];
        this.counters = new QueueCounters(depth);
        for (int t = 0; t < depth; t++) {
            requests[t] = new Request(t);
        }
    }

    /**
     * Connects the first link. The future completes with the session once it is READY, or fails with a one-line
     * {@link NbdConnectionException}: at attach time a server that cannot be reached is an error, not a wait.
     *
     * @param device         the device's name, for the log ("disk queue 1") and its device= key
     * @param queue          the queue's index
     * @param address        where the server is, asked again for every attempt (a host name is re-resolved)
     * @param needsMultiConn this queue is one of several connections to the export: a server that stops
     *                       advertising CAN_MULTI_CONN cannot take it back (the queue waits instead)
     */
    public static CompletableFuture<QueueSession> open(String device, int queue, IoEventLoop loop,
            Supplier<SocketAddress> address, HandshakeConfig handshake, LinkOptions linkOptions, int depth,
            ReconnectPolicy policy, boolean needsMultiConn, Listener listener) {
        QueueSession s = new QueueSession(device, queue, loop, address, handshake, linkOptions, depth, policy,
                needsMultiConn);
        s.listener = listener;
        loop.execute(s::connect);
        return s.opened;
    }

    /** The export as the first link found it (with the size of the last resize): what the device is made from. */
    public ExportInfo export() {
        return export;
    }

    /**
     * A line for a change of this queue's state, carrying device=, queue= and state= as key-value pairs: the text
     * log shows them after the message, the JSON log as fields, so journald or Loki users filter by device.
     */
    private LoggingEventBuilder stateLine(Level level, LinkStatus.State to) {
        return LOG.atLevel(level).addKeyValue("device", device).addKeyValue("queue", queue)
                .addKeyValue("state", to.name().toLowerCase(java.util.Locale.ROOT));
    }

    /** Told (on the loop) the export's size when a reconnect finds it larger than the device. */
    public void onExportGrowth(java.util.function.LongConsumer c) {
        onGrowth = c;
    }

    /**
     * Ends the current link and completes once a new one is READY: its handshake sees the export as the server
     * has it now. An NBD server checks requests against the size it announced on that connection, so a device
     * that grew must reconnect before it sends requests to the new end. Requests in flight go out again on the
     * new link, as after any loss.
     */
    public CompletableFuture<Void> renewLink(String why) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        loop.execute(() -> {
            if (status.state() == LinkStatus.State.CLOSED || status.state() == LinkStatus.State.FAILED) {
                done.completeExceptionally(new NbdConnectionException(name + " is " + status.state()));
                return;
            }
            renewals.add(done);
            if (link != null) {
                link.abandon(why);
            }
        });
        return done;
    }

    private void renewed(Throwable failure) {
        List<CompletableFuture<Void>> all = new ArrayList<>(renewals);
        renewals.clear();
        all.forEach(f -> {
            if (failure == null) {
                f.complete(null);
            } else {
                f.completeExceptionally(failure);
            }
        });
    }

    /** The device now has {@code bytes}: a reconnect checks the export against that size from here on. */
    public void resized(long bytes) {
        loop.execute(() -> export = export.withSize(bytes));
    }

    public IoEventLoop loop() {
        return loop;
    }

    /** The record of {@code tag}: fill it ({@link Request#load}, its buffer) and {@link #submit} it. */
    public Request request(int tag) {
        return requests[tag];
    }

    /** The connection's state, counts and last error; any thread. */
    public LinkStatus status() {
        return status.published();
    }

    /** What /metrics reports of this queue: written here, on the loop thread, read by a scrape. */
    public QueueCounters counters() {
        return counters;
    }

    /** The link carrying requests now, or null. Loop thread only (tests). */
    public Link link() {
        return link;
    }

    // ---------------------------------------------------------------- requests

    /** Sends {@code r} now, keeps it until a link is back, or fails it with EIO past the reconnect timeout. */
    public void submit(Request r) {
        counters.started(r.tag(), QueueCounters.op(r.command()), System.nanoTime());
        r.seq(nextSeq++);
        switch (status.state()) {
            case CONNECTED -> link.submit(r);
            case RECONNECTING -> {
                r.phase(Request.Phase.WAITING);
                waiting.add(r);
            }
            case FAILED, CLOSED -> fail(r);
        }
    }

    private void fail(Request r) {
        r.phase(Request.Phase.FREE);
        r.result(-Errno.EIO);
        finish(r);
    }

    /** Every request submitted ends here, once: answered, or failed without a link. */
    private void finish(Request r) {
        counters.finished(r.tag(), r.length(), r.result(), System.nanoTime());
        listener.completed(r);
    }

    private void failWaiting() {
        renewed(new NbdConnectionException(name + ": " + status.state()));
        List<Request> all = new ArrayList<>(waiting);
        waiting.clear();
        for (Request r : all) {
            fail(r);
        }
    }

    // ---------------------------------------------------------------- links

    private void connect() {
        retryTimer = null;
        if (status.state() == LinkStatus.State.CLOSED || attempt != null) {
            return;
        }
        attempt = Link.open(loop, address.get(), handshake, linkOptions, requests, this);
    }

    @Override
    public void ready(Link l, ExportInfo info) {
        if (l != attempt) {
            return;
        }
        attempt = null;
        if (status.state() == LinkStatus.State.CLOSED) {
            l.disconnect();
            return;
        }
        if (export == null) {
            export = info;
            status.become(LinkStatus.State.CONNECTED, null);
            link = l;
            opened.complete(this);
            return;
        }
        String problem = ExportCheck.incompatibility(export, info);
        if (problem != null) {
            status.error(problem);
            if (status.state() != LinkStatus.State.FAILED) {
                stateLine(Level.ERROR, LinkStatus.State.FAILED).log(
                        "{}: {}; I/O fails with EIO until the server offers the export the device was made from", name,
                        problem);
                status.become(LinkStatus.State.FAILED, problem);
                failWaiting();
            }
            l.disconnect();
            return;
        }
        if (needsMultiConn && !info.canMultiConn()) {
            status.error("the server no longer advertises CAN_MULTI_CONN; this queue waits for it");
            l.disconnect();
            return;
        }
        java.util.function.LongConsumer grew = onGrowth;
        if (grew != null && info.size() > export.size()) {
            grew.accept(info.size());
        }
        cancelRetry();
        link = l;
        int n = waiting.size();
        if (n == 0) {
            recovered();
        }
        stateLine(Level.INFO, LinkStatus.State.CONNECTED).log(
                "{}: connected again to {} after {} attempt(s); resending {} request(s)", name, l.peer(),
                status.attempts(), n);
        status.become(LinkStatus.State.CONNECTED, null);
        renewed(null);
        List<Request> again = new ArrayList<>(waiting);
        waiting.clear();
        for (Request r : again) {
            if (r.phase() == Request.Phase.WAITING) {
                l.submit(r);
            }
        }
    }

    @Override
    public void completed(Request r) {
        if (recovering) {
            recovered();
        }
        finish(r);
    }

    private void recovered() {
        recovering = false;
        if (giveUpTimer != null) {
            giveUpTimer.cancel(false);
            giveUpTimer = null;
        }
    }

    @Override
    public void down(Link l, String reason) {
        if (l == attempt) {
            if (export == null) {
                // The first link: attach fails with the reason.
                status.become(LinkStatus.State.CLOSED, reason);
                opened.completeExceptionally(new NbdConnectionException(reason));
                return;
            }
            status.error(reason);
            LOG.debug("{}: attempt {} failed: {}", name, status.attempts(), reason);
            return; // closed() schedules the next attempt
        }
        if (l != link) {
            return;
        }
        link = null;
        if (status.state() == LinkStatus.State.CLOSED) {
            return;
        }
        if (detaching) {
            status.become(LinkStatus.State.CLOSED, reason); // its unanswered requests fail when it has closed
            return;
        }
        status.linkLost();
        recovering = true;
        if (status.state() == LinkStatus.State.FAILED) {
            status.error(reason);
            return; // its requests fail when it has closed; attempts go on
        }
        stateLine(Level.WARN, LinkStatus.State.RECONNECTING).log("{}: connection to {} lost: {}; reconnecting", name,
                l.peer(), reason);
        status.become(LinkStatus.State.RECONNECTING, reason);
        Duration limit = policy.reconnectTimeout();
        if (limit != null && giveUpTimer == null) {
            giveUpTimer = TimeoutTicker.after(loop, limit, this::giveUp);
        }
    }

    @Override
    public void closed(Link l, List<Request> unanswered) {
        if (l == attempt) {
            attempt = null;
        }
        if (!unanswered.isEmpty()) {
            status.resent(unanswered.size());
            waiting.addAll(unanswered);
            waiting.sort(Comparator.comparingLong(Request::seq));
        }
        switch (status.state()) {
            case FAILED, CLOSED -> failWaiting();
            default -> { }
        }
        if (status.state() == LinkStatus.State.CLOSED) {
            if (attempt == null && link == null) {
                stopped.complete(null);
            }
            return;
        }
        if (link == null && attempt == null && retryTimer == null) {
            Duration d = policy.delay(status.nextAttempt());
            if (d.isZero()) {
                connect();
            } else {
                retryTimer = TimeoutTicker.after(loop, d, this::connect);
            }
        }
    }

    /**
     * No working link for the whole reconnect timeout: waiting requests fail, new ones too, and a new link that
     * answered nothing is given up with what it holds; attempts go on.
     */
    private void giveUp() {
        giveUpTimer = null;
        if (status.state() == LinkStatus.State.RECONNECTING) {
            stateLine(Level.ERROR, LinkStatus.State.FAILED).log(
                    "{}: no connection for {} s ({}); I/O fails with EIO until the server is back", name,
                    policy.reconnectTimeout().toSeconds(), status.lastError());
            status.become(LinkStatus.State.FAILED, status.lastError());
            failWaiting();
        } else if (status.state() == LinkStatus.State.CONNECTED && recovering && link != null) {
            stateLine(Level.ERROR, LinkStatus.State.FAILED).log(
                    "{}: the server answered nothing for {} s after reconnecting; I/O fails with EIO", name,
                    policy.reconnectTimeout().toSeconds());
            status.become(LinkStatus.State.FAILED, "no reply within the reconnect timeout");
            link.abandon("no reply within the reconnect timeout");
        }
    }

    private void cancelRetry() {
        if (retryTimer != null) {
            retryTimer.cancel(false);
            retryTimer = null;
        }
    }

    private void cancelTimers() {
        cancelRetry();
        if (giveUpTimer != null) {
            giveUpTimer.cancel(false);
            giveUpTimer = null;
        }
    }

    // ---------------------------------------------------------------- stopping

    /**
     * The device is being removed, from any thread: a connected queue keeps serving until the kernel has drained
     * it, but nothing waits for a link any more: without one, waiting and new requests fail with EIO at once.
     */
    public void detaching() {
        loop.execute(() -> {
            detaching = true;
            if (status.state() == LinkStatus.State.RECONNECTING || status.state() == LinkStatus.State.FAILED) {
                status.become(LinkStatus.State.CLOSED, null);
                cancelTimers();
                failWaiting();
                if (attempt != null) {
                    attempt.closeAsync("detached");
                }
            }
        });
    }

    /**
     * Stops serving, from any thread: requests waiting for a link fail with EIO now, requests on a live link get
     * {@code grace} to be answered before the link is cut, and no new attempt starts. The future completes once
     * no link is left.
     */
    public CompletableFuture<Void> stop(Duration grace) {
        loop.execute(() -> {
            if (status.state() == LinkStatus.State.CLOSED && opened.isDone()) {
                if (link == null && attempt == null) {
                    stopped.complete(null);
                }
                return;
            }
            status.become(LinkStatus.State.CLOSED, null);
            cancelTimers();
            failWaiting();
            if (attempt != null) {
                attempt.closeAsync("detached");
            }
            if (link != null) {
                Link l = link;
                if (l.state() == LinkState.READY && idle(l)) {
                    l.disconnect();
                } else {
                    TimeoutTicker.after(loop, grace, () -> l.closeAsync("detached"));
                    pollIdle(l);
                }
            }
            if (link == null && attempt == null) {
                stopped.complete(null);
            }
        });
        return stopped;
    }

    /** Disconnects politely once the link's last request is answered. */
    private void pollIdle(Link l) {
        if (l.state() != LinkState.READY) {
            return;
        }
        if (idle(l)) {
            l.disconnect();
        } else {
            TimeoutTicker.after(loop, Duration.ofMillis(50), () -> pollIdle(l));
        }
    }

    private boolean idle(Link l) {
        for (Request r : requests) {
            if (r.phase() == Request.Phase.ON_LINK) {
                return false;
            }
        }
        return true;
    }

    /** True while a link carries the queue's requests. */
    public boolean connected() {
        return status.published().state() == LinkStatus.State.CONNECTED;
    }
}
