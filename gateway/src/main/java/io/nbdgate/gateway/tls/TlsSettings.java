package io.nbdgate.gateway.tls;

import java.nio.file.Path;
import java.util.Objects;

/**
 * How to authenticate a TLS connection to an NBD server: what an {@code nbds://} URI's userinfo and query say
 * (the NBD URI spec's tls-type, tls-hostname and tls-verify-peer; libnbd's tls-certificates and tls-psk-file),
 * or the same as command-line flags and YAML keys. Every field may be absent (null): {@link #merge} joins two
 * sources and refuses a contradiction, the handshake fills in defaults.
 *
 * @param type         X.509 certificates or a pre-shared key; null: PSK when a PSK file is given, else X.509
 * @param hostname     the name the server's certificate must carry; null: the URI's host
 * @param verifyPeer   check the server's certificate (chain, validity, name); null: yes
 * @param certificates directory with ca-cert.pem (else the system's CAs), client-cert.pem and client-key.pem
 * @param pskFile      file of {@code identity:hexkey} lines (nbdkit's --tls-psk, GnuTLS psktool)
 * @param username     the PSK identity; null: the local user name
 * @param caFile       the CA certificates, instead of the directory's ca-cert.pem (nbd-client's cacertfile)
 * @param certFile     our certificate, instead of the directory's client-cert.pem (nbd-client's certfile)
 * @param keyFile      its key, instead of the directory's client-key.pem (nbd-client's keyfile)
 */
public record TlsSettings(Type type, String hostname, Boolean verifyPeer, Path certificates, Path pskFile,
                          String username, Path caFile, Path certFile, Path keyFile) {

    /** The settings a URI, flags or the directory layout can give: no single files. */
    public TlsSettings(Type type, String hostname, Boolean verifyPeer, Path certificates, Path pskFile,
                       String username) {
        this(type, hostname, verifyPeer, certificates, pskFile, username, null, null, null);
    }

    public enum Type {
        X509("x509"), PSK("psk");

        private final String word;

        Type(String word) {
            this.word = word;
        }

        public String word() {
            return word;
        }

        /** The spec's tls-type value; the message names what is wrong in one line. */
        public static Type parse(String word) throws IllegalArgumentException {
            for (Type t : values()) {
                if (t.word.equalsIgnoreCase(word)) {
                    return t;
                }
            }
            if ("anon".equalsIgnoreCase(word)) {
                throw new IllegalArgumentException("tls-type=anon is not supported: it authenticates neither side;"
                        + " use x509 or psk");
            }
            throw new IllegalArgumentException("unknown tls-type '" + word + "'; use x509 or psk");
        }
    }

    public static final TlsSettings NONE = new TlsSettings(null, null, null, null, null, null);

    /** Nothing set. Field by field: a record's equals is made at run time, a cost to every client command. */
    public boolean isEmpty() {
        return type == null && hostname == null && verifyPeer == null && certificates == null && pskFile == null
                && username == null && caFile == null && certFile == null && keyFile == null;
    }

    /** The type the handshake uses: as given, else PSK when there is a PSK file. */
    public Type effectiveType() {
        return type != null ? type : pskFile != null ? Type.PSK : Type.X509;
    }

    public boolean effectiveVerifyPeer() {
        return verifyPeer == null || verifyPeer;
    }

    /** This, with {@code other}'s values where this has none; the same setting given two ways must agree. */
    public TlsSettings merge(TlsSettings other) throws IllegalArgumentException {
        return new TlsSettings(pick("tls-type", type, other.type), pick("tls-hostname", hostname, other.hostname),
                pick("tls-verify-peer", verifyPeer, other.verifyPeer),
                pick("tls-certificates", certificates, other.certificates), pick("tls-psk-file", pskFile, other.pskFile),
                pick("the TLS user name", username, other.username), pick("tls-ca-certificate", caFile, other.caFile),
                pick("tls-client-certificate", certFile, other.certFile), pick("tls-client-key", keyFile, other.keyFile));
    }

    private static <T> T pick(String what, T a, T b) {
        if (a != null && b != null && !Objects.equals(a, b)) {
            throw new IllegalArgumentException(what + " is given twice, as '" + a + "' and as '" + b + "'");
        }
        return a != null ? a : b;
    }

    /** Settings that only make sense with TLS, named for an error when the URI does not ask for TLS. */
    public String describeGiven() {
        StringBuilder b = new StringBuilder();
        add(b, "tls-type", type == null ? null : type.word());
        add(b, "tls-hostname", hostname);
        add(b, "tls-verify-peer", verifyPeer);
        add(b, "tls-certificates", certificates);
        add(b, "tls-psk-file", pskFile);
        add(b, "user name", username);
        add(b, "tls-ca-certificate", caFile);
        add(b, "tls-client-certificate", certFile);
        add(b, "tls-client-key", keyFile);
        return b.toString();
    }

    private static void add(StringBuilder b, String key, Object value) {
        if (value != null) {
            b.append(b.isEmpty() ? "" : ", ").append(key);
        }
    }
}
