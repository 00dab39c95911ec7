package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static io.nbdgate.uring.IoUringAbi.CQE_BUFFER_SHIFT;
import static io.nbdgate.uring.IoUringAbi.CQE_F_BUFFER;
import static io.nbdgate.uring.IoUringAbi.CQE_F_MORE;
import static io.nbdgate.uring.IoUringAbi.IOSQE_BUFFER_SELECT;
import static io.nbdgate.uring.IoUringAbi.URING_CMD_MULTISHOT;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.ProvidedBufferRing;
import io.nbdgate.uring.SilentOps;
import io.nbdgate.uring.UringException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A queue's batch command set (UBLK_F_BATCH_IO): every tag armed once with PREP_IO_CMDS, one multishot
 * FETCH_IO_CMDS that writes the tags of new requests as u16 arrays into a provided buffer ring, many per CQE,
 * and the completions of one loop pass gathered into one COMMIT_IO_CMDS, which also re-arms their tags. The
 * per-tag command set lives in {@link QueueEngine}; a device uses one or the other. Loop thread only.
 */
final class BatchCommands {
    private static final Logger LOG = LoggerFactory.getLogger(BatchCommands.class);
    private static final int ENOBUFS = 105;
    /** The kernel writes at most 128 tags into one fetch buffer (MAX_NR_TAG in ublk_drv.c). */
    private static final int TAGS_PER_FETCH = 128;

    private final QueueEngine e;
    private final int depth;
    private final int elemBytes;
    private MemorySegment prepElems;
    private MemorySegment loneElems; // one element per tag: the commit of the queue's only request
    private SilentOps silent;
    private boolean silentTried;
    private ProvidedBufferRing tagRing;
    private int bufferGroup = -1;
    private MemorySegment[] commitBufs = new MemorySegment[0];
    private int[] commitStart = new int[0]; // elements the kernel already took
    private int[] commitEnd = new int[0];   // elements written
    private int[] commitFree = new int[0];
    private int commitFreeCount;
    private int currentCommit = -1;
    private boolean commitFlushQueued;
    private int commitsInFlight;
    private int inService;
    private boolean fetchEnded;
    private final int[] fetchedTags = new int[TAGS_PER_FETCH];
    private final Runnable flushCommits = this::flushCommits;

    BatchCommands(QueueEngine engine) {
        this.e = engine;
        this.depth = engine.depth;
        this.elemBytes = engine.mode == BufferMode.COPY ? 16 : 8; // COPY devices pass each tag's buffer (HAS_BUF_ADDR)
    }

    /** Arms every tag with one PREP_IO_CMDS and registers the ring the multishot FETCH writes tags into. */
    void prepare() throws UringException {
        bufferGroup = e.ring.allocateBufferGroup();
        // One buffer per CQE the kernel may post before this loop reads any; each CQE carries at least one
        // of the at most depth tags in flight, so depth buffers are always enough (and fewer only cost a
        // re-armed FETCH: the kernel keeps the tags queued and ends the FETCH with ENOBUFS).
        int entries = depth <= 1 ? 1 : Integer.highestOneBit(depth - 1) << 1;
        tagRing = new ProvidedBufferRing(e.ring.fd(), bufferGroup, entries, Math.min(depth, TAGS_PER_FETCH) * 2, e.arena);
        prepElems = e.arena.allocate((long) depth * elemBytes, 8);
        loneElems = e.arena.allocate((long) depth * elemBytes, 8);
        for (int tag = 0; tag < depth; tag++) {
            writeElem(prepElems, tag, tag, 0);
        }
        long header = batchHeader(e.qid, batchFlags(), depth, elemBytes);
        e.sqes.uringCmd((byte) 0, e.charFd, U_IO_PREP_IO_CMDS, prepElems.address(), 0, QueueEngine.data(QueueEngine.KIND_PREP, 0), (short) 0,
                header, 0);
    }

    private int batchFlags() {
        return e.mode == BufferMode.COPY ? BATCH_F_HAS_BUF_ADDR : 0;
    }

