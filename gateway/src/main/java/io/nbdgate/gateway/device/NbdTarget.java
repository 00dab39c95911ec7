package io.nbdgate.gateway.device;

import static io.nbdgate.ublk.UblkAbi.IO_F_FUA;
import static io.nbdgate.ublk.UblkAbi.IO_F_NOUNMAP;
import static io.nbdgate.ublk.UblkAbi.IO_OP_DISCARD;
import static io.nbdgate.ublk.UblkAbi.IO_OP_FLUSH;
import static io.nbdgate.ublk.UblkAbi.IO_OP_READ;
import static io.nbdgate.ublk.UblkAbi.IO_OP_WRITE;
import static io.nbdgate.ublk.UblkAbi.IO_OP_WRITE_ZEROES;

import io.nbdgate.gateway.datapath.NbdRingConnection;
import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.IoRequest;
import io.nbdgate.ublk.Target;

/**
 * Serves one ublk queue from one NBD connection on the same event loop: each block request becomes
 * one NBD command whose data moves between the request's buffer and the socket — the fixed buffer
 * ublk registered for the tag in zero-copy mode, the tag's memory otherwise.
 */
final class NbdTarget implements Target, NbdRingConnection.Listener {
    private static final int EOPNOTSUPP = 95;

    private final IoRequest[] inFlight;
    private NbdRingConnection connection;
    private ExportInfo export;

    NbdTarget(int depth) {
        inFlight = new IoRequest[depth];
    }

    void attach(NbdRingConnection c) {
        connection = c;
        export = c.export();
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
                    req.complete(-EOPNOTSUPP);
                }
            }
            case IO_OP_WRITE_ZEROES -> {
                if (export.canWriteZeroes()) {
                    send(req, Command.WRITE_ZEROES, (flags & IO_F_NOUNMAP) != 0 ? CommandFlag.NO_HOLE : 0, false);
                } else {
                    req.complete(-EOPNOTSUPP);
                }
            }
            default -> req.complete(-EOPNOTSUPP);
        }
    }

    private void flush(IoRequest req) {
        if (export.canFlush()) {
            send(req, Command.FLUSH, 0, false);
        } else {
            req.complete(0); // the server has no write cache to flush
        }
    }

    private void send(IoRequest req, Command command, int nbdFlags, boolean data) {
        int tag = req.tag();
        inFlight[tag] = req;
        if (command == Command.FLUSH) {
            // The block layer's flush request has no position (sector -1); NBD wants offset and length 0.
            connection.submit(tag, command, nbdFlags, 0, 0, -1, 0);
        } else if (!data) {
            connection.submit(tag, command, nbdFlags, req.offset(), req.length(), -1, 0);
        } else if (req.mode() == BufferMode.ZERO_COPY) {
            // Kernel-registered request pages: addresses within the fixed buffer start at 0. With user copy the
            // kernel can also write small replies into them that arrived together with other replies.
            connection.submit(tag, command, nbdFlags, req.offset(), req.length(), req.bufferIndex(), 0,
                    req.userCopy() ? req.charFd() : -1, req.userCopy() ? req.userCopyOffset() : 0);
        } else {
            connection.submit(tag, command, nbdFlags, req.offset(), req.length(), -1, req.bufferAddress());
        }
    }

    @Override
    public void onIo(IoRequest req, int res) {
        // All of this target's operations go through its connection, not IoRequest.submit.
    }

    @Override
    public void completed(int tag, int result) {
        IoRequest req = inFlight[tag];
        inFlight[tag] = null;
        req.complete(result);
    }

    @Override
    public void lost(String reason) {
        // Requests in flight are completed with EIO by the connection; later ones fail at once.
    }

    @Override
    public void close() {
        if (connection != null) {
            // The queue has drained, so nothing is in flight: a clean NBD_CMD_DISC.
            NbdRingConnection c = connection;
            c.loop().execute(c::disconnect);
        }
    }
}
