package io.nbdgate.gateway.cli;

import io.nbdgate.ublk.UblkFeatures;
import io.nbdgate.uring.UringException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;

/** {@code nbdgate features}: what this kernel's ublk driver offers and which buffer mode nbdgate would use. */
final class FeaturesCommand implements Callable<Integer> {

    /** What --help says of the command. */
    static final String[] DESCRIPTION = {
        "Print the kernel's ublk feature mask (UBLK_U_CMD_GET_FEATURES) and the buffer mode",
        "nbdgate would pick: zero-copy, user-copy or copy. Exit code 1 when ublk is unavailable."
    };

    final CommandSpec spec = CommandModel.command(this, "features", DESCRIPTION);

    @Override
    public Integer call() {
        try {
            UblkFeatures f = UblkFeatures.probe();
            System.out.printf("ublk features: 0x%x%n", f.mask());
            f.names().forEach(n -> System.out.println("  " + n));
            System.out.println("buffer mode: " + f.bestBufferMode().label());
            return 0;
        } catch (UringException e) {
            System.err.println("nbdgate: ublk is not usable here: " + e.getMessage()
                    + " (is ublk_drv loaded? try: modprobe ublk_drv)");
            return 1;
        }
    }
}