    /** Element {@code i} of a PREP or COMMIT list: tag, its fixed-buffer index, result, its buffer in copy mode. */
    private void writeElem(MemorySegment list, int i, int tag, int result) {
        long off = (long) i * elemBytes;
        list.set(ValueLayout.JAVA_SHORT, off, (short) tag);
        // One fixed index per tag, the same at PREP and at every COMMIT: kernels differ on whether a commit
        // unregisters the old or the new index, and with one index per tag both are the same.
        list.set(ValueLayout.JAVA_SHORT, off + 2, (short) (e.mode == BufferMode.ZERO_COPY ? e.bufferBase + tag : 0));
        list.set(ValueLayout.JAVA_INT, off + 4, result);
        if (elemBytes == 16) {
            list.set(ValueLayout.JAVA_LONG, off + 8, e.requests[tag].bufferAddress());
        }
    }

    void onPrepared(int res) {
        if (res != 0) {
            e.fetched.completeExceptionally(new IllegalStateException("ublk dev " + e.devId + " queue " + e.qid
                    + ": the kernel refused PREP_IO_CMDS: " + Errno.name(-res)));
            fetchEnded = true;
            e.finish();
            return;
        }
        e.fetched.complete(null);
        armFetch();
    }

    private void armFetch() {
        long header = batchHeader(e.qid, 0, 0, 2);
        e.sqes.uringCmd(IOSQE_BUFFER_SELECT, e.charFd, U_IO_FETCH_IO_CMDS, 0, URING_CMD_MULTISHOT,
                QueueEngine.data(QueueEngine.KIND_FETCH, 0),
                (short) bufferGroup, header, 0);
    }

    /** A CQE of the multishot FETCH: res bytes of u16 tags in buffer (flags >> 16), or its end. */
    void onFetched(int res, int flags) {
        if (res > 0 && (flags & CQE_F_BUFFER) != 0) {
            int bid = flags >>> CQE_BUFFER_SHIFT;
            int n = Math.min(res / 2, TAGS_PER_FETCH);
            for (int i = 0; i < n; i++) {
                fetchedTags[i] = tagRing.readShort(bid, i) & 0xffff;
            }
            tagRing.recycle(bid);
            for (int i = 0; i < n; i++) {
                int tag = fetchedTags[i];
                if (tag >= depth || e.state[tag] == QueueEngine.IN_SERVICE) {
                    LOG.error("ublk dev {} queue {}: FETCH delivered tag {}, which is not the kernel's", e.devId, e.qid,
                            tag);
                    continue;
                }
                inService++;
                e.accept(tag);
            }
        }
        if ((flags & CQE_F_MORE) != 0) {
            return;
        }
        if (res >= 0 || res == -ENOBUFS) {
            armFetch(); // the buffers ran out or the CQ was full: the kernel keeps the tags queued until then
            return;
        }
        // ABORT is the kernel ending the FETCH at STOP_DEV: a clean stop, not an error.
        if (res != IO_RES_ABORT) {
            LOG.warn("ublk dev {} queue {}: FETCH_IO_CMDS failed: {}", e.devId, e.qid, Errno.name(-res));
        }
        fetchEnded = true;
        finishWhenIdle();
    }

    /** Completes {@code tag} with {@code result} in the COMMIT of this loop pass. */
    void add(int tag, int result) {
        e.state[tag] = QueueEngine.IN_KERNEL;
        inService--;
        if (currentCommit < 0) {
            currentCommit = takeCommitBuffer();
        }
        int b = currentCommit;
        writeElem(commitBufs[b], commitEnd[b]++, tag, result);
        if (!commitFlushQueued) {
            // Netty runs tasks after it has handled every completion of a pass: one COMMIT takes them all.
            commitFlushQueued = true;
            e.loop.execute(flushCommits);
        }
    }

    private int takeCommitBuffer() {
        if (commitFreeCount == 0) {
            int n = commitBufs.length;
            if (n >= depth) {
                throw new IllegalStateException("more commit lists than tags in flight"); // cannot happen
            }
            int grown = Math.min(depth, Math.max(2, n * 2));
            commitBufs = Arrays.copyOf(commitBufs, grown);
            commitStart = Arrays.copyOf(commitStart, grown);
            commitEnd = Arrays.copyOf(commitEnd, grown);
            commitFree = Arrays.copyOf(commitFree, grown);
            for (int i = grown - 1; i >= n; i--) {
                commitBufs[i] = e.arena.allocate((long) depth * elemBytes, 8);
                commitFree[commitFreeCount++] = i;
            }
        }
        return commitFree[--commitFreeCount];
    }

