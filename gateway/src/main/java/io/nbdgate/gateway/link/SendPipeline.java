package io.nbdgate.gateway.link;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.wire.RequestCodec;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.IoUringAbi;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.SilentOps;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * Request headers and payloads onto the socket, as one IOSQE_IO_LINK chain at a time: runs of headers
 * contiguous in the header buffer, each payload right behind its header, MSG_MORE on all but the last. The
 * kernel runs a chain's sends one after the other, so bytes never interleave; the next chain starts when the
 * last completion of this one is in. A chain is started by a loop task, so the requests of one batch of ublk
 * completions share it (Netty runs tasks after it has handled every completion of a pass).
 */
final class SendPipeline {
    /** SQEs in one send chain at most; the rest waits for the next chain. */
    private static final int MAX_CHAIN = 64;
    /** A lone WRITE's payload goes without a completion if it is at most this share of the socket's send buffer. */
    private static final int SILENT_SHARE = 4;
    private static final int HEADER_MAX = 32;

    private final Link link;
    private final Request[] queue; // in wire order; the chain in flight covers the first chainCount
    private int head;
    private int count;
    private int write; // next header position in the header buffer
    private boolean busy;
    private boolean flushQueued;
    private final Runnable flush = this::flush;
    private TransmissionMode mode;
    private final long[] chainAddr = new long[MAX_CHAIN];
    private final int[] chainLen = new int[MAX_CHAIN];
    private final Request[] chainPayload = new Request[MAX_CHAIN]; // null for a run of headers
    private final boolean[] chainZc = new boolean[MAX_CHAIN];
    private int chainOps;   // SQEs of the chain whose completion is still to come
    private int chainNext;  // index of the SQE whose completion comes next (a chain completes in order)
    private int chainSize;  // SQEs in the chain
    private int chainCount; // requests the chain carries, from head
    private long chains;
    private long directSends;
    private long silentSends;
    /** The lone WRITE whose payload went without a completion: its reply says the send is done. */
    private Request silentOf;
    /** The loop's turn in which that payload's SEND was queued. */
    private long silentTurn;

    SendPipeline(Link link) {
        this.link = link;
        this.queue = new Request[link.requests.length];
    }

    /** Headers are packed densely and wrap; twice the worst case in flight keeps writer and sender apart. */
    static int headerBufferSize(int depth) {
        return Math.max(64 << 10, 2 * depth * HEADER_MAX + HEADER_MAX);
    }

    void start(TransmissionMode m) {
        mode = m;
        write = 0;
    }

    boolean idle() {
        return count == 0 && !busy;
    }

    /** Send chains so far. */
    long chains() {
        return chains;
    }

    /** send(2) calls the loop made itself instead of a SEND on the ring. */
    long directSends() {
        return directSends;
    }

    /** Payloads of lone WRITEs sent by a SEND that posts no completion on success. */
    long silentSends() {
        return silentSends;
    }

    /** Encodes {@code r}'s header with its cookie and queues it (and its payload) for the next chain. */
    void enqueue(Request r) {
        int size = mode.requestHeaderSize();
        ByteBuffer tx = link.tx;
        if (write + size > tx.capacity()) {
            write = 0;
        }
        tx.position(write);
        RequestCodec.encode(tx, mode, r.command(), r.flags(), r.cookie, r.offset(), r.length());
        r.headerPos = write;
        r.headerLen = size;
        write += size;
        r.pendingOps++; // until the chain carrying it has completed
        queue[(head + count++) % queue.length] = r;
        // Behind a lone WRITE's silent payload the flush may find that payload gone (see flush).
        if ((!busy || silentOf != null) && !flushQueued) {
            flushQueued = true;
            link.loop.execute(flush);
        }
    }

    private void flush() {
        flushQueued = false;
        if (silentOf != null && link.turns != null && link.turns.getAsLong() > silentTurn) {
            // A request queued behind a lone WRITE need not wait for that WRITE's reply: the loop has turned to the
            // ring since its payload's SEND was queued, so the kernel has tried it, and its failure, posted as the
            // kernel took it, has been handled in that turn (a task runs after the turn's completions). It went.
            sendDone();
            return;
        }
        sendNext();
    }

