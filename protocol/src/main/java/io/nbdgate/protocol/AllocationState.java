package io.nbdgate.protocol;

/** Status flags of the base:allocation metadata context (proto.md, "base:allocation"). */
public final class AllocationState {
    private AllocationState() {}

    public static final String CONTEXT = "base:allocation";
    /** NBD_STATE_HOLE: not allocated. */
    public static final int HOLE = 1;
    /** NBD_STATE_ZERO: reads as zeroes. */
    public static final int ZERO = 1 << 1;
}
