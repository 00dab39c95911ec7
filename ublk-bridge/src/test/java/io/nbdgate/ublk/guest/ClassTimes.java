package io.nbdgate.ublk.guest;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;

/**
 * Prints how long each test class took as it finishes, when {@code -Dnbdgate.classTimes=true} (scripts/test-ublk
 * sets it): the guest layer runs close to CI's limit, and a share that runs out of time writes no report, so the
 * times must be in the console as they happen. scripts/lib/ublk-test-minutes is kept from these lines.
 */
public final class ClassTimes implements TestExecutionListener {
    private static final boolean ENABLED = Boolean.getBoolean("nbdgate.classTimes");
    private final Map<String, Long> started = new ConcurrentHashMap<>();

    @Override
    public void executionStarted(TestIdentifier test) {
        if (ENABLED && isClass(test)) {
            started.put(test.getUniqueId(), System.nanoTime());
        }
    }

    @Override
    public void executionFinished(TestIdentifier test, TestExecutionResult result) {
        Long start = ENABLED && isClass(test) ? started.remove(test.getUniqueId()) : null;
        if (start != null) {
            long seconds = (System.nanoTime() - start) / 1_000_000_000L;
            System.out.printf("[class-time] %s %d s %s%n", test.getDisplayName(), seconds, result.getStatus());
        }
    }

    private static boolean isClass(TestIdentifier test) {
        return test.getSource().filter(ClassSource.class::isInstance).isPresent();
    }
}
