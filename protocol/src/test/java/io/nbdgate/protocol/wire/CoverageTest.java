package io.nbdgate.protocol.wire;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CoverageTest {

    @Test
    void rangesMergeInAnyOrderUntilTheWholeRequestIsCovered() {
        Coverage c = new Coverage();
        assertTrue(c.add(100, 50));
        assertTrue(c.add(0, 10));
        assertTrue(c.add(300, 100));
        assertTrue(c.add(10, 90));   // joins left and right
        assertTrue(c.add(150, 150)); // joins both again
        assertEquals(400, c.covered());
        assertFalse(c.add(399, 1));
        assertTrue(c.add(400, 0));
    }

    @Test
    void overlapsAreRefusedAndLeaveCoverageUnchanged() {
        Coverage c = new Coverage();
        assertTrue(c.add(0, 512));
        assertTrue(c.add(1024, 512));
        assertFalse(c.add(511, 2));
        assertFalse(c.add(1000, 100));
        assertFalse(c.add(0, 2048));
        assertEquals(1024, c.covered());
        assertTrue(c.add(512, 512));
        assertEquals(1536, c.covered());
    }

    @Test
    void manyDisjointRangesGrowTheTable() {
        Coverage c = new Coverage();
        for (int i = 20; i >= 0; i--) {
            assertTrue(c.add(i * 10L, 5));
        }
        assertEquals(105, c.covered());
        assertFalse(c.add(52, 1));
        c.clear();
        assertEquals(0, c.covered());
        assertTrue(c.add(52, 1));
    }
}
