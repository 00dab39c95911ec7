package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The UBLK_F_* flags ADD_DEV gets for a spec on a given kernel: a pure choice, no kernel needed. */
class DeviceSpecTest {
    private static final UblkFeatures ALL = new UblkFeatures(F_SUPPORT_ZERO_COPY | F_AUTO_BUF_REG | F_USER_COPY
            | F_USER_RECOVERY | F_USER_RECOVERY_REISSUE | F_UPDATE_SIZE | F_QUIESCE | F_BATCH_IO | F_UNPRIVILEGED_DEV);

    @Test
    void zeroCopyTakesUserCopyTooAndBatchWhereTheKernelHasThem() {
        DeviceSpec spec = DeviceSpec.of(2, 32);
        assertEquals(BufferMode.ZERO_COPY, spec.modeFor(ALL));
        assertEquals(F_SUPPORT_ZERO_COPY | F_AUTO_BUF_REG | F_USER_COPY | F_UPDATE_SIZE | F_BATCH_IO, spec.addFlags(ALL));
    }

    @Test
    void aRecoverableBatchDeviceDoesNotAskForQuiesceButAPerTagOneDoes() {
        long batch = DeviceSpec.of(1, 8).withRecovery(true).addFlags(ALL);
        assertEquals(F_USER_RECOVERY | F_USER_RECOVERY_REISSUE | F_BATCH_IO, batch & (F_USER_RECOVERY
                | F_USER_RECOVERY_REISSUE | F_BATCH_IO | F_QUIESCE));
        long perTag = DeviceSpec.of(1, 8).withRecovery(true).withBatchIo(false).addFlags(ALL);
        assertEquals(F_QUIESCE, perTag & (F_QUIESCE | F_BATCH_IO));
    }

    @Test
    void anOldKernelGetsOnlyWhatItHas() {
        UblkFeatures old = new UblkFeatures(F_USER_COPY | F_USER_RECOVERY | F_USER_RECOVERY_REISSUE);
        DeviceSpec spec = DeviceSpec.of(1, 8).withRecovery(true);
        assertEquals(BufferMode.USER_COPY, spec.modeFor(old));
        assertEquals(F_USER_COPY | F_USER_RECOVERY | F_USER_RECOVERY_REISSUE, spec.addFlags(old));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> spec.withMode(BufferMode.ZERO_COPY).addFlags(old));
        assertTrue(e.getMessage().startsWith("kernel lacks zero-copy"), e.getMessage());
    }

    @Test
    void anUnprivilegedDeviceIsCopyModeWithoutRecovery() {
        DeviceSpec spec = DeviceSpec.of(1, 8).withUnprivileged(true).withMode(BufferMode.COPY);
        assertEquals(F_UNPRIVILEGED_DEV, spec.addFlags(ALL) & F_UNPRIVILEGED_DEV);
        assertThrows(IllegalArgumentException.class, () -> spec.withRecovery(true).addFlags(ALL));
        assertThrows(IllegalArgumentException.class, () -> spec.withMode(BufferMode.USER_COPY).addFlags(ALL));
    }
}
