package io.nbdgate.gateway.link;

import io.nbdgate.uring.UserData;

/**
 * What a link's ring operation is. The kind and the request's tag travel in the operation's user_data
 * ({@link UserData}), and {@link Link#handle} routes each completion by its kind.
 */
final class OpKind {
    static final int SOCKET = 0;
    static final int SOCKOPT = 1;
    static final int CONNECT = 2;
    /** A connect io_uring gave back as EALREADY: POLLOUT says when it ended. */
    static final int CONNECT_WAIT = 15;
    static final int HS_SEND = 3;
    static final int HS_RECV = 4;
    static final int TX_HEADERS = 5;
    static final int TX_PAYLOAD = 6;
    static final int RX_HEADER = 7;
    static final int RX_DATA = 8;
    /** Zero-filling a hole of a structured read reply. */
    static final int RX_ZEROES = 9;
    static final int SHUTDOWN = 10;
    static final int CLOSE = 11;
    static final int CANCEL = 12;
    /** NBD_CMD_DISC. */
    static final int DISC = 13;

    private OpKind() {
    }

    static short data(int kind, int tag) {
        return UserData.encode(kind, tag);
    }
}
