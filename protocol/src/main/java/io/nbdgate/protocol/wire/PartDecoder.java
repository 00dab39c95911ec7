package io.nbdgate.protocol.wire;

import io.nbdgate.protocol.ProtocolViolation;

/** What the decoders of a reply's parts share: how many bytes they wait for, and why they gave up. */
abstract class PartDecoder {
    private int needed;
    private ProtocolViolation violation;

    /** After NEED_MORE: the bytes that must be readable before the next call can progress. */
    final int needed() {
        return needed;
    }

    /** After VIOLATION: what was wrong. */
    final ProtocolViolation violation() {
        return violation;
    }

    final ChunkProgress needMore(int n) {
        needed = n;
        return ChunkProgress.NEED_MORE;
    }

    final ChunkProgress fail(ProtocolViolation v) {
        violation = v;
        return ChunkProgress.VIOLATION;
    }
}