    /** Sends what is queued as one linked chain. */
    private void sendNext() {
        if (busy || count == 0 || link.state() != LinkState.READY) {
            return;
        }
        int n = plan(Math.min(MAX_CHAIN, link.ring.sqEntries()));
        chainSize = n;
        busy = true;
        chains++;
        // On a TLS link the ring sends one at a time anyway: what is in process memory goes directly up to the
        // first payload in registered pages. Otherwise directly only if all of it can, or the ring's chain
        // would still bring the loop back; a lone WRITE's header too, when its payload can go silently.
        boolean silently = loneWriteCanGoSilently(n);
        int from = silently || link.tls != null || inPlainMemory(n) ? sendNow(0) : 0;
        if (from < 0) {
            return; // the link failed
        }
        if (silently && from == 1) {
            sendPayloadSilently();
            return;
        }
        if (from == n) {
            chainDone();
            return;
        }
        chainOps = n - from;
        chainNext = from;
        if (link.tls != null) {
            submitTls(from);
            return;
        }
        link.ring.reserveSq(n - from);
        for (int k = from; k < n; k++) {
            boolean last = k == n - 1;
            submit(k, last ? 0 : IoUringAbi.IOSQE_IO_LINK,
                    Link.MSG_NOSIGNAL | Link.MSG_WAITALL | (last ? 0 : Link.MSG_MORE));
        }
    }

    /**
     * Whether the chain is one WRITE alone on the link (nothing else awaits a reply), its payload in registered
     * pages and small beside the socket's send buffer, which a lone request finds empty: its payload can then go
     * by a SEND that is tried once and posts nothing unless it fails ({@link #sendPayloadSilently}).
     */
    private boolean loneWriteCanGoSilently(int n) {
        if (n != 2 || chainCount != 1 || count != 1 || link.silentSlot < 0 || link.tls != null
                || link.relay != null || !link.replies.alone()) {
            return false;
        }
        Request r = chainPayload[1];
        return r != null && r.buffer().isFixed() && chainLen[1] <= link.sendBuffer / SILENT_SHARE
                && !useZeroCopy(chainLen[1]);
    }

    /**
     * The payload of a lone WRITE whose header send(2) took: a SEND with MSG_DONTWAIT (the kernel tries it once,
     * as it takes the submission) and CQE_SKIP_SUCCESS. Its reply proves it went out, since a failure is posted
     * ahead of any later completion, the reply's too; so does a turn of the loop since it was queued, for a
     * request that comes meanwhile (see flush). The loop is not brought back for the send: a trip per WRITE at
     * queue depth 1. A failure ends the link (the request goes again on the next).
     */
    private void sendPayloadSilently() {
        Request r = chainPayload[1];
        link.silent.send((byte) 0, link.fd, chainAddr[1], chainLen[1],
                Link.MSG_NOSIGNAL | Link.MSG_WAITALL | LinuxCalls.MSG_DONTWAIT, r.buffer().fixedIndex(),
                SilentOps.attachedData(link.silentSlot));
        silentOf = r;
        silentTurn = link.turns != null ? link.turns.getAsLong() : 0;
        silentSends++;
    }

    /** {@code r}'s reply came: if its payload went silently, the send is done, and the chain with it. */
    void replied(Request r) {
        if (silentOf == r) {
            sendDone();
        }
    }

    /** The silent payload's send is known to have gone: its chain is done, the next one goes. */
    private void sendDone() {
        DataPathStats.moved(true, silentOf.payloadLength());
        silentOf = null;
        chainDone();
    }

