package io.nbdgate.ublk;

import static io.nbdgate.ublk.UblkAbi.*;
import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Sizes, offsets and command numbers as the C compiler lays out ublk_cmd.h on x86_64. */
class UblkAbiTest {
    @Test
    void structSizes() {
        assertEquals(32, CTRL_CMD.byteSize());
        assertEquals(64, DEV_INFO.byteSize());
        assertEquals(24, IO_DESC.byteSize());
        assertEquals(16, IO_CMD.byteSize());
        assertEquals(32, PARAM_BASIC.byteSize());
        assertEquals(20, PARAM_DISCARD.byteSize());
        assertEquals(16, PARAM_DEVT.byteSize());
        assertEquals(32, PARAM_ZONED.byteSize());
        assertEquals(8, PARAM_DMA_ALIGN.byteSize());
        assertEquals(16, PARAM_SEGMENT.byteSize());
        assertEquals(16, PARAM_INTEGRITY.byteSize());
        assertEquals(152, PARAMS.byteSize());
    }

    @Test
    void offsets() {
        assertEquals(CC_ADDR, CTRL_CMD.byteOffset(groupElement("addr")));
        assertEquals(CC_DATA, CTRL_CMD.byteOffset(groupElement("data")));
        assertEquals(CC_DEV_PATH_LEN, CTRL_CMD.byteOffset(groupElement("dev_path_len")));
        assertEquals(DI_FLAGS, DEV_INFO.byteOffset(groupElement("flags")));
        assertEquals(DI_UBLKSRV_PID, DEV_INFO.byteOffset(groupElement("ublksrv_pid")));
        assertEquals(DI_OWNER_GID, DEV_INFO.byteOffset(groupElement("owner_gid")));
        assertEquals(ID_START_SECTOR, IO_DESC.byteOffset(groupElement("start_sector")));
        assertEquals(ID_ADDR, IO_DESC.byteOffset(groupElement("addr")));
        assertEquals(IC_ADDR, IO_CMD.byteOffset(groupElement("addr")));
        assertEquals(P_BASIC, PARAMS.byteOffset(groupElement("basic")));
        assertEquals(P_DISCARD, PARAMS.byteOffset(groupElement("discard")));
        assertEquals(P_DEVT, PARAMS.byteOffset(groupElement("devt")));
        assertEquals(P_ZONED, PARAMS.byteOffset(groupElement("zoned")));
        assertEquals(P_DMA, PARAMS.byteOffset(groupElement("dma")));
        assertEquals(P_SEG, PARAMS.byteOffset(groupElement("seg")));
        assertEquals(P_INTEGRITY, PARAMS.byteOffset(groupElement("integrity")));
        assertEquals(16, PARAM_BASIC.byteOffset(groupElement("dev_sectors")));
        assertEquals(12, PARAM_DISCARD.byteOffset(groupElement("max_write_zeroes_sectors")));
    }

    @Test
    void ioctlEncodedCommands() {
        // values computed from _IOR/_IOWR('u', nr, 32 or 16 bytes)
        assertEquals(0x80207513, U_CMD_GET_FEATURES);
        assertEquals(0xc0207504, U_CMD_ADD_DEV);
        assertEquals(0x80207512, U_CMD_GET_DEV_INFO2);
        assertEquals(0xc0207516, U_CMD_QUIESCE_DEV);
        assertEquals(0xc0107520, U_IO_FETCH_REQ);
        assertEquals(0xc0107521, U_IO_COMMIT_AND_FETCH_REQ);
    }

    @Test
    void autoBufRegIsTheIndexInTheLowBitsOfAddr() {
        assertEquals(0x1_0007L, autoBufReg(7, AUTO_BUF_REG_FALLBACK));
        assertEquals(0xffffL, autoBufReg(0xffff, 0));
        assertEquals(1L << 11, F_AUTO_BUF_REG);
    }

    @Test
    void userCopyOffsetEncodesQueueAndTag() {
        assertEquals(0x80000000L + (1L << 41) + (3L << 25), userCopyOffset(1, 3));
    }
}
