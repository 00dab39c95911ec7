package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;

/**
 * What ADD_DEV needs. {@code id} -1 lets the kernel pick; {@code mode} null picks the best the
 * kernel offers; {@code recoverable} adds USER_RECOVERY_REISSUE so a restarted server can take over
 * (requests the dead server held are sent again to the next one). {@code batchIo} asks for
 * UBLK_F_BATCH_IO (tags fetched and committed many per command) where the kernel has it. A recoverable
 * device without batch commands also gets QUIESCE, for {@link UblkDevice#quiesce}: on a batch device
 * QUIESCE_DEV would fail new I/O until the next server is ready. {@code unprivileged} makes a device a user
 * without CAP_SYS_ADMIN may create and own (UBLK_F_UNPRIVILEGED_DEV): the kernel allows it copy mode only and
 * no recovery.
 */
public record DeviceSpec(int id, int queues, int depth, int maxIoBytes, BufferMode mode, boolean recoverable,
        boolean batchIo, boolean unprivileged) {
    public DeviceSpec(int id, int queues, int depth, int maxIoBytes, BufferMode mode, boolean recoverable,
                      boolean batchIo) {
        this(id, queues, depth, maxIoBytes, mode, recoverable, batchIo, false);
    }

    public static DeviceSpec of(int queues, int depth) {
        return new DeviceSpec(-1, queues, depth, 512 * 1024, null, false, true);
    }

    public DeviceSpec withUnprivileged(boolean u) {
        return new DeviceSpec(id, queues, depth, maxIoBytes, mode, recoverable, batchIo, u);
    }

    public DeviceSpec withMode(BufferMode m) {
        return new DeviceSpec(id, queues, depth, maxIoBytes, m, recoverable, batchIo, unprivileged);
    }

    public DeviceSpec withRecovery(boolean r) {
        return new DeviceSpec(id, queues, depth, maxIoBytes, mode, r, batchIo, unprivileged);
    }

    public DeviceSpec withId(int devId) {
        return new DeviceSpec(devId, queues, depth, maxIoBytes, mode, recoverable, batchIo, unprivileged);
    }

    public DeviceSpec withBatchIo(boolean b) {
        return new DeviceSpec(id, queues, depth, maxIoBytes, mode, recoverable, b, unprivileged);
    }

    /** The buffer mode this spec asks for, or the best one the kernel offers. */
    public BufferMode modeFor(UblkFeatures features) {
        return mode != null ? mode : features.bestBufferMode();
    }

    /**
     * The UBLK_F_* flags ADD_DEV gets for this spec on a kernel with {@code features}; refuses a mode the kernel
     * lacks and an unprivileged device the kernel would refuse.
     */
    public long addFlags(UblkFeatures features) {
        BufferMode m = modeFor(features);
        if ((features.mask() & m.deviceFlags()) != m.deviceFlags()) {
            throw new IllegalArgumentException("kernel lacks " + m.label() + " (features " + features + ")");
        }
        if (unprivileged && (m != BufferMode.COPY || recoverable)) {
            throw new IllegalArgumentException("an unprivileged device has copy mode and no recovery (the kernel's rule)");
        }
        // A zero-copy device also takes USER_COPY where the kernel has it: a target may then write data it
        // holds in memory (e.g. read replies that arrived with their headers) into the request's pages.
        long userCopy = m == BufferMode.ZERO_COPY ? features.mask() & F_USER_COPY : 0;
        long batch = batchIo ? features.mask() & F_BATCH_IO : 0;
        // QUIESCE_DEV on a batch device fails new I/O with EIO until the next server has prepped every tag
        // (force_abort), so batch devices hand over by releasing /dev/ublkcN instead and do not ask for it.
        long quiesce = recoverable && batch == 0 ? F_QUIESCE : 0;
        return m.deviceFlags() | userCopy | (recoverable ? F_USER_RECOVERY | F_USER_RECOVERY_REISSUE : 0)
                | (features.mask() & (F_UPDATE_SIZE | quiesce)) | batch | (unprivileged ? F_UNPRIVILEGED_DEV : 0);
    }
}
