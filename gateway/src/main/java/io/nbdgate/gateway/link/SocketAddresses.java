package io.nbdgate.gateway.link;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import io.nbdgate.gateway.net.VsockAddress;

/**
 * Socket addresses: as struct sockaddr_in / sockaddr_in6 / sockaddr_un / sockaddr_vm for io_uring CONNECT, for
 * messages, and where they are.
 */
public final class SocketAddresses {
    static final int AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10, AF_VSOCK = VsockAddress.AF_VSOCK;
    private static final ValueLayout.OfShort NET_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final int UNIX_PATH_MAX = 108;

    private SocketAddresses() {
    }

    static int family(SocketAddress address) {
        return switch (address) {
            case UnixDomainSocketAddress u -> AF_UNIX;
            case VsockAddress v -> AF_VSOCK;
            case InetSocketAddress i when i.getAddress() instanceof Inet6Address -> AF_INET6;
            case InetSocketAddress i -> AF_INET;
            default -> throw new IllegalArgumentException("unsupported address " + address);
        };
    }

    /** Encodes a resolved address; the segment's size is the socklen to pass. */
    static MemorySegment encode(Arena arena, SocketAddress address) {
        switch (address) {
            case UnixDomainSocketAddress u -> {
                byte[] path = u.getPath().toString().getBytes(StandardCharsets.UTF_8);
                if (path.length >= UNIX_PATH_MAX) {
                    throw new IllegalArgumentException("unix socket path longer than " + (UNIX_PATH_MAX - 1)
                            + " bytes: " + u.getPath());
                }
                MemorySegment s = arena.allocate(2 + UNIX_PATH_MAX);
                s.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
                MemorySegment.copy(path, 0, s, ValueLayout.JAVA_BYTE, 2, path.length);
                return s.asSlice(0, 2 + path.length + 1);
            }
            case InetSocketAddress i -> {
                if (i.isUnresolved()) {
                    throw new IllegalArgumentException("address not resolved: " + i.getHostString());
                }
                if (i.getAddress() instanceof Inet4Address a4) {
                    MemorySegment s = arena.allocate(16);
                    s.set(ValueLayout.JAVA_SHORT, 0, (short) AF_INET);
                    s.set(NET_SHORT, 2, (short) i.getPort());
                    MemorySegment.copy(a4.getAddress(), 0, s, ValueLayout.JAVA_BYTE, 4, 4);
                    return s;
                }
                Inet6Address a6 = (Inet6Address) i.getAddress();
                MemorySegment s = arena.allocate(28);
                s.set(ValueLayout.JAVA_SHORT, 0, (short) AF_INET6);
                s.set(NET_SHORT, 2, (short) i.getPort());
                MemorySegment.copy(a6.getAddress(), 0, s, ValueLayout.JAVA_BYTE, 8, 16);
                s.set(ValueLayout.JAVA_INT, 24, a6.getScopeId());
                return s;
            }
            case VsockAddress v -> {
                return v.encode(arena);
            }
            default -> throw new IllegalArgumentException("unsupported address " + address);
        }
    }

    /** Whether {@code a} is an address of this host (loopback, or one of its interfaces'), so traffic stays local. */
    public static boolean onThisHost(SocketAddress a) {
        if (a instanceof VsockAddress v) {
            return v.cid() == VsockAddress.CID_LOCAL;
        }
        if (!(a instanceof InetSocketAddress i) || i.getAddress() == null) {
            return false;
        }
        InetAddress ip = i.getAddress();
        if (ip.isLoopbackAddress() || ip.isAnyLocalAddress()) {
            return true;
        }
        try {
            return NetworkInterface.getByInetAddress(ip) != null;
        } catch (SocketException e) {
            return false;
        }
    }

    public static String describe(SocketAddress a) {
        return a instanceof UnixDomainSocketAddress u ? "unix:" + u.getPath() : String.valueOf(a);
    }
}
