package io.nbdgate.gateway.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * fio running in the background against a ublk device while a test breaks things, with crc32c
 * verification always on. {@link #assertClean} is the verdict every fault test asks for: exit 0, no I/O
 * or verify error in any job, and reads that actually verified something.
 */
final class FioJob implements AutoCloseable {
    private final Process process;
    private final Path json;
    private final Path log;
    private final int deviceId;

    private FioJob(Process process, Path json, Path log, int deviceId) {
        this.process = process;
        this.json = json;
        this.log = log;
        this.deviceId = deviceId;
    }

    /** Starts fio on the device with {@code args} (rw, bs, size, ...) after the fixed verification options. */
    static FioJob start(Path dir, NbdDevice device, String... args) throws Exception {
        return start(dir, device.blockDevice(), args);
    }

    /** The same on {@code blockDevice} (/dev/ublkbN), served by whatever process. */
    static FioJob start(Path dir, String blockDevice, String... args) throws Exception {
        Path json = Files.createTempFile(dir, "fio", ".json");
        Path log = Files.createTempFile(dir, "fio", ".log");
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=fault", "--filename=" + blockDevice,
                "--allow_file_create=0", "--direct=1", "--ioengine=io_uring", "--iodepth=16", "--verify=crc32c",
                "--verify_fatal=1", "--verify_state_save=0", "--output-format=json", "--output=" + json));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        return new FioJob(p, json, log, Integer.parseInt(blockDevice.substring("/dev/ublkb".length())));
    }

    /** Bytes written to /dev/ublkbN since it was created (write sectors in /sys/block/ublkbN/stat). */
    static long bytesWritten(int deviceId) throws Exception {
        String[] f = Files.readString(Path.of("/sys/block/ublkb" + deviceId + "/stat")).trim().split("\\s+");
        return Long.parseLong(f[6]) * 512;
    }

    /**
     * Waits until the device has taken {@code bytes} of writes, so faults land at points spaced by what fio
     * wrote rather than by the clock (fio needs seconds under TCG before its first write).
     */
    void awaitWritten(long bytes, Duration timeout) throws Exception {
        awaitWritten(deviceId, bytes, "fio", process, this::output, timeout);
    }

    /** The same for any writer process (a shell copying files, say); {@code output} explains a failure. */
    static void awaitWritten(int deviceId, long bytes, String what, Process writer, Supplier<String> output,
                             Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (bytesWritten(deviceId) < bytes) {
            if (!writer.isAlive()) {
                fail(what + " ended (exit " + writer.exitValue() + ") after " + bytesWritten(deviceId) / 1024
                        + " KiB written, before " + bytes / 1024 + " KiB:\n" + output.get());
            }
            if (System.nanoTime() > deadline) {
                fail("the device took only " + bytesWritten(deviceId) / 1024 + " KiB of writes in " + timeout
                        + ", waiting for " + bytes / 1024 + " KiB; " + what + " so far:\n" + output.get());
            }
            Thread.sleep(50);
        }
    }

    /**
     * Waits until fio has written {@code bytes} and has a read in flight, so that a fault then cuts off reads
     * too (fio's verify_backlog reads alternate with its writes).
     */
    void awaitWrittenWithReadsInFlight(long bytes, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        awaitWritten(bytes, timeout);
        awaitInFlight(true, deadline, "fio never had a read in flight after " + bytesWritten(deviceId) / 1024
                + " KiB written");
    }

    /** Waits until the device has a request in flight (any kind): one the server is meant never to answer. */
    void awaitRequestsInFlight(Duration timeout) throws Exception {
        awaitInFlight(false, System.nanoTime() + timeout.toNanos(), "fio had no request in flight within " + timeout);
    }

    /**
     * Polls the requests the block layer has handed to the device and not yet seen completed
     * (/sys/block/ublkbN/inflight: reads, then writes) until there is a read, or any request.
     */
    private void awaitInFlight(boolean readsOnly, long deadline, String failure) throws Exception {
        while (true) {
            String[] f = Files.readString(Path.of("/sys/block/ublkb" + deviceId + "/inflight")).trim().split("\\s+");
            int reads = Integer.parseInt(f[0]);
            if (reads > 0 || (!readsOnly && Integer.parseInt(f[1]) > 0)) {
                return;
            }
            if (!process.isAlive() || System.nanoTime() > deadline) {
                fail(failure + ":\n" + output());
            }
            Thread.sleep(5);
        }
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** Waits for fio to end; a fio still running after {@code timeout} is killed and fails the test. */
    void awaitExit(Duration timeout) throws Exception {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
            fail("fio did not finish within " + timeout + " (I/O hangs?):\n" + output());
        }
    }

    /** Waits for the end, then: exit 0, zero errors in every job, and bytes written and read back (verified) in every job. */
    void assertClean(Duration timeout) throws Exception {
        assertClean(timeout, true);
    }

    /** The same for a {@code --verify_only=1} run, which writes nothing. */
    void assertVerifiedOnly(Duration timeout) throws Exception {
        assertClean(timeout, false);
    }

    private void assertClean(Duration timeout, boolean writes) throws Exception {
        awaitExit(timeout);
        assertEquals(0, process.exitValue(), () -> "fio failed:\n" + output());
        JsonArray jobs = new JsonObject(jsonText()).getJsonArray("jobs");
        assertTrue(jobs != null && !jobs.isEmpty(), () -> "fio reported no jobs:\n" + output());
        for (int i = 0; i < jobs.size(); i++) {
            JsonObject job = jobs.getJsonObject(i);
            assertEquals(0, job.getInteger("error"), () -> "fio job " + job.getString("jobname") + " saw an error:\n"
                    + output());
            assertTrue(!writes || job.getJsonObject("write").getLong("io_bytes") > 0, () -> "fio wrote nothing:\n"
                    + output());
            assertTrue(job.getJsonObject("read").getLong("io_bytes") > 0, () -> "fio verified nothing:\n" + output());
        }
    }

    /** fio's messages and, once it ended, its JSON report. */
    String output() {
        try {
            return Files.readString(log) + (process.isAlive() ? "" : jsonText());
        } catch (Exception e) {
            return "(no fio output: " + e + ")";
        }
    }

    private String jsonText() throws Exception {
        String s = Files.readString(json);
        int brace = s.indexOf('{'); // fio may print a notice before the JSON
        return brace < 0 ? s : s.substring(brace);
    }

    @Override
    public void close() throws Exception {
        if (process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
