package io.nbdgate.ublk;

import io.nbdgate.ublk.target.FileTarget;
import io.netty.channel.MultiThreadIoEventLoopGroup;

/**
 * A ublk server in a JVM of its own, for the crash tests: serves a file as a device and prints
 * "READY id" once /dev/ublkbN exists. Args: backing-file size-bytes recoverable(true|false).
 */
public final class ServeMain {
    private ServeMain() {
    }

    public static void main(String[] args) throws Exception {
        long size = Long.parseLong(args[1]);
        boolean recoverable = Boolean.parseBoolean(args[2]);
        MultiThreadIoEventLoopGroup group = Guest.loops(1);
        ControlDevice ctl = ControlDevice.open();
        FileTarget target = FileTarget.open(args[0]);
        UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(1, 32).withRecovery(recoverable),
                DeviceParams.disk(size, 512 * 1024));
        dev.start(Guest.list(group), q -> target);
        System.out.println("READY " + dev.id());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
