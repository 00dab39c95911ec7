package io.nbdgate.gateway.testsupport;

import java.util.ArrayList;
import java.util.List;

/**
 * The established TCP connections from this namespace to a server, and {@code ss -K} to reset one of them:
 * the kernel aborts that socket (the client sees ECONNABORTED) and sends the server a RST. Needs the
 * inet_diag and tcp_diag modules with CONFIG_INET_DIAG_DESTROY (the guest has them).
 */
public final class TcpConnections {
    private TcpConnections() {
    }

    /** Local ports of the established connections to {@code serverAddress:serverPort}, as ss lists them. */
    public static List<Integer> clientPorts(String serverAddress, int serverPort) {
        String out = HostCommand.run("ss", "-tnH", "state", "established", "dst", serverAddress + ":" + serverPort);
        List<Integer> ports = new ArrayList<>();
        for (String line : out.lines().toList()) {
            // Recv-Q Send-Q Local:Port Peer:Port (one state asked for, so no state column)
            String[] f = line.trim().split("\\s+");
            if (f.length >= 4) {
                String local = f[2];
                ports.add(Integer.parseInt(local.substring(local.lastIndexOf(':') + 1)));
            }
        }
        return ports;
    }

    /** Resets the one connection from local port {@code clientPort} to the server; fails unless ss killed exactly it. */
    public static void reset(String serverAddress, int serverPort, int clientPort) {
        String out = HostCommand.run("ss", "-K", "-tnH", "dst", serverAddress + ":" + serverPort,
                "sport", "=", ":" + clientPort);
        long killed = out.lines().filter(l -> !l.isBlank()).count();
        if (killed != 1) {
            throw new IllegalStateException("ss -K reset " + killed + " sockets, wanted the one from port " + clientPort
                    + " (are tcp_diag and INET_DIAG_DESTROY there?): " + out);
        }
    }
}
