package io.nbdgate.gateway.testsupport;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A network namespace joined to this one by a veth pair: a server inside it is a real remote host as far
 * as TCP is concerned, and {@code tc netem} on both ends of the pair makes loss, delay and partitions.
 * Addresses come from TEST-NET-2 (198.51.100.0/24, RFC 5737), a /30 per namespace; nothing leaves the
 * machine. Needs root, iproute2, and the veth and sch_netem modules (the guest loads them).
 */
public final class NetNamespace implements ServerHost, AutoCloseable {
    private static final AtomicInteger NEXT = new AtomicInteger();

    private final String name;
    private final String hostLink;
    private final String nsLink;
    private final String hostAddress;
    private final String address;

    private NetNamespace(int n) {
        this.name = "nbdgate" + n;
        this.hostLink = "nbdg" + n + "h";
        this.nsLink = "nbdg" + n + "n";
        this.hostAddress = "198.51.100." + (4 * n + 1);
        this.address = "198.51.100." + (4 * n + 2);
    }

    /** A fresh namespace with its link up and its server address reachable from here. */
    public static NetNamespace create() {
        NetNamespace ns = new NetNamespace(NEXT.getAndIncrement() % 60);
        ns.removeLeftovers();
        try {
            HostCommand.run("ip", "netns", "add", ns.name);
            HostCommand.run("ip", "link", "add", ns.hostLink, "type", "veth", "peer", "name", ns.nsLink);
            HostCommand.run("ip", "link", "set", ns.nsLink, "netns", ns.name);
            HostCommand.run("ip", "addr", "add", ns.hostAddress + "/30", "dev", ns.hostLink);
            HostCommand.run("ip", "link", "set", ns.hostLink, "up");
            HostCommand.run("ip", "-n", ns.name, "addr", "add", ns.address + "/30", "dev", ns.nsLink);
            HostCommand.run("ip", "-n", ns.name, "link", "set", ns.nsLink, "up");
            HostCommand.run("ip", "-n", ns.name, "link", "set", "lo", "up");
        } catch (RuntimeException e) {
            ns.close();
            throw e;
        }
        return ns;
    }

    public String name() {
        return name;
    }

    /** The server's address, inside the namespace. */
    @Override
    public String address() {
        return address;
    }

    /** This side's address on the veth pair. */
    public String hostAddress() {
        return hostAddress;
    }

    /** {@code ip netns exec} execs the command, so the process started is the command itself. */
    @Override
    public List<String> command(List<String> cmd) {
        List<String> wrapped = new ArrayList<>(List.of("ip", "netns", "exec", name));
        wrapped.addAll(cmd);
        return wrapped;
    }

    /** Every packet either way is dropped; established connections see silence, not a reset. */
    public void partition() {
        netem(100, Duration.ZERO, Duration.ZERO);
    }

    /** Ends a {@link #partition()} or {@link #netem}: packets flow as before. */
    public void heal() {
        clear();
    }

    /**
     * Loss (percent) and delay with jitter on both ends of the link, so each direction gets them once:
     * a round trip takes twice {@code delay}.
     */
    public void netem(double lossPercent, Duration delay, Duration jitter) {
        List<String> args = new ArrayList<>(List.of("root", "netem"));
        if (lossPercent > 0) {
            args.addAll(List.of("loss", String.format(Locale.ROOT, "%.3f%%", lossPercent)));
        }
        if (!delay.isZero()) {
            args.addAll(List.of("delay", delay.toMillis() + "ms"));
            if (!jitter.isZero()) {
                args.add(jitter.toMillis() + "ms");
            }
        }
        tc(false, "replace", args);
        tc(true, "replace", args);
    }

    /** Removes any netem from both ends. */
    public void clear() {
        // Deleting an absent root qdisc fails; that is the state wanted.
        HostCommand.exec("tc", "qdisc", "del", "dev", hostLink, "root");
        HostCommand.exec("tc", "-n", name, "qdisc", "del", "dev", nsLink, "root");
    }

    /** The link goes down on this side: the route to the server disappears and sends fail at once. */
    public void linkDown() {
        HostCommand.run("ip", "link", "set", hostLink, "down");
    }

    public void linkUp() {
        HostCommand.run("ip", "link", "set", hostLink, "up");
    }

    /** What {@code tc} has on both ends (for assertion messages and the test bed's own test). */
    public String qdiscs() {
        return HostCommand.run("tc", "qdisc", "show", "dev", hostLink)
                + HostCommand.run("tc", "-n", name, "qdisc", "show", "dev", nsLink);
    }

    /** Deletes the namespace (killing nothing: stop its servers first) and both ends of the veth pair. */
    @Override
    public void close() {
        removeLeftovers();
    }

    private void removeLeftovers() {
        HostCommand.exec("ip", "link", "del", hostLink);
        HostCommand.exec("ip", "netns", "del", name);
    }

    private void tc(boolean inside, String verb, List<String> args) {
        List<String> cmd = new ArrayList<>(inside ? List.of("tc", "-n", name) : List.of("tc"));
        cmd.addAll(List.of("qdisc", verb, "dev", inside ? nsLink : hostLink));
        cmd.addAll(args);
        HostCommand.Result r = HostCommand.exec(cmd);
        if (r.exit() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " exited " + r.exit() + ": " + r.output().strip()
                    + " (is sch_netem loaded?)");
        }
    }

    @Override
    public String toString() {
        return "namespace " + name + " (" + address + ")";
    }
}
