package io.nbdgate.gateway.session;

import io.netty.channel.IoEventLoop;
import io.nbdgate.gateway.link.Link;
import io.nbdgate.gateway.link.LinkOptions;
import io.nbdgate.gateway.link.LinkOwner;
import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.gateway.link.Request;
import io.nbdgate.gateway.metrics.QueueCounters;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.protocol.client.HandshakeConfig;
import io.nbdgate.uring.Errno;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.event.Level;
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
    /**
     * -Dnbdgate.counters=false turns the per-request counting off, for the benchmark that measures what it costs
     * (/metrics then reports no requests); a constant, so the JIT drops the branch.
     */
    private static final boolean COUNTING = !"false".equals(System.getProperty("nbdgate.counters"));

    /** Where finished requests go, on the loop thread. */
    public interface Listener {
        void completed(Request request);
    }

    private final String name;
    private final IoEventLoop loop;
    private final Supplier<SocketAddress> address;
    private final HandshakeConfig handshake;
    private final LinkOptions linkOptions;
    private final ReconnectPolicy policy;
    private final boolean needsMultiConn;
    private final Request[] requests;
    private final QueueCounters counters;
    private final WaitingRequests waiting = new WaitingRequests();
    private final CompletableFuture<QueueSession> opened = new CompletableFuture<>();
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    private final Listener listener;
    private final ExportWatch export = new ExportWatch();
    private Link link;       // READY, carrying requests
    private Link attempt;    // connecting
    private final SessionStatus status;
    private long nextSeq;
    private final RetryTimers timers;
    private boolean detaching;
    // Since a link was lost and until a new one answers something: the reconnect timeout runs on, so a server that
    // accepts connections but never answers cannot make requests wait forever.
    private boolean recovering;

    private QueueSession(String device, int queue, IoEventLoop loop, Supplier<SocketAddress> address,
                         HandshakeConfig handshake, LinkOptions linkOptions, int depth, ReconnectPolicy policy,
                         boolean needsMultiConn, Listener listener) {
        this.name = device + " queue " + queue;
        this.loop = loop;
        this.address = address;
        this.handshake = handshake;
        this.linkOptions = linkOptions;
        this.policy = policy;
        this.needsMultiConn = needsMultiConn;
        this.listener = listener;
        this.requests = new Request[depth];
        this.counters = new QueueCounters(depth);
        this.timers = new RetryTimers(loop);
        this.status = new SessionStatus(device, queue);
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
                needsMultiConn, listener);
        loop.execute(s::connect);
        return s.opened;
    }

    /** The export as the first link found it (with the size of the last resize): what the device is made from. */
    public ExportInfo export() {
        return export.export();
    }

    /** Told (on the loop) the export's size when a reconnect finds it larger than the device. */
    public void onExportGrowth(LongConsumer c) {
        export.onGrowth(c);
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
            export.awaitRenewal(done);
            if (link != null) {
                link.abandon(why);
            }
        });
        return done;
    }

    /** The device now has {@code bytes}: a reconnect checks the export against that size from here on. */
    public void resized(long bytes) {
        loop.execute(() -> export.resized(bytes));
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
        long now = System.nanoTime(); // one clock read for the latency and the link's io-timeout
        if (COUNTING) {
            counters.started(r.tag(), QueueCounters.op(r.command()), now);
        }
        r.seq(nextSeq++);
        switch (status.state()) {
            case CONNECTED -> link.submit(r, now);
            case RECONNECTING -> waiting.add(r);
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
        if (COUNTING) {
            counters.finished(r.tag(), r.length(), r.result(), System.nanoTime());
        }
        listener.completed(r);
    }

    private void failWaiting() {
        export.renewed(new NbdConnectionException(name + ": " + status.state()));
        for (Request r : waiting.takeAll()) {
            fail(r);
        }
    }

    // ---------------------------------------------------------------- links

    private void connect() {
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
        status.tls(l.tlsStatus());
        if (!export.known()) {
            export.first(info);
            status.become(LinkStatus.State.CONNECTED, null);
            link = l;
            opened.complete(this);
            return;
        }
        String problem = export.incompatibility(info);
        if (problem != null) {
            status.error(problem);
            if (status.state() != LinkStatus.State.FAILED) {
                status.line(LOG, Level.ERROR, LinkStatus.State.FAILED).log(
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
        export.reconnected(info);
        timers.cancelRetry();
        link = l;
        int n = waiting.size();
        if (n == 0) {
            recovered();
        }
        status.line(LOG, Level.INFO, LinkStatus.State.CONNECTED).log(
                "{}: connected again to {} after {} attempt(s); resending {} request(s)", name, l.peer(),
                status.attempts(), n);
        status.become(LinkStatus.State.CONNECTED, null);
        export.renewed(null);
        for (Request r : waiting.takeAll()) {
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
        timers.cancelGiveUp();
    }

    @Override
    public void down(Link l, String reason) {
        if (l == attempt) {
            if (!export.known()) {
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
        status.line(LOG, Level.WARN, LinkStatus.State.RECONNECTING).log("{}: connection to {} lost: {}; reconnecting", name,
                l.peer(), reason);
        status.become(LinkStatus.State.RECONNECTING, reason);
        Duration limit = policy.reconnectTimeout();
        if (limit != null) {
            timers.giveUpAfter(limit, this::giveUp);
        }
    }

    @Override
    public void closed(Link l, List<Request> unanswered) {
        if (l == attempt) {
            attempt = null;
        }
        if (!unanswered.isEmpty()) {
            status.resent(unanswered.size());
            waiting.addUnanswered(unanswered);
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
        if (link == null && attempt == null && !timers.retryPending()) {
            timers.retryAfter(policy.delay(status.nextAttempt()), this::connect);
        }
    }

    /**
     * No working link for the whole reconnect timeout: waiting requests fail, new ones too, and a new link that
     * answered nothing is given up with what it holds; attempts go on.
     */
    private void giveUp() {
        if (status.state() == LinkStatus.State.RECONNECTING) {
            status.line(LOG, Level.ERROR, LinkStatus.State.FAILED).log(
                    "{}: no connection for {} s ({}); I/O fails with EIO until the server is back", name,
                    policy.reconnectTimeout().toSeconds(), status.lastError());
            status.become(LinkStatus.State.FAILED, status.lastError());
            failWaiting();
        } else if (status.state() == LinkStatus.State.CONNECTED && recovering && link != null) {
            status.line(LOG, Level.ERROR, LinkStatus.State.FAILED).log(
                    "{}: the server answered nothing for {} s after reconnecting; I/O fails with EIO", name,
                    policy.reconnectTimeout().toSeconds());
            status.become(LinkStatus.State.FAILED, "no reply within the reconnect timeout");
            link.abandon("no reply within the reconnect timeout");
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
                timers.cancelAll();
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
            timers.cancelAll();
            failWaiting();
            if (attempt != null) {
                attempt.closeAsync("detached");
            }
            if (link != null) {
                LinkDrain.close(loop, link, requests, grace);
            }
            if (link == null && attempt == null) {
                stopped.complete(null);
            }
        });
        return stopped;
    }

    /** True while a link carries the queue's requests. */
    public boolean connected() {
        return status.published().state() == LinkStatus.State.CONNECTED;
    }
}
