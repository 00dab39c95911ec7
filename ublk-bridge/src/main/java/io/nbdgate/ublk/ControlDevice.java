package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static io.nbdgate.uring.IoUringAbi.OP_URING_CMD;
import static io.nbdgate.uring.IoUringAbi.SETUP_SQE128;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import io.nbdgate.uring.Errno;
import io.nbdgate.uring.IoUring;
import io.nbdgate.uring.LinuxCalls;
import io.nbdgate.uring.UringException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * /dev/ublk-control with a small SQE128 ring of its own. Every command is synchronous; START_DEV
 * blocks in the kernel until every queue has fetched, so never call it on a queue's event loop.
 *
 * <p>Commands on an unprivileged device (UBLK_F_UNPRIVILEGED_DEV) carry the path of its /dev/ublkcN in front
 * of their payload: the kernel checks the caller's permission on that node and skips it. GET_DEV_INFO2 always
 * carries it. A device is known to be unprivileged once this object added it or read its info.
 */
public final class ControlDevice implements AutoCloseable {
    public static final String PATH = "/dev/ublk-control";
    static final String CHAR_DEVICE_PREFIX = "/dev/ublkc";
    static final String BLOCK_DEVICE_PREFIX = "/dev/ublkb";

    private final int fd;
    private final IoUring ring;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(4096, 4096);
    // Payloads are built here, aligned for the struct layouts, and moved behind the path when one goes first.
    private final MemorySegment payload = buffer.asSlice(PAYLOAD_OFFSET);
    private static final long PAYLOAD_OFFSET = 2048;
    private final Set<Integer> unprivileged = ConcurrentHashMap.newKeySet();
    private final int[] result = new int[1];
    private volatile Boolean canTryStop;
    private boolean closed;

    private ControlDevice(int fd, IoUring ring) {
        this.fd = fd;
        this.ring = ring;
    }

    public static ControlDevice open() throws UringException {
        if (!Files.exists(Path.of(PATH))) {
            // The answer open(2) would give, without linking the system call first (a third of `nbdgate features`).
            throw new UringException("open " + PATH, Errno.ENOENT);
        }
        int fd = LinuxCalls.open(PATH, LinuxCalls.O_RDWR, 0);
        try {
            return new ControlDevice(fd, IoUring.setup(4, SETUP_SQE128));
        } catch (UringException e) {
            LinuxCalls.close(fd);
            throw e;
        }
    }

    /**
     * Issues one control command; {@code len} bytes of {@link #payload} are its in/out payload. With
     * {@code withPath} (or for an unprivileged device) the char device's path goes in front of them.
     */
    private synchronized int command(String name, int cmdOp, int devId, long data, int len, boolean withPath)
            throws UringException {
        int pathLen = 0;
        if (withPath || unprivileged.contains(devId)) {
            byte[] path = charDevice(devId).getBytes(StandardCharsets.US_ASCII);
            pathLen = path.length + 1;
            buffer.asSlice(0, pathLen).fill((byte) 0);
            MemorySegment.copy(MemorySegment.ofArray(path), 0, buffer, 0, path.length);
            MemorySegment.copy(payload, 0, buffer, pathLen, len);
        }
        int total = pathLen + len;
        MemorySegment cmd = ring.nextSqe().opcode(OP_URING_CMD).fd(fd).cmdOp(cmdOp).userData(cmdOp).cmd();
        cmd.set(JAVA_INT, CC_DEV_ID, devId);
        cmd.set(JAVA_SHORT, CC_QUEUE_ID, (short) -1);
        cmd.set(JAVA_SHORT, CC_LEN, (short) total);
        cmd.set(JAVA_LONG, CC_ADDR, total == 0 ? 0 : pathLen > 0 ? buffer.address() : payload.address());
        cmd.set(JAVA_LONG, CC_DATA, data);
        cmd.set(JAVA_SHORT, CC_DEV_PATH_LEN, (short) pathLen);
        result[0] = Integer.MIN_VALUE;
        while (result[0] == Integer.MIN_VALUE) {
            ring.submitAndWait(1);
            ring.drain((u, res, f) -> result[0] = res);
        }
        if (result[0] < 0) {
            throw new UringException(name + (devId >= 0 ? " dev " + devId : ""), -result[0]);
        }
        if (pathLen > 0 && len > 0) {
            MemorySegment.copy(buffer, pathLen, payload, 0, len); // what the kernel wrote, back in aligned place
        }
        return result[0];
    }

    private synchronized int command(String name, int cmdOp, int devId, long data, int len) throws UringException {
        return command(name, cmdOp, devId, data, len, false);
    }

    public synchronized UblkFeatures features() throws UringException {
        command("GET_FEATURES", U_CMD_GET_FEATURES, -1, 0, FEATURES_LEN);
        return new UblkFeatures(payload.get(JAVA_LONG, 0));
    }

    static final int FEATURES_LEN = 8;

    /**
     * ADD_DEV. {@code devId} -1 lets the kernel choose. Returns the info the kernel filled in,
     * including the chosen id, the flags it accepted and, for an unprivileged device, its owner.
     */
    public synchronized DeviceInfo addDevice(int devId, int queues, int depth, int maxIoBufBytes, long flags)
            throws UringException {
        payload.asSlice(0, DEV_INFO.byteSize()).fill((byte) 0);
        new DeviceInfo(devId, queues, depth, 0, maxIoBufBytes, -1, flags | F_CMD_IOCTL_ENCODE, 0, 0).write(payload);
        command("ADD_DEV", U_CMD_ADD_DEV, devId, 0, (int) DEV_INFO.byteSize());
        return remember(DeviceInfo.read(payload));
    }

