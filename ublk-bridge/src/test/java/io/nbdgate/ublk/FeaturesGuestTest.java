package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The first proof on a real kernel: GET_FEATURES through our own SQE128 ring. Fails without /dev/ublk-control. */
@Tag("ublk")
class FeaturesGuestTest {
    @Test
    void kernelOffersAutoBufReg() throws Exception {
        UblkFeatures f = UblkFeatures.probe();
        System.out.println("ublk features: " + f + ", best buffer mode " + f.bestBufferMode().label());
        assertTrue(f.has(UblkAbi.F_CMD_IOCTL_ENCODE), f.toString());
        assertTrue(f.has(UblkAbi.F_AUTO_BUF_REG), "AUTO_BUF_REG (bit 11) missing: " + f);
    }
}
