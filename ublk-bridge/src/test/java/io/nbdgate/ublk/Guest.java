package io.nbdgate.ublk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.util.concurrent.EventExecutor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Helpers for ublk guest tests: Netty loops, real processes, digests. */
final class Guest {
    private Guest() {
    }

    static MultiThreadIoEventLoopGroup loops(int n) {
        return new MultiThreadIoEventLoopGroup(n, IoUringIoHandler.newFactory());
    }

    static List<IoEventLoop> list(MultiThreadIoEventLoopGroup group) {
        List<IoEventLoop> out = new ArrayList<>();
        for (EventExecutor e : group) {
            out.add((IoEventLoop) e);
        }
        return out;
    }

    record Result(int exit, String output) {
    }

    /** Runs a command, output merged; fails the test on a non-zero exit. */
    static String run(String... cmd) throws IOException, InterruptedException {
        Result r = runAllowingFailure(600, cmd);
        assertEquals(0, r.exit(), () -> String.join(" ", cmd) + " failed:\n" + r.output());
        return r.output();
    }

    static Result runAllowingFailure(long timeoutSeconds, String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out;
        try (InputStream in = p.getInputStream()) {
            out = in.readAllBytes();
        }
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", cmd) + " timed out");
        }
        String s = new String(out, StandardCharsets.UTF_8);
        System.out.println("$ " + String.join(" ", cmd) + "\n" + s);
        return new Result(p.exitValue(), s);
    }

    static String sha256(Path file, long bytes) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 20];
            long left = bytes;
            while (left > 0) {
                int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                if (n < 0) {
                    break;
                }
                md.update(buf, 0, n);
                left -= n;
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** fio with crc32c verification over the whole device. */
    static String fio(String dev, String rw, String bs, long sizeBytes, String... extra) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("fio", "--name=verify", "--filename=" + dev,
                "--allow_file_create=0", "--rw=" + rw, "--bs=" + bs, "--size=" + sizeBytes, "--iodepth=32",
                "--ioengine=io_uring", "--direct=1", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1",
                "--group_reporting", "--randrepeat=0"));
        cmd.addAll(List.of(extra));
        return run(cmd.toArray(String[]::new));
    }

    /**
     * Watches /dev/ublkbN for {@code millis} and fails if it is ever not the disk's block node: the
     * device's node must stay put once start returned. Prints what it saw when it changed.
     */
    static void assertNodeStays(int devId, long millis) throws Exception {
        long end = System.nanoTime() + millis * 1_000_000;
        String problem;
        do {
            problem = DeviceNodes.nodeProblem(devId);
            if (problem != null) {
                System.out.println("node check: " + problem + "; /dev has " + ublkNodes());
                runAllowingFailure(10, "dmesg"); // printed
            }
            assertNull(problem, "the device's node changed after start");
            Thread.sleep(50);
        } while (System.nanoTime() < end);
    }

    static List<String> ublkNodes() throws IOException {
        try (var s = Files.list(Path.of("/dev"))) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("ublkb") || n.startsWith("ublkc"))
                    .sorted().toList();
        }
    }
}
