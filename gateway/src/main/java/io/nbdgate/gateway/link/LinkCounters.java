package io.nbdgate.gateway.link;

/**
 * What one link's adaptive parts did, for tests and comparisons: how replies were received, how sends were
 * chained. The process-wide byte accounting is {@link DataPathStats}. Loop thread only.
 */
public final class LinkCounters {
    private final Link link;

    LinkCounters(Link link) {
        this.link = link;
    }

    /** TLS alerts (close_notify included) that ended kernel TLS links, process-wide. */
    public static long tlsAlertsReceived() {
        return LinkTls.ALERTS.sum();
    }

    /** Ring operations (SQEs) the link submitted. */
    public long ringOperations() {
        return link.inFlight.submitted();
    }

    /** Receives that took reply header bytes. */
    public long headerReceives() {
        return link.replies.headerReceives();
    }

    /** Send chains: the requests' headers and payloads that went out together. */
    public long sendChains() {
        return link.sender.chains();
    }

    /** send(2) calls made on the loop thread instead of a SEND on the ring (headers, copy-mode payloads). */
    public long directSends() {
        return link.sender.directSends();
    }

    /** Payloads of lone WRITEs sent by a SEND that posts no completion unless it fails. */
    public long silentSends() {
        return link.sender.silentSends();
    }

    /** Reply data bytes received together with headers and copied into place. */
    public long stagedBytes() {
        return link.replies.landing.stagedBytes();
    }

    /** Reply bytes received into the registered rx buffer (0 where the kernel cannot). */
    public long fixedRxBytes() {
        return link.replies.fixedRxBytes();
    }

    /** Data receives that waited, through SO_RCVLOWAT, for all of their bytes. */
    public long lowWaterReceives() {
        return link.replies.landing.lowWaterReceives();
    }

    /** Batching header receives cancelled so that a READ that must not be staged could go out at once. */
    public long batchingCancels() {
        return link.replies.batchingCancels();
    }

    /** READs that waited for a batching header receive (linked, so not cancellable) to end before they were sent. */
    public long readsHeldBack() {
        return link.replies.readsHeldBack();
    }

    /** Turns the SO_RCVLOWAT wait of large data receives off or on (for comparisons). */
    public void useLowWater(boolean on) {
        link.replies.landing.useLowWater(on);
    }
}