    private void flushCommits() {
        commitFlushQueued = false;
        int b = currentCommit;
        if (b < 0) {
            return;
        }
        currentCommit = -1;
        if (commitEnd[b] == 1 && inService == 0) {
            commitAlone(b);
            return;
        }
        submitCommit(b);
    }

    /**
     * The commit of the queue's only request (queue depth 1) posts no CQE when it succeeds: with one element it is
     * all or nothing, and its success would only return the loop to its wait, a trip through the ring and Netty
     * per request. While other requests are in service the completion stays: that trip also runs the task work
     * queued meanwhile (new tags, replies); the build that skipped it on every one-element commit did 3% fewer
     * 4k writes at queue depth 32 on the instruction clock. The element moves to the tag's own slot, which
     * nothing writes again before the kernel has taken it: the tag comes back only through a FETCH after this
     * commit.
     */
    private void commitAlone(int b) {
        if (!silentTried) {
            silentTried = true;
            silent = e.ring.silentOps(e.loop);
            if (silent != null) {
                silent.onFailure(QueueEngine.KIND_COMMIT_ONE, BatchCommands::loneCommitRefused);
            }
        }
        if (silent == null) {
            submitCommit(b);
            return;
        }
        int tag = commitBufs[b].get(ValueLayout.JAVA_SHORT, 0) & 0xffff;
        MemorySegment.copy(commitBufs[b], 0, loneElems, (long) tag * elemBytes, elemBytes);
        commitStart[b] = commitEnd[b] = 0;
        commitFree[commitFreeCount++] = b;
        e.loneCommits++;
        silent.uringCmd(e.charFd, U_IO_COMMIT_IO_CMDS, loneElems.address() + (long) tag * elemBytes,
                QueueEngine.data(QueueEngine.KIND_COMMIT_ONE, tag), batchHeader(e.qid, batchFlags(), 1, elemBytes), 0);
    }

    /** The only completion of a lone commit: the kernel refused it (the ring is shared by the loop's queues). */
    private static void loneCommitRefused(int tag, int res) {
        LOG.error("ublk: COMMIT_IO_CMDS refused tag {} on a queue of this loop: {}", tag,
                res < 0 ? Errno.name(-res) : "result " + res);
    }

    private void submitCommit(int b) {
        int nr = commitEnd[b] - commitStart[b];
        long header = batchHeader(e.qid, batchFlags(), nr, elemBytes);
        e.sqes.uringCmd((byte) 0, e.charFd, U_IO_COMMIT_IO_CMDS,
                commitBufs[b].address() + (long) commitStart[b] * elemBytes, 0,
                QueueEngine.data(QueueEngine.KIND_COMMIT, b), (short) 0, header, 0);
        commitsInFlight++;
    }

    /** res: bytes of elements the kernel took, or the error of the first one when it took none. */
    void onCommitted(int b, int res) {
        commitsInFlight--;
        int taken = res / elemBytes;
        if (res < 0) {
            long off = (long) commitStart[b] * elemBytes;
            LOG.error("ublk dev {} queue {}: COMMIT_IO_CMDS refused tag {}: {}", e.devId, e.qid,
                    commitBufs[b].get(ValueLayout.JAVA_SHORT, off) & 0xffff, Errno.name(-res));
            taken = 1; // skip the element the kernel refused, commit the rest
        }
        commitStart[b] += taken;
        if (commitStart[b] < commitEnd[b]) {
            submitCommit(b); // a partial commit: the rest again
            return;
        }
        commitStart[b] = commitEnd[b] = 0;
        commitFree[commitFreeCount++] = b;
        finishWhenIdle();
    }

    /** Once the FETCH ended: stops when no request is in service and every commit came back. */
    private void finishWhenIdle() {
        if (fetchEnded && inService == 0 && commitsInFlight == 0 && currentCommit < 0) {
            e.finish();
        }
    }

    /** Gives the provided buffer ring and its group back to the loop's ring. */
    void release() {
        if (tagRing != null) {
            try {
                tagRing.unregister();
            } catch (UringException ex) {
                LOG.warn("ublk dev {} queue {}: {}", e.devId, e.qid, ex.getMessage());
            }
            e.ring.releaseBufferGroup(bufferGroup);
            tagRing = null;
        }
    }
}
