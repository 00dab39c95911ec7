package io.nbdgate.gateway.testsupport;

import java.util.List;

/** Where a test's NBD server runs: loopback of this network namespace, or a {@link NetNamespace} of its own. */
public interface ServerHost {
    /** This host's loopback: no network in between. */
    ServerHost LOOPBACK = new ServerHost() {
        @Override
        public String address() {
            return "127.0.0.1";
        }

        @Override
        public List<String> command(List<String> cmd) {
            return cmd;
        }

        @Override
        public String toString() {
            return "loopback";
        }
    };

    /** The IPv4 address the server binds and clients dial. */
    String address();

    /** {@code cmd} wrapped to run there; the wrapper must exec it, so the process is the server itself. */
    List<String> command(List<String> cmd);
}
