package io.nbdgate.uring;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

/** The parts of include/uapi/linux/io_uring.h this module uses: constants and struct layouts. */
public final class IoUringAbi {
    private IoUringAbi() {
    }

    // io_uring_setup flags
    public static final int SETUP_IOPOLL = 1, SETUP_SQPOLL = 1 << 1, SETUP_CQSIZE = 1 << 3, SETUP_CLAMP = 1 << 4,
            SETUP_R_DISABLED = 1 << 6, SETUP_SUBMIT_ALL = 1 << 7, SETUP_COOP_TASKRUN = 1 << 8,
            SETUP_TASKRUN_FLAG = 1 << 9, SETUP_SQE128 = 1 << 10, SETUP_CQE32 = 1 << 11,
            SETUP_SINGLE_ISSUER = 1 << 12, SETUP_DEFER_TASKRUN = 1 << 13, SETUP_NO_SQARRAY = 1 << 16;

    // features reported by setup
    public static final int FEAT_SINGLE_MMAP = 1, FEAT_NODROP = 1 << 1, FEAT_EXT_ARG = 1 << 8;

    // io_uring_enter flags
    public static final int ENTER_GETEVENTS = 1, ENTER_EXT_ARG = 1 << 3;

    // sq ring flags
    public static final int SQ_NEED_WAKEUP = 1, SQ_CQ_OVERFLOW = 1 << 1, SQ_TASKRUN = 1 << 2;

    // sqe->flags
    public static final byte IOSQE_FIXED_FILE = 1, IOSQE_IO_DRAIN = 1 << 1, IOSQE_IO_LINK = 1 << 2,
            IOSQE_IO_HARDLINK = 1 << 3, IOSQE_ASYNC = 1 << 4, IOSQE_BUFFER_SELECT = 1 << 5,
            IOSQE_CQE_SKIP_SUCCESS = 1 << 6;

    // opcodes
    public static final byte OP_NOP = 0, OP_READV = 1, OP_WRITEV = 2, OP_FSYNC = 3, OP_READ_FIXED = 4,
            OP_WRITE_FIXED = 5, OP_POLL_ADD = 6, OP_TIMEOUT = 11, OP_ASYNC_CANCEL = 14, OP_FALLOCATE = 17, OP_CLOSE = 19,
            OP_CONNECT = 16, OP_READ = 22, OP_WRITE = 23, OP_SEND = 26, OP_RECV = 27, OP_SHUTDOWN = 34,
            OP_SOCKET = 45, OP_URING_CMD = 46, OP_SEND_ZC = 47;
    /** sqe->ioprio of SEND/RECV: poll before the first try, and addr within fixed buffer buf_index. */
    public static final short RECVSEND_POLL_FIRST = 1, RECVSEND_FIXED_BUF = 1 << 2;
    /** CQE of a SEND_ZC: F_MORE says a notification follows; F_NOTIF marks that notification. */
    public static final int CQE_F_NOTIF = 1 << 3;
    /** cmd_op of a socket uring_cmd (include/uapi/linux/io_uring.h, io_uring_socket_op). */
    public static final int SOCKET_URING_OP_SETSOCKOPT = 3;

    public static final int FSYNC_DATASYNC = 1;
    // fallocate modes (linux/falloc.h) used for discard and write-zeroes
    public static final int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;

    // io_uring_register opcodes
    public static final int REGISTER_BUFFERS = 0, UNREGISTER_BUFFERS = 1, REGISTER_FILES = 2,
            UNREGISTER_FILES = 3, REGISTER_FILES_UPDATE = 6, REGISTER_PROBE = 8, REGISTER_FILES2 = 13,
            REGISTER_FILES_UPDATE2 = 14, REGISTER_BUFFERS2 = 15, REGISTER_BUFFERS_UPDATE = 16,
            REGISTER_PBUF_RING = 22, UNREGISTER_PBUF_RING = 23;
    /** CQE flags; a provided buffer's id is in the upper 16 bits. uring_cmd_flags (SQE offset 28). */
    public static final int CQE_F_BUFFER = 1, CQE_F_MORE = 2, CQE_BUFFER_SHIFT = 16, URING_CMD_MULTISHOT = 2;
    public static final int RSRC_REGISTER_SPARSE = 1;
    public static final int IO_URING_OP_SUPPORTED = 1;

    // mmap offsets
    static final long OFF_SQ_RING = 0, OFF_CQ_RING = 0x8000000L, OFF_SQES = 0x10000000L;

    public static final int SQE_SIZE = 64, CQE_SIZE = 16;

    /** struct io_uring_sqe, the 64-byte form; a SQE128 entry has 80 bytes of cmd at offset 48. */
    public static final StructLayout SQE = MemoryLayout.structLayout(
            JAVA_BYTE.withName("opcode"),
            JAVA_BYTE.withName("flags"),
            JAVA_SHORT.withName("ioprio"),
            JAVA_INT.withName("fd"),
            JAVA_LONG.withName("off"),          // also addr2, cmd_op (low 32 bits)
            JAVA_LONG.withName("addr"),
            JAVA_INT.withName("len"),
            JAVA_INT.withName("op_flags"),      // rw_flags, fsync_flags, uring_cmd_flags, ...
            JAVA_LONG.withName("user_data"),
            JAVA_SHORT.withName("buf_index"),
            JAVA_SHORT.withName("personality"),
            JAVA_INT.withName("file_index"),
            JAVA_LONG.withName("addr3"),        // cmd[0..8)
            JAVA_LONG.withName("pad2"));        // cmd[8..16)

