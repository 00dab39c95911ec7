package io.nbdgate.gateway.link;

import io.nbdgate.uring.IoUringAbi;

/**
 * The ring operations a link has outstanding. Its socket may close once only SEND_ZC notifications are left
 * (they come after the close too), and the link is over once nothing is: until then the kernel may still
 * touch the requests' pages and the link's buffers.
 */
final class InFlightOps {
    private int ops;
    private int notifications;
    private long submitted;

    /** Counts an operation just submitted. */
    long add(long userData) {
        ops++;
        submitted++;
        return userData;
    }

    /** Operations submitted over the link's life. */
    long submitted() {
        return submitted;
    }

    /** A completion came: the last one of its operation unless the kernel says more follow. */
    void completed(int kind, int flags) {
        if ((flags & IoUringAbi.CQE_F_MORE) == 0) {
            ops--;
        }
        if (kind == OpKind.TX_HEADERS || kind == OpKind.TX_PAYLOAD) {
            if ((flags & IoUringAbi.CQE_F_NOTIF) != 0) {
                notifications--;
            } else if ((flags & IoUringAbi.CQE_F_MORE) != 0) {
                notifications++; // a SEND_ZC's notification is to come
            }
        }
    }

    boolean onlyNotificationsLeft() {
        return ops == notifications;
    }

    boolean none() {
        return ops == 0;
    }
}
