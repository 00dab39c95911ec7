package io.nbdgate.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumSet;
import org.junit.jupiter.api.Test;

class ConstantsTest {

    @Test
    void unknownNbdErrorIsTreatedAsEinval() {
        assertEquals(NbdError.EINVAL, NbdError.fromWire(9999));
        assertEquals(NbdError.EIO, NbdError.fromWire(5));
        assertEquals(108, NbdError.fromWire(108).errno());
    }

    @Test
    void backendErrnoMapsToSpecErrors() {
        assertEquals(NbdError.ENOSPC, NbdError.fromErrno(122)); // EDQUOT
        assertEquals(NbdError.ENOSPC, NbdError.fromErrno(27));  // EFBIG
        assertEquals(NbdError.EPERM, NbdError.fromErrno(30));   // EROFS
        assertEquals(NbdError.EIO, NbdError.fromErrno(2));      // ENOENT: unspecified, EIO
    }

    @Test
    void transmissionFlagsRoundTripAndIgnoreUnknownBits() {
        int wire = 0x8000 | TransmissionFlag.HAS_FLAGS.mask() | TransmissionFlag.SEND_TRIM.mask();
        assertEquals(EnumSet.of(TransmissionFlag.HAS_FLAGS, TransmissionFlag.SEND_TRIM), TransmissionFlag.decode(wire));
        assertEquals(0x21, TransmissionFlag.encode(TransmissionFlag.decode(wire)));
        assertEquals(1 << 12, TransmissionFlag.BLOCK_STATUS_PAYLOAD.mask());
    }

    @Test
    void errorBitsOfReplyTypes() {
        assertTrue(ReplyType.isError(0x8003));
        assertFalse(ReplyType.isError(ReplyType.OFFSET_DATA.code()));
        assertTrue(OptionReplyType.ERR_EXT_HEADER_REQD.isError());
        assertEquals(0x8000_000a, OptionReplyType.ERR_EXT_HEADER_REQD.code());
        assertNull(OptionReplyType.fromCode(0x8000_00ff));
        assertTrue(OptionReplyType.isError(0x8000_00ff));
    }

    @Test
    void wireCodesMatchTheSpec() {
        assertEquals(11, NbdOption.EXTENDED_HEADERS.code());
        assertEquals(NbdOption.GO, NbdOption.fromCode(7));
        assertEquals(Command.WRITE_ZEROES, Command.fromCode(6));
        assertNull(Command.fromCode(9));
        assertNull(Command.fromCode(-1));
        assertEquals(3, InfoType.BLOCK_SIZE.code());
        assertEquals(0x6e8a278c, NbdMagic.EXTENDED_REPLY);
    }
}
