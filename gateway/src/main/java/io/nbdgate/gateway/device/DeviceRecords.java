package io.nbdgate.gateway.device;

import io.nbdgate.gateway.config.RunDir;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The state directory: one {@link DeviceRecord} per served device, NAME.state (a properties file), written atomically (a temporary
 * file renamed over the old one) so that a crash at any moment leaves the old record or the new one, never half.
 * A record outlives its process only when the process dies without detaching: that is what makes an orphan.
 */
public final class DeviceRecords {
    private static final String SUFFIX = ".state";

    private final Path dir;
    private final Predicate<DeviceRecord> present;

    public DeviceRecords(Path dir) {
        this(dir, r -> Files.exists(Path.of(r.charDevice())));
    }

    /** With another idea of which recorded devices the kernel still has (tests without ublk). */
    DeviceRecords(Path dir, Predicate<DeviceRecord> present) {
        this.dir = dir;
        this.present = present;
    }

    /** Whether the kernel still has the device {@code r} names (/dev/ublkcN exists). */
    boolean present(DeviceRecord r) {
        return present.test(r);
    }

    /** {@code devices/} under the run directory (/run/nbdgate, or NBDGATE_RUN_DIR). */
    public static DeviceRecords standard() {
        return new DeviceRecords(RunDir.path().resolve("devices"));
    }

    public Path dir() {
        return dir;
    }

    public void write(DeviceRecord r) {
        try {
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, "." + r.name(), ".tmp");
            try (var w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                r.toProperties().store(w, "nbdgate device state: a take-over reads it after its owner died");
            }
            try {
                Files.move(tmp, file(r.name()), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file(r.name()), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("writing the state record of '" + r.name() + "' in " + dir, e);
        }
    }

    public Optional<DeviceRecord> read(String name) {
        return parse(file(name));
    }

    /** Every readable record; an unreadable one is logged and skipped. */
    public List<DeviceRecord> all() {
        List<DeviceRecord> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            files.filter(f -> f.getFileName().toString().endsWith(SUFFIX)).sorted()
                    .forEach(f -> parse(f).ifPresent(out::add));
        } catch (NoSuchFileException e) {
            return out;
        } catch (IOException e) {
            log().warn("listing {}: {}", dir, e.toString());
        }
        return out;
    }

    /**
     * {@code base}, or the first of base-2, base-3, ... that no live process serves and no orphan of another
     * export holds: a name given by default must not refuse the attach, while an orphan of the same export,
     * left by the same command, is taken over.
     */
    public String unusedName(String base, String export) {
        for (int i = 1; i < 1000; i++) {
            String name = i == 1 ? base : base.substring(0, Math.min(base.length(), 28)) + "-" + i;
            Optional<DeviceRecord> r = read(name);
            if (r.isEmpty() || !present(r.get())
                    || (!r.get().owner().alive() && r.get().export().equals(export))) {
                return name;
            }
        }
        return base;
    }

    /** Removes the record of {@code name} if it still names {@code devId} (a successor may have replaced it). */
    public void delete(String name, int devId) {
        Optional<DeviceRecord> r = read(name);
        if (r.isPresent() && r.get().devId() == devId) {
            try {
                Files.deleteIfExists(file(name));
            } catch (IOException e) {
                log().warn("removing the state record of '{}': {}", name, e.toString());
            }
        }
    }

    // Only on trouble: `nbdgate list` reads records, and a logger would start logging in a command that prints a table.
    private static Logger log() {
        return LoggerFactory.getLogger(DeviceRecords.class);
    }

    private Path file(String name) {
        return dir.resolve(name + SUFFIX);
    }

    private static Optional<DeviceRecord> parse(Path f) {
        try {
            Properties p = new Properties();
            try (var r = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
                p.load(r);
            }
            return Optional.of(DeviceRecord.fromProperties(p));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException | IllegalArgumentException e) {
            log().warn("ignoring the unreadable state record {}: {}", f, e.getMessage());
            return Optional.empty();
        }
    }
}