    private DeviceInfo remember(DeviceInfo info) {
        if (info.has(F_UNPRIVILEGED_DEV)) {
            unprivileged.add(info.devId());
        }
        return info;
    }

    public synchronized void setParams(int devId, DeviceParams params) throws UringException {
        params.write(payload.asSlice(0, PARAMS.byteSize()));
        command("SET_PARAMS", U_CMD_SET_PARAMS, devId, 0, (int) PARAMS.byteSize());
    }

    public synchronized DeviceParams params(int devId) throws UringException {
        payload.asSlice(0, PARAMS.byteSize()).fill((byte) 0);
        payload.set(JAVA_INT, 0, (int) PARAMS.byteSize());
        command("GET_PARAMS", U_CMD_GET_PARAMS, devId, 0, (int) PARAMS.byteSize());
        return DeviceParams.read(payload);
    }

    /** GET_DEV_INFO2, which carries the char device's path for any device. */
    public synchronized DeviceInfo deviceInfo(int devId) throws UringException {
        payload.asSlice(0, DEV_INFO.byteSize()).fill((byte) 0);
        command("GET_DEV_INFO2", U_CMD_GET_DEV_INFO2, devId, 0, (int) DEV_INFO.byteSize(), true);
        return remember(DeviceInfo.read(payload));
    }

    /** START_DEV; returns only after all queues of the device have fetched. */
    public void startDevice(int devId) throws UringException {
        command("START_DEV", U_CMD_START_DEV, devId, LinuxCalls.getpid(), 0);
    }

    public void stopDevice(int devId) throws UringException {
        command("STOP_DEV", U_CMD_STOP_DEV, devId, 0, 0);
    }

    /**
     * TRY_STOP_DEV (UBLK_F_SAFE_STOP_DEV, 7.0): STOP_DEV only if nobody has the block device open; EBUSY
     * (as a {@link UringException}) leaves it running and untouched.
     */
    public void tryStopDevice(int devId) throws UringException {
        command("TRY_STOP_DEV", U_CMD_TRY_STOP_DEV, devId, 0, 0);
    }

    /**
     * Whether this kernel has {@link #tryStopDevice} (UBLK_F_SAFE_STOP_DEV). The kernel's answer is kept (it does
     * not change); a GET_FEATURES that failed counts as no this time and is asked again next time.
     */
    public boolean canTryStop() {
        Boolean can = canTryStop;
        if (can == null) {
            try {
                can = features().has(F_SAFE_STOP_DEV);
            } catch (UringException e) {
                return false;
            }
            canTryStop = can;
        }
        return can;
    }

    /** DEL_DEV waits until every user of /dev/ublkcN has closed it. */
    public void deleteDevice(int devId) throws UringException {
        command("DEL_DEV", U_CMD_DEL_DEV, devId, 0, 0);
    }

    /** DEL_DEV_ASYNC: returns at once; the id is freed when the last user closes /dev/ublkcN. */
    public void deleteDeviceAsync(int devId) throws UringException {
        command("DEL_DEV_ASYNC", U_CMD_DEL_DEV_ASYNC, devId, 0, 0);
    }

    public void startUserRecovery(int devId) throws UringException {
        command("START_USER_RECOVERY", U_CMD_START_USER_RECOVERY, devId, 0, 0);
    }

    /**
     * START_USER_RECOVERY, retried for up to {@code waitMillis} while the kernel answers EBUSY: a dead server's
     * /dev/ublkcN is released by a work item after its last reference goes (its rings freed, its buffers dropped).
     */
    public void startUserRecovery(int devId, long waitMillis) throws UringException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMillis);
        while (true) {
            try {
                startUserRecovery(devId);
                return;
            } catch (UringException e) {
                if (e.errno() != Errno.EBUSY || System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(50);
            }
        }
    }

    public void endUserRecovery(int devId) throws UringException {
        command("END_USER_RECOVERY", U_CMD_END_USER_RECOVERY, devId, LinuxCalls.getpid(), 0);
    }

    public void updateSize(int devId, long sizeBytes) throws UringException {
        command("UPDATE_SIZE", U_CMD_UPDATE_SIZE, devId, sizeBytes >> 9, 0);
    }

    /**
     * QUIESCE_DEV (needs UBLK_F_QUIESCE): the kernel stops dispatching to the server, waits up to
     * {@code timeoutMillis} (0 = forever; EBUSY after it) until every queue has an idle command, then
     * aborts the idle commands. Requests in service stay with the server; see {@link UblkDevice#quiesce}.
     */
    public void quiesce(int devId, long timeoutMillis) throws UringException {
        command("QUIESCE_DEV", U_CMD_QUIESCE_DEV, devId, timeoutMillis, 0);
    }

    public static String charDevice(int devId) {
        return CHAR_DEVICE_PREFIX + devId;
    }

    public static String blockDevice(int devId) {
        return BLOCK_DEVICE_PREFIX + devId;
    }

    /** Idempotent: a second close must not close a descriptor number someone else may hold by then. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        ring.close();
        LinuxCalls.close(fd);
        arena.close();
    }
}