    public static final long SQE_OPCODE = 0, SQE_FLAGS = 1, SQE_IOPRIO = 2, SQE_FD = 4, SQE_OFF = 8,
            SQE_ADDR = 16, SQE_LEN = 24, SQE_OP_FLAGS = 28, SQE_USER_DATA = 32, SQE_BUF_INDEX = 40,
            SQE_PERSONALITY = 42, SQE_FILE_INDEX = 44, SQE_ADDR3 = 48, SQE_CMD = 48;

    /** struct io_uring_cqe without the CQE32 tail. */
    public static final StructLayout CQE = MemoryLayout.structLayout(
            JAVA_LONG.withName("user_data"), JAVA_INT.withName("res"), JAVA_INT.withName("flags"));
    static final long CQE_USER_DATA = 0, CQE_RES = 8, CQE_FLAGS = 12;

    static final StructLayout SQRING_OFFSETS = MemoryLayout.structLayout(
            JAVA_INT.withName("head"), JAVA_INT.withName("tail"), JAVA_INT.withName("ring_mask"),
            JAVA_INT.withName("ring_entries"), JAVA_INT.withName("flags"), JAVA_INT.withName("dropped"),
            JAVA_INT.withName("array"), JAVA_INT.withName("resv1"), JAVA_LONG.withName("user_addr"));

    static final StructLayout CQRING_OFFSETS = MemoryLayout.structLayout(
            JAVA_INT.withName("head"), JAVA_INT.withName("tail"), JAVA_INT.withName("ring_mask"),
            JAVA_INT.withName("ring_entries"), JAVA_INT.withName("overflow"), JAVA_INT.withName("cqes"),
            JAVA_INT.withName("flags"), JAVA_INT.withName("resv1"), JAVA_LONG.withName("user_addr"));

    /** struct io_uring_params. */
    public static final StructLayout PARAMS = MemoryLayout.structLayout(
            JAVA_INT.withName("sq_entries"), JAVA_INT.withName("cq_entries"), JAVA_INT.withName("flags"),
            JAVA_INT.withName("sq_thread_cpu"), JAVA_INT.withName("sq_thread_idle"),
            JAVA_INT.withName("features"), JAVA_INT.withName("wq_fd"),
            MemoryLayout.sequenceLayout(3, JAVA_INT).withName("resv"),
            SQRING_OFFSETS.withName("sq_off"), CQRING_OFFSETS.withName("cq_off"));

    static final long P_SQ_ENTRIES = 0, P_CQ_ENTRIES = 4, P_FLAGS = 8, P_FEATURES = 20, P_SQ_OFF = 40,
            P_CQ_OFF = 80;
    // offsets inside io_sqring_offsets / io_cqring_offsets
    static final long RO_HEAD = 0, RO_TAIL = 4, RO_RING_MASK = 8, RO_RING_ENTRIES = 12, SQ_RO_FLAGS = 16,
            SQ_RO_ARRAY = 24, CQ_RO_CQES = 20;

    /** struct io_uring_getevents_arg, used with IORING_ENTER_EXT_ARG. */
    public static final StructLayout GETEVENTS_ARG = MemoryLayout.structLayout(
            JAVA_LONG.withName("sigmask"), JAVA_INT.withName("sigmask_sz"), JAVA_INT.withName("min_wait_usec"),
            JAVA_LONG.withName("ts"));

    /** struct __kernel_timespec. */
    public static final StructLayout TIMESPEC = MemoryLayout.structLayout(
            JAVA_LONG.withName("tv_sec"), JAVA_LONG.withName("tv_nsec"));

    /** struct io_uring_rsrc_register. */
    public static final StructLayout RSRC_REGISTER = MemoryLayout.structLayout(
            JAVA_INT.withName("nr"), JAVA_INT.withName("flags"), JAVA_LONG.withName("resv2"),
            JAVA_LONG.withName("data"), JAVA_LONG.withName("tags"));

    /** struct io_uring_rsrc_update2. */
    public static final StructLayout RSRC_UPDATE2 = MemoryLayout.structLayout(
            JAVA_INT.withName("offset"), JAVA_INT.withName("resv"), JAVA_LONG.withName("data"),
            JAVA_LONG.withName("tags"), JAVA_INT.withName("nr"), JAVA_INT.withName("resv2"));

    /** struct iovec. */
    public static final StructLayout IOVEC = MemoryLayout.structLayout(
            JAVA_LONG.withName("iov_base"), JAVA_LONG.withName("iov_len"));

    /** struct io_uring_probe header; followed by ops_len struct io_uring_probe_op. */
    public static final StructLayout PROBE = MemoryLayout.structLayout(
            JAVA_BYTE.withName("last_op"), JAVA_BYTE.withName("ops_len"), JAVA_SHORT.withName("resv"),
            MemoryLayout.sequenceLayout(3, JAVA_INT).withName("resv2"));

    /** struct io_uring_probe_op. */
    public static final StructLayout PROBE_OP = MemoryLayout.structLayout(
            JAVA_BYTE.withName("op"), JAVA_BYTE.withName("resv"), JAVA_SHORT.withName("flags"),
            JAVA_INT.withName("resv2"));
}
