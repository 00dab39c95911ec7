package io.nbdgate.gateway.device;

import static io.nbdgate.ublk.UblkAbi.IO_F_FUA;
import static io.nbdgate.ublk.UblkAbi.IO_F_NOUNMAP;
import static io.nbdgate.ublk.UblkAbi.IO_OP_DISCARD;
import static io.nbdgate.ublk.UblkAbi.IO_OP_FLUSH;
import static io.nbdgate.ublk.UblkAbi.IO_OP_READ;
import static io.nbdgate.ublk.UblkAbi.IO_OP_WRITE;
import static io.nbdgate.ublk.UblkAbi.IO_OP_WRITE_ZEROES;

import io.nbdgate.gateway.link.Request;
import io.nbdgate.gateway.metrics.QueueCounters;
import io.nbdgate.gateway.session.QueueSession;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.IoRequest;
import io.nbdgate.ublk.Target;

/**
 * Serves one ublk queue from one queue session on the same event loop: each block request becomes one NBD
 * command, filled into the session's record for the tag, whose data moves between the request's buffer and
 * the socket — the fixed buffer ublk registered for the tag in zero-copy mode, the tag's memory otherwise.
 */
final class NbdTarget implements Target, QueueSession.Listener {
    private static final int EOPNOTSUPP = 95;

    // ublk's request objects are one per tag and reused: this maps a session record back to its ublk side.
    private final IoRequest[] ublk;
    private QueueSession session;
    private ExportInfo export;

    NbdTarget(int depth) {
        ublk = new IoRequest[depth];
    }

    void attach(QueueSession s) {
        session = s;
        export = s.export();
    }

    @Override
    public void serve(IoRequest req) {
        int flags = req.flags();
        switch (req.op()) {
            case IO_OP_READ -> send(req, Command.READ, 0, true);
            case IO_OP_WRITE -> {
                if (req.length() == 0) {
                    // An empty write carries only a cache flush (PREFLUSH): NBD has no zero-length WRITE, so flush.
                    flush(req);
                } else {
                    send(req, Command.WRITE, (flags & IO_F_FUA) != 0 && export.canFua() ? CommandFlag.FUA : 0, true);
                }
            }
            case IO_OP_FLUSH -> flush(req);
            case IO_OP_DISCARD -> {
                if (export.canTrim()) {
                    send(req, Command.TRIM, 0, false);
                } else {
                    answer(req, QueueCounters.TRIM, -EOPNOTSUPP);
                }
            }
            case IO_OP_WRITE_ZEROES -> {
                if (export.canWriteZeroes()) {
                    send(req, Command.WRITE_ZEROES, (flags & IO_F_NOUNMAP) != 0 ? CommandFlag.NO_HOLE : 0, false);
                } else {
                    answer(req, QueueCounters.WRITE_ZEROES, -EOPNOTSUPP);
                }
            }
            default -> answer(req, -1, -EOPNOTSUPP);
        }
    }

    private void flush(IoRequest req) {
        if (export.canFlush()) {
            send(req, Command.FLUSH, 0, false);
        } else {
            answer(req, QueueCounters.FLUSH, 0); // the server has no write cache to flush
        }
    }

    /** Answers here, without the server; counted like the requests the session carries, with no wait. */
    private void answer(IoRequest req, int op, int result) {
        QueueCounters c = session.counters();
        long now = System.nanoTime();
        c.started(req.tag(), op, now);
        c.finished(req.tag(), req.length(), result, now);
        req.complete(result);
    }

    private void send(IoRequest req, Command command, int nbdFlags, boolean data) {
        int tag = req.tag();
        ublk[tag] = req;
        Request r = session.request(tag);
        if (command == Command.FLUSH) {
            // The block layer's flush request has no position (sector -1); NBD wants offset and length 0.
            r.load(command, nbdFlags, 0, 0).buffer().none();
        } else if (!data) {
            r.load(command, nbdFlags, req.offset(), req.length()).buffer().none();
        } else if (req.mode() == BufferMode.ZERO_COPY) {
            // Kernel-registered request pages: addresses within the fixed buffer start at 0. With user copy the
            // kernel can also write small replies into them that arrived together with other replies.
            r.load(command, nbdFlags, req.offset(), req.length()).buffer().fixed(req.bufferIndex(),
                    req.userCopy() ? req.charFd() : -1, req.userCopy() ? req.userCopyOffset() : 0);
        } else {
            r.load(command, nbdFlags, req.offset(), req.length()).buffer().memory(req.bufferAddress());
        }
        session.submit(r);
    }

    @Override
    public void onIo(IoRequest req, int res) {
        // All of this target's operations go through its connection, not IoRequest.submit.
    }

    @Override
    public void completed(Request r) {
        ublk[r.tag()].complete(r.result());
    }

    @Override
    public void close() {
        if (session != null) {
            // The queue has drained, so nothing is in flight: a clean NBD_CMD_DISC.
            session.stop(java.time.Duration.ofSeconds(5));
        }
    }
}
