package io.nbdgate.gateway.device;

import io.nbdgate.ublk.ControlDevice;

/**
 * What ublksrv's {@code ublk del -n N} does, as a process of its own: STOP_DEV then DEL_DEV through
 * /dev/ublk-control. Prints how long each took; DEL_DEV returns only once every user of /dev/ublkcN let go.
 */
public final class UblkDelTool {
    private UblkDelTool() {
    }

    public static void main(String[] args) throws Exception {
        int id = Integer.parseInt(args[0]);
        try (ControlDevice control = ControlDevice.open()) {
            long t0 = System.nanoTime();
            control.stopDevice(id);
            long t1 = System.nanoTime();
            control.deleteDevice(id);
            long t2 = System.nanoTime();
            System.out.println("STOP_DEV " + (t1 - t0) / 1_000_000 + " ms, DEL_DEV " + (t2 - t1) / 1_000_000 + " ms");
        }
    }
}
