package io.nbdgate.protocol.client;

import io.nbdgate.protocol.NbdOption;
import io.nbdgate.protocol.OptionReplyType;
import io.nbdgate.protocol.ProtocolViolation;

/** Why a client handshake failed, worded for the user who has to fix it. */
public sealed interface HandshakeError {

    String message();

    /** The server broke the protocol. */
    record Violation(ProtocolViolation violation) implements HandshakeError {
        @Override
        public String message() {
            return "NBD server broke the protocol: " + violation.message();
        }
    }

    /** The server answered an option with an error reply (unknown export, TLS required, policy...). */
    record OptionRejected(NbdOption option, int replyType, String serverMessage) implements HandshakeError {
        @Override
        public String message() {
            OptionReplyType t = OptionReplyType.fromCode(replyType);
            String what = switch (t == null ? OptionReplyType.ERR_UNSUP : t) {
                case ERR_UNKNOWN -> "export not found on the server";
                case ERR_TLS_REQD -> "the server requires TLS (use an nbds:// URI)";
                case ERR_POLICY -> "refused by server policy";
                case ERR_SHUTDOWN -> "the server is shutting down";
                case ERR_UNSUP -> "not supported by the server";
                case ERR_PLATFORM -> "not supported on the server's platform";
                case ERR_INVALID -> "the server says the request is invalid";
                case ERR_BLOCK_SIZE_REQD -> "the server requires block size negotiation";
                case ERR_TOO_BIG -> "request or reply too big for the server";
                case ERR_EXT_HEADER_REQD -> "the server requires extended headers";
                default -> "error reply";
            };
            String name = t == null ? "0x" + Integer.toHexString(replyType) : "NBD_REP_" + t.name();
            if (option == NbdOption.STARTTLS && t != OptionReplyType.ERR_SHUTDOWN) {
                what = "the server does not offer TLS (nbds:// requires it)";
            }
            return "NBD_OPT_" + option.name() + ": " + what + " (" + name + ")"
                    + (serverMessage == null || serverMessage.isEmpty() ? "" : ": " + serverMessage);
        }
    }

    /** The server speaks a dialect this client does not (oldstyle, or no fixed newstyle for LIST). */
    record Unsupported(String why) implements HandshakeError {
        @Override
        public String message() {
            return why;
        }
    }

    /** The server closed the connection in the middle of the handshake. */
    record ServerClosed(ClientHandshake.State state) implements HandshakeError {
        @Override
        public String message() {
            return "NBD server closed the connection during the handshake (" + state + ")"
                    + (state == ClientHandshake.State.RECV_EXPORT_NAME_REPLY
                        ? "; with NBD_OPT_EXPORT_NAME this usually means the export does not exist" : "");
        }
    }
}
