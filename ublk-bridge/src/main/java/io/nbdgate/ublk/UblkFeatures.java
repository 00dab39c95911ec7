package io.nbdgate.ublk;

import io.nbdgate.uring.UringException;
import java.util.ArrayList;
import java.util.List;

/** The kernel's ublk feature mask (UBLK_U_CMD_GET_FEATURES), decoded. */
public record UblkFeatures(long mask) {

    /** Opens /dev/ublk-control, asks for the feature mask and closes it again. */
    public static UblkFeatures probe() throws UringException {
        try (ControlDevice control = ControlDevice.open()) {
            return control.features();
        }
    }

    public boolean has(long feature) {
        return (mask & feature) != 0;
    }

    /** Names of the set bits, unknown ones as BIT&lt;n&gt;. */
    public List<String> names() {
        List<String> out = new ArrayList<>();
        for (int bit = 0; bit < 64; bit++) {
            if ((mask & (1L << bit)) != 0) {
                out.add(bit < UblkAbi.FEATURE_NAMES.length ? UblkAbi.FEATURE_NAMES[bit] : "BIT" + bit);
            }
        }
        return out;
    }

    /** The best buffer mode this kernel offers a privileged server. */
    public BufferMode bestBufferMode() {
        if (has(UblkAbi.F_AUTO_BUF_REG) && has(UblkAbi.F_SUPPORT_ZERO_COPY)) {
            return BufferMode.ZERO_COPY;
        }
        if (has(UblkAbi.F_USER_COPY)) {
            return BufferMode.USER_COPY;
        }
        return BufferMode.COPY;
    }

    @Override
    public String toString() {
        return String.format("0x%x %s", mask, names());
    }

    /** Prints the decoded mask; exit code 1 when ublk is unusable here. */
    public static void main(String[] args) {
        try {
            UblkFeatures f = probe();
            System.out.println("ublk features: " + f);
            System.out.println("buffer mode: " + f.bestBufferMode().label());
        } catch (UringException e) {
            System.err.println("ublk unavailable: " + e.getMessage());
            System.exit(1);
        }
    }
}
