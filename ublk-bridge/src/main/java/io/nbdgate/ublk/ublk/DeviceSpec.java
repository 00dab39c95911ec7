package io.nbdgate.ublk.ublk;

/**
 * What ADD_DEV needs. {@code id} -1 lets the kernel pick; {@code mode} null picks the best the
 * kernel offers; {@code recoverable} adds USER_RECOVERY_REISSUE so a restarted server can take over,
 * and QUIESCE where the kernel has it, for {@link UblkDevice#quiesce}.
 */
public record DeviceSpec(int id, int queues, int depth, int maxIoBytes, BufferMode mode, boolean recoverable) {
    public static DeviceSpec of(int queues, int depth) {
        return new DeviceSpec(-1, queues, depth, 512 * 1024, null, false);
    }

    public DeviceSpec withMode(BufferMode m) {
        return new DeviceSpec(id, queues, depth, maxIoBytes, m, recoverable);
    }

    public DeviceSpec withRecovery(boolean r) {
        return new DeviceSpec(id, queues, depth, maxIoBytes, mode, r);
    }

    public DeviceSpec withId(int devId) {
        return new DeviceSpec(devId, queues, depth, maxIoBytes, mode, recoverable);
    }
}