    /** Whether every send of the chain is from this process's memory: headers, and payloads of copy mode. */
    private boolean inPlainMemory(int n) {
        for (int k = 0; k < n; k++) {
            if (chainPayload[k] != null && chainPayload[k].buffer().isFixed()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Sends the chain with non-blocking send(2) calls on the loop thread, as far as the socket takes it: a READ's
     * header reaches the socket in the pass that submitted it, and no completion brings the loop back for it (at
     * queue depth 1 a trip per request). Nothing of the link is on the ring's send side meanwhile (the chain
     * before has completed, and on a TLS link the ring's one send at a time too), so bytes cannot interleave.
     * Starts at send {@code from} and stops at a payload in registered pages. Returns the index of the first send
     * the ring must do (the rest of a short one from there), the chain's size when the socket took all, -1 if the
     * link failed.
     */
    private int sendNow(int from) {
        int n = chainSize;
        for (int k = from; k < n; k++) {
            if (chainPayload[k] != null && chainPayload[k].buffer().isFixed()) {
                return k;
            }
            long sent = LinuxCalls.send(link.fd, chainAddr[k], chainLen[k],
                    LinuxCalls.MSG_DONTWAIT | Link.MSG_NOSIGNAL | (k == n - 1 ? 0 : Link.MSG_MORE));
            if (sent == -Errno.EAGAIN) {
                return k;
            }
            if (sent < 0) {
                busy = false; // nothing of the chain is on the ring: its requests are queued ones again
                link.fail("send failed: " + Errno.describe((int) -sent));
                return -1;
            }
            if (chainPayload[k] != null) {
                DataPathStats.moved(false, sent);
            }
            directSends++;
            if (sent < chainLen[k]) {
                chainAddr[k] += sent;
                chainLen[k] -= (int) sent;
                return k;
            }
        }
        return n;
    }

    /**
     * Kernel TLS refuses MSG_WAITALL on a send (EOPNOTSUPP), and without it a send may be cut short, which would
     * cancel what is linked behind it: on a TLS link the chain's sends go one at a time, a short one is followed
     * by its rest. MSG_MORE still gathers a request's header and payload into one record.
     */
    private void submitTls(int k) {
        submit(k, (byte) 0, Link.MSG_NOSIGNAL | (k == chainSize - 1 ? 0 : Link.MSG_MORE));
    }

    private void submit(int k, byte sqeFlags, int msgFlags) {
        Request r = chainPayload[k];
        if (r == null) {
            link.count(link.sqes.send(sqeFlags, link.fd, chainAddr[k], chainLen[k], msgFlags, -1,
                    OpKind.data(OpKind.TX_HEADERS, 0)));
        } else if (r.buffer().isFixed()) {
            chainZc[k] = useZeroCopy(chainLen[k]);
            int index = r.buffer().fixedIndex();
            short data = OpKind.data(OpKind.TX_PAYLOAD, r.tag());
            link.count(chainZc[k]
                    ? link.sqes.sendZeroCopy(sqeFlags, link.fd, chainAddr[k], chainLen[k], msgFlags, index, data)
                    : link.sqes.send(sqeFlags, link.fd, chainAddr[k], chainLen[k], msgFlags, index, data));
        } else {
            link.count(link.sqes.send(sqeFlags, link.fd, chainAddr[k], chainLen[k], msgFlags, -1,
                    OpKind.data(OpKind.TX_PAYLOAD, r.tag())));
        }
    }

    /** Lays out the next chain in chainAddr/chainLen/chainPayload; returns its SQE count, sets chainCount. */
    private int plan(int maxOps) {
        long base = link.txSeg.address();
        int n = 0;
        int carried = 0;
        int runPos = -1;
        int runLen = 0;
        for (int i = 0; i < count; i++) {
            Request r = queue[(head + i) % queue.length];
            boolean joins = runLen > 0 && r.headerPos == runPos + runLen;
            boolean payload = r.payloadLength() > 0;
            int ops = n + (runLen > 0 && !joins ? 1 : 0) + 1 + (payload ? 1 : 0);
            if (ops > maxOps && carried > 0) {
                break;
            }
            if (runLen > 0 && !joins) {
                n = step(n, base + runPos, runLen, null);
                runLen = 0;
            }
            if (runLen == 0) {
                runPos = r.headerPos;
            }
            runLen += r.headerLen;
            carried++;
            if (payload) {
                n = step(n, base + runPos, runLen, null);
                runLen = 0;
                n = step(n, r.buffer().address(), (int) r.payloadLength(), r);
            }
        }
        if (runLen > 0) {
            n = step(n, base + runPos, runLen, null);
        }
        chainCount = carried;
        return n;
    }

    private int step(int k, long addr, int len, Request payloadOf) {
        chainAddr[k] = addr;
        chainLen[k] = len;
        chainPayload[k] = payloadOf;
        chainZc[k] = false;
        return k + 1;
    }

    /**
     * SEND_ZC pins the pages and costs a notification: it pays only for large payloads to another host. TCP only:
     * AF_UNIX has none (EOPNOTSUPP), vsock only on some transports, and the kernel copies zero-copy pages
     * delivered to a local socket anyway. Strict zero copy (send-zc-min 0) still uses it everywhere it can.
     */
    private boolean useZeroCopy(int len) {
        int min = link.options.sendZcMin();
        // Kernel TLS encrypts into its own buffers: the pages are read once either way, SEND_ZC would only add a
        // notification. A TLS relay's socket is AF_UNIX.
        return link.address instanceof InetSocketAddress && len >= min && (min == 0 || !link.localPeer)
                && link.tls == null && link.relay == null;
    }

    /** A send of the chain completed, or a SEND_ZC's pages were released (CQE_F_NOTIF). */
    void onSent(int tag, int res, int cqeFlags) {
        if ((cqeFlags & IoUringAbi.CQE_F_NOTIF) != 0) {
            Request r = link.requests[tag];
            r.pendingOps--;
            link.finishIfDone(r);
            return;
        }
        if ((cqeFlags & IoUringAbi.CQE_F_MORE) != 0) {
            link.requests[tag].pendingOps++; // a notification follows, also for a failed or cancelled SEND_ZC
        }
        int k = chainNext;
        boolean ready = link.state() == LinkState.READY;
        if (ready && chainPayload[k] != null && res > 0) {
            DataPathStats.moved(chainPayload[k].buffer().isFixed(), res);
            if (chainZc[k]) {
                DataPathStats.sentZeroCopy(res);
            }
        }
        if (ready && link.tls != null && res > 0 && res < chainLen[k]) {
            chainAddr[k] += res;
            chainLen[k] -= res;
            submitTls(k);
            return;
        }
        chainNext++;
        chainOps--;
        if (ready && res != chainLen[k]) {
            // MSG_WAITALL sends are complete unless the socket failed; the rest of the chain is cancelled.
            link.fail(res == 0 ? "the server stopped accepting data" : res < 0 ? "send failed: " + Errno.describe(-res)
                    : "send cut short: " + res + " of " + chainLen[k] + " bytes");
        }
        if (chainOps > 0) {
            if (link.tls != null && link.state() == LinkState.READY) {
                int next = sendNow(chainNext);
                if (next < 0) {
                    return;
                }
                if (next < chainSize) {
                    chainOps = chainSize - next;
                    chainNext = next;
                    submitTls(next);
                    return;
                }
            } else {
                return;
            }
        }
        chainDone();
    }

    /** Every send of the chain is done: its requests wait only for their replies; the next chain goes. */
    private void chainDone() {
        busy = false;
        for (int i = 0; i < chainCount; i++) {
            Request r = queue[head];
            queue[head] = null;
            head = (head + 1) % queue.length;
            count--;
            r.pendingOps--;
            link.finishIfDone(r);
        }
        chainCount = 0;
        sendNext();
    }

    /** The link ended: requests queued behind the chain in flight will not be sent. */
    void abandonQueued() {
        int inFlight = busy ? chainCount : 0;
        for (int i = inFlight; i < count; i++) {
            int at = (head + i) % queue.length;
            queue[at].pendingOps--;
            queue[at] = null;
        }
        count = inFlight;
    }

    /** NBD_CMD_DISC, the polite goodbye of an idle link. */
    void sendDisconnect() {
        ByteBuffer tx = link.tx;
        tx.clear();
        RequestCodec.encode(tx, mode, Command.DISC, 0, 0, 0, 0);
        link.count(link.sqes.send((byte) 0, link.fd, link.txSeg.address(), tx.position(), Link.MSG_NOSIGNAL, -1,
                OpKind.data(OpKind.DISC, 0)));
    }
}
