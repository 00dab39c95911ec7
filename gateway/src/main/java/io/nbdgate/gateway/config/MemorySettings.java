package io.nbdgate.gateway.config;

/**
 * How a serving process guards itself against memory pressure (the {@code memory} keys).
 *
 * @param oomScoreAdj written to /proc/self/oom_score_adj; -1000: the OOM killer never picks this process
 * @param lock        mlockall: the process's pages stay resident, locked as they are first touched
 */
public record MemorySettings(int oomScoreAdj, boolean lock) {
    public static final MemorySettings DEFAULT = new MemorySettings(-1000, true);
}
