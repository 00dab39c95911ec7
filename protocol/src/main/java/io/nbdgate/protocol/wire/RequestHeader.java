package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.CommandFlag;

/**
 * A decoded request header. {@code type} is the raw 16-bit command so a server can answer
 * unknown commands with EINVAL; {@code length} is the payload length for writes, the effect length otherwise.
 */
public record RequestHeader(int flags, int type, long cookie, long offset, long length, boolean extended) {

    /** The command, or null if this implementation does not know it. */
    public Command command() {
        return Command.fromCode(type);
    }

    /** How many payload bytes follow this header on the wire. */
    public long payloadLength() {
        if (extended) {
            return (flags & CommandFlag.PAYLOAD_LEN) != 0 ? length : 0;
        }
        return type == Command.WRITE.code() ? length : 0;
    }
}
