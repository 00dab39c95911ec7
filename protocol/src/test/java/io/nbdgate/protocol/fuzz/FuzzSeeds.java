package io.nbdgate.protocol.fuzz;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.NbdError;
import io.nbdgate.protocol.NbdMagic;
import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.OptionReplyType;
import io.nbdgate.protocol.ReplyType;
import io.nbdgate.protocol.TransmissionMode;
import io.nbdgate.protocol.wire.ReplyCodec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the seed corpus of the fuzz tests: well-formed server streams for each mode, so mutation starts
 * from deep inside the state machines. Run: java -cp test-classes:classes FuzzSeeds protocol/src/test/resources
 */
final class FuzzSeeds {

    private static final TransmissionMode SIMPLE = TransmissionMode.SIMPLE;
    private static final TransmissionMode STRUCTURED = TransmissionMode.STRUCTURED;
    private static final TransmissionMode EXTENDED = TransmissionMode.EXTENDED;

    public static void main(String[] args) throws IOException {
        Path root = Path.of(args[0], "io/nbdgate/protocol/fuzz");
        Path replies = root.resolve("ReplyStreamFuzzTestInputs/replyStream");
        Path handshakes = root.resolve("HandshakeFuzzTestInputs/clientHandshake");
        Files.createDirectories(replies);
        Files.createDirectories(handshakes);

        ByteBuffer b = requests(SIMPLE, new int[] {0}, new int[] {512});
        ReplyCodec.simpleReply(b, 0, cookie(0));
        b.put(new byte[512]);
        write(replies.resolve("simple-read"), b);

        b = requests(STRUCTURED, new int[] {0, 3}, new int[] {1024, 0});
        ReplyCodec.offsetDataHeader(b, STRUCTURED, 0, cookie(0), 0, 512, 512);
        b.put(new byte[512]);
        ReplyCodec.simpleReply(b, 0, cookie(1));
        ReplyCodec.offsetHole(b, STRUCTURED, 0, cookie(0), 0, 0, 512);
        ReplyCodec.none(b, STRUCTURED, cookie(0), 0);
        write(replies.resolve("structured-read-out-of-order"), b);

        b = requests(EXTENDED, new int[] {0, 7}, new int[] {1024, 4096});
        ReplyCodec.offsetHole(b, EXTENDED, 0, cookie(0), 0, 512, 512);
        ReplyCodec.offsetDataHeader(b, EXTENDED, ReplyType.FLAG_DONE, cookie(0), 0, 0, 512);
        b.put(new byte[512]);
        ReplyCodec.blockStatus(b, EXTENDED, ReplyType.FLAG_DONE, cookie(1), 0, 1, new long[] {2048, 2048},
                new long[] {0, 3});
        write(replies.resolve("extended-read-and-status"), b);

        b = requests(STRUCTURED, new int[] {0, 1, 7}, new int[] {1024, 512, 4096});
        ReplyCodec.errorOffset(b, STRUCTURED, 0, cookie(0), 0, NbdError.EIO, "bad sector", 512);
        ReplyCodec.offsetDataHeader(b, STRUCTURED, ReplyType.FLAG_DONE, cookie(0), 0, 0, 512);
        b.put(new byte[512]);
        ReplyCodec.error(b, STRUCTURED, cookie(1), 0, NbdError.ENOSPC, "full");
        ReplyCodec.blockStatus(b, STRUCTURED, ReplyType.FLAG_DONE, cookie(2), 0, 1, new long[] {4096}, new long[] {3});
        write(replies.resolve("structured-errors-and-status"), b);

        // Handshakes. First byte: bit0 LIST, bit1 TLS, bit2 extended headers, bit3 structured replies.
        b = ByteBuffer.allocate(1 << 12).put((byte) 12);
        greeting(b, 3);
        optionReply(b, NbdOption.EXTENDED_HEADERS, OptionReplyType.ACK, new byte[0]);
        goInfos(b);
        write(handshakes.resolve("go-extended"), b);

        b = ByteBuffer.allocate(1 << 12).put((byte) 12);
        greeting(b, 1);
        optionReply(b, NbdOption.EXTENDED_HEADERS, OptionReplyType.ERR_UNSUP, new byte[0]);
        optionReply(b, NbdOption.STRUCTURED_REPLY, OptionReplyType.ACK, new byte[0]);
        optionReply(b, NbdOption.GO, OptionReplyType.ERR_UNSUP, new byte[0]);
        b.putLong(1 << 20).putShort((short) 1).put(new byte[124]);
        write(handshakes.resolve("export-name-fallback"), b);

        b = ByteBuffer.allocate(1 << 12).put((byte) 14);
        greeting(b, 3);
        optionReply(b, NbdOption.STARTTLS, OptionReplyType.ACK, new byte[0]);
        optionReply(b, NbdOption.EXTENDED_HEADERS, OptionReplyType.ERR_UNSUP, new byte[0]);
        optionReply(b, NbdOption.STRUCTURED_REPLY, OptionReplyType.ACK, new byte[0]);
        optionReply(b, NbdOption.GO, OptionReplyType.ERR_UNKNOWN, "no such export".getBytes());
        write(handshakes.resolve("tls-then-unknown-export"), b);

        b = ByteBuffer.allocate(1 << 12).put((byte) 1);
        greeting(b, 3);
        optionReply(b, NbdOption.LIST, OptionReplyType.SERVER, ByteBuffer.allocate(9).putInt(4).put("disk".getBytes())
                .put((byte) 'x').array());
        optionReply(b, NbdOption.LIST, OptionReplyType.ACK, new byte[0]);
        optionReply(b, NbdOption.ABORT, OptionReplyType.ACK, new byte[0]);
        write(handshakes.resolve("list"), b);
    }

    private static long cookie(int index) {
        return (1L << 32) | index;
    }

    private static ByteBuffer requests(TransmissionMode mode, int[] commands, int[] lengths) {
        ByteBuffer b = ByteBuffer.allocate(1 << 16);
        b.put((byte) mode.ordinal()).put((byte) (commands.length - 1));
        for (int i = 0; i < commands.length; i++) {
            b.put((byte) Command.values()[commands[i]].code()).putShort((short) 0).putInt(0).putInt(lengths[i]);
        }
        return b;
    }

    private static void greeting(ByteBuffer b, int flags) {
        b.putLong(NbdMagic.NBDMAGIC).putLong(NbdMagic.IHAVEOPT).putShort((short) flags);
    }

    private static void optionReply(ByteBuffer b, NbdOption o, OptionReplyType t, byte[] payload) {
        b.putLong(NbdMagic.OPTION_REPLY).putInt(o.code()).putInt(t.code()).putInt(payload.length).put(payload);
    }

    private static void goInfos(ByteBuffer b) {
        optionReply(b, NbdOption.GO, OptionReplyType.INFO, ByteBuffer.allocate(12).putShort((short) 0)
                .putLong(1 << 30).putShort((short) 0x1ed).array());
        optionReply(b, NbdOption.GO, OptionReplyType.INFO, ByteBuffer.allocate(6).putShort((short) 1)
                .put("disk".getBytes()).array());
        optionReply(b, NbdOption.GO, OptionReplyType.INFO, ByteBuffer.allocate(14).putShort((short) 3)
                .putInt(512).putInt(4096).putInt(1 << 20).array());
        optionReply(b, NbdOption.GO, OptionReplyType.ACK, new byte[0]);
    }

    private static void write(Path p, ByteBuffer b) throws IOException {
        b.flip();
        byte[] a = new byte[b.remaining()];
        b.get(a);
        Files.write(p, a);
    }
}
