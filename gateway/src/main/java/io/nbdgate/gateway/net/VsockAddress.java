package io.nbdgate.gateway.net;

import java.io.Serial;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.SocketAddress;

/**
 * An AF_VSOCK address (nbd+vsock://CID:PORT): a VM talks to its host (CID 2) or the host to a VM, with no IP
 * network between. The JDK has no such address; the data path's connect and {@link BlockingSocket} encode it.
 */
public final class VsockAddress extends SocketAddress {
    @Serial
    private static final long serialVersionUID = 1L;
    /** VMADDR_CID_LOCAL: this machine (the vsock_loopback transport). */
    public static final int CID_LOCAL = 1;
    /** VMADDR_CID_HOST: the hypervisor's host, seen from a VM. */
    public static final int CID_HOST = 2;
    public static final int AF_VSOCK = 40;

    private final int cid;
    private final int port;

    /** {@code cid} and {@code port} are unsigned 32-bit numbers, as Java ints. */
    public VsockAddress(int cid, int port) {
        this.cid = cid;
        this.port = port;
    }

    public int cid() {
        return cid;
    }

    public int port() {
        return port;
    }

    /** struct sockaddr_vm (family, reserved, port, cid, flags, zero[3]; host byte order); its size is the length. */
    public MemorySegment encode(Arena arena) {
        MemorySegment s = arena.allocate(16);
        s.set(ValueLayout.JAVA_SHORT, 0, (short) AF_VSOCK);
        s.set(ValueLayout.JAVA_INT, 4, port);
        s.set(ValueLayout.JAVA_INT, 8, cid);
        return s;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof VsockAddress v && v.cid == cid && v.port == port;
    }

    @Override
    public int hashCode() {
        return 31 * cid + port;
    }

    @Override
    public String toString() {
        return "vsock:" + Integer.toUnsignedString(cid) + ":" + Integer.toUnsignedString(port);
    }
}
