package io.nbdgate.protocol.wire;

import java.util.Arrays;

/**
 * The byte ranges of one request that content chunks have filled so far, as sorted disjoint intervals.
 * Chunks usually arrive in order, so the common case merges into the last interval without allocating.
 */
final class Coverage {
    private long[] starts = new long[4];
    private long[] ends = new long[4];
    private int count;
    private long covered;

    void clear() {
        count = 0;
        covered = 0;
    }

    long covered() {
        return covered;
    }

    /** Adds [start, start+length); false if it overlaps a range already covered. */
    boolean add(long start, long length) {
        if (length == 0) {
            return true;
        }
        long end = start + length;
        // index of the first interval whose end is > start
        int i = count;
        while (i > 0 && ends[i - 1] > start) {
            i--;
        }
        if (i < count && starts[i] < end) {
            return false;
        }
        covered += length;
        boolean joinLeft = i > 0 && ends[i - 1] == start;
        boolean joinRight = i < count && starts[i] == end;
        if (joinLeft && joinRight) {
            ends[i - 1] = ends[i];
            System.arraycopy(starts, i + 1, starts, i, count - i - 1);
            System.arraycopy(ends, i + 1, ends, i, count - i - 1);
            count--;
        } else if (joinLeft) {
            ends[i - 1] = end;
        } else if (joinRight) {
            starts[i] = start;
        } else {
            if (count == starts.length) {
                starts = Arrays.copyOf(starts, count * 2);
                ends = Arrays.copyOf(ends, count * 2);
            }
            System.arraycopy(starts, i, starts, i + 1, count - i);
            System.arraycopy(ends, i, ends, i + 1, count - i);
            starts[i] = start;
            ends[i] = end;
            count++;
        }
        return true;
    }
}
