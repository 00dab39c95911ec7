package io.nbdgate.ublk;

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
}
