package io.nbdgate.gateway.link;

import io.nbdgate.protocol.ExportInfo;
import java.util.List;

/** What a link reports to the session that owns its requests; every call on the link's loop thread. */
public interface LinkOwner {
    /** The handshake is done: requests may be submitted. */
    void ready(Link link, ExportInfo export);

    /** The server answered {@code request} ({@link Request#result()}) and the kernel let go of its pages. */
    void completed(Request request);

    /**
     * The link will carry nothing more ({@code reason} says why). Requests it holds come back through
     * {@link #closed} once the kernel has let go of their buffers; none is submitted to it any more.
     */
    void down(Link link, String reason);

    /**
     * The link is closed: its socket is gone and no operation of it is outstanding. {@code unanswered} are the
     * requests it took that got no reply, in the order they were handed to it; each may be sent again as it is.
     */
    void closed(Link link, List<Request> unanswered);
}
