package io.nbdgate.gateway.device;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryIteratorException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Who holds a block device open: its mounts, the devices stacked on it, and the processes with it open, read
 * from /proc and /sys the way fuser, lsblk and findmnt do. Best effort: what cannot be read is skipped, so a
 * refused detach can say why in one line.
 */
public final class BlockHolders {
    private final Path proc;
    private final Path sys;

    BlockHolders(Path proc, Path sys) {
        this.proc = proc;
        this.sys = sys;
    }

    /** Descriptions such as "mounted on /mnt/data", "used by dm-3 (vg-lv)", "pid 812 (fio)"; never throws. */
    public static List<String> of(String blockDevice) {
        return new BlockHolders(Path.of("/proc"), Path.of("/sys")).holders(blockDevice);
    }

    /** The one line a refused detach prints. */
    public static String describe(String blockDevice, List<String> holders) {
        if (holders.isEmpty()) {
            return blockDevice + " is in use (no holder found in /proc: another namespace, or a kernel user)";
        }
        return blockDevice + " is in use: " + String.join("; ", holders);
    }

    List<String> holders(String blockDevice) {
        String name = Path.of(blockDevice).getFileName().toString();
        // /sys/block has whole disks only; /sys/class/block also has partitions.
        Path base = Files.isDirectory(sys.resolve("block").resolve(name))
                ? sys.resolve("block").resolve(name)
                : sys.resolve("class/block").resolve(name);
        List<Path> nodes = new ArrayList<>();
        nodes.add(base);
        for (Path child : children(base)) {
            if (Files.isRegularFile(child.resolve("partition"))) {
                nodes.add(child);
            }
        }
        Set<String> numbers = new LinkedHashSet<>();
        Set<String> paths = new LinkedHashSet<>(List.of(blockDevice, "/dev/" + name));
        for (Path node : nodes) {
            String number = read(node.resolve("dev"));
            if (number != null) {
                numbers.add(number);
            }
            paths.add("/dev/" + node.getFileName());
        }
        List<String> out = new ArrayList<>();
        String mountinfo = read(proc.resolve("self/mountinfo"));
        if (mountinfo != null) {
            mountPoints(mountinfo, numbers, paths).forEach(m -> out.add("mounted on " + m));
        }
        for (Path node : nodes) {
            for (Path holder : children(node.resolve("holders"))) {
                String dev = holder.getFileName().toString();
                String dmName = read(sys.resolve("block").resolve(dev).resolve("dm/name"));
                out.add("used by " + dev + (dmName == null || dmName.isEmpty() ? "" : " (" + dmName + ")"));
            }
        }
        out.addAll(processesHolding(paths));
        return out;
    }

    /**
     * Mount points of the mountinfo lines whose major:minor is one of numbers, or whose source is one of
     * sources (btrfs reports an anonymous major:minor, so its source is the only link to the device).
     */
    static List<String> mountPoints(String mountinfo, Collection<String> numbers, Collection<String> sources) {
        Set<String> out = new LinkedHashSet<>();
        for (String line : mountinfo.split("\n")) {
            String[] f = line.split(" ");
            if (f.length < 5) {
                continue;
            }
            // Optional fields end at "-"; then come the file system type and the mount source.
            int dash = List.of(f).indexOf("-");
            String source = dash > 0 && dash + 2 < f.length ? unescape(f[dash + 2]) : null;
            if (numbers.contains(f[2]) || (source != null && sources.contains(source))) {
                out.add(unescape(f[4]));
            }
        }
        return List.copyOf(out);
    }

    /** The kernel writes space, tab, newline and backslash in mountinfo as \ooo octal (seq_file's mangle). */
    static String unescape(String field) {
        StringBuilder b = new StringBuilder(field.length());
        for (int i = 0; i < field.length(); i++) {
            char c = field.charAt(i);
            if (c == '\\' && isOctal(field, i + 1)) {
                b.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    private static boolean isOctal(String s, int from) {
        for (int i = from; i < from + 3; i++) {
            if (i >= s.length() || s.charAt(i) < '0' || s.charAt(i) > '7') {
                return false;
            }
        }
        return true;
    }

    /** "pid N (comm)" for each process, but this one, with an fd whose link target is one of paths. */
    List<String> processesHolding(Collection<String> paths) {
        long self = ProcessHandle.current().pid();
        List<Long> pids = new ArrayList<>();
        for (Path p : children(proc)) {
            String n = p.getFileName().toString();
            if (!n.isEmpty() && n.chars().allMatch(Character::isDigit) && n.length() < 19) {
                pids.add(Long.parseLong(n));
            }
        }
        pids.sort(Comparator.naturalOrder());
        List<String> out = new ArrayList<>();
        for (long pid : pids) {
            if (pid != self && holdsOneOf(proc.resolve(Long.toString(pid)).resolve("fd"), paths)) {
                String comm = read(proc.resolve(Long.toString(pid)).resolve("comm"));
                out.add("pid " + pid + " (" + (comm == null ? "?" : comm) + ")");
            }
        }
        return out;
    }

    private static boolean holdsOneOf(Path fdDir, Collection<String> paths) {
        for (Path fd : children(fdDir)) {
            try {
                if (paths.contains(Files.readSymbolicLink(fd).toString())) {
                    return true;
                }
            } catch (IOException | UnsupportedOperationException e) {
                // The fd was closed since the listing, or it is not a link: nothing to report.
            }
        }
        return false;
    }

    /** The entries of dir; none if it is missing or unreadable (another user's /proc/PID/fd). */
    private static List<Path> children(Path dir) {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
            s.forEach(out::add);
        } catch (IOException | DirectoryIteratorException | SecurityException e) {
            return out;
        }
        out.sort(Comparator.comparing(Path::toString));
        return out;
    }

    /** The file's text without its trailing newline; null if it cannot be read. */
    private static String read(Path file) {
        try {
            // Decoded leniently: mountinfo may hold mount points that are not UTF-8.
            return new String(Files.readAllBytes(file), StandardCharsets.UTF_8).strip();
        } catch (IOException | SecurityException e) {
            return null;
        }
    }
}
