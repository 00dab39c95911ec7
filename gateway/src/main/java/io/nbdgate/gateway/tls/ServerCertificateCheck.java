package io.nbdgate.gateway.tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.security.GeneralSecurityException;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import javax.security.auth.x500.X500Principal;

/**
 * Whether the server's certificate chain deserves trust: PKIX validation against the configured CAs (the JDK's
 * validator: signatures, validity dates, CA constraints), the serverAuth purpose, and the host name against the
 * subject alternative names (RFC 6125: DNS names with a left-most wildcard, IP addresses; the common name only
 * when there are no DNS names). Each refusal is one line that says what to fix.
 */
final class ServerCertificateCheck {
    private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

    private ServerCertificateCheck() {
    }

    static void check(List<byte[]> chainDer, ClientCredentials.X509 trust) {
        if (chainDer.isEmpty()) {
            throw new TlsException("the server sent no certificate");
        }
        List<X509Certificate> chain = new ArrayList<>();
        try {
            CertificateFactory f = CertificateFactory.getInstance("X.509");
            for (byte[] der : chainDer) {
                chain.add((X509Certificate) f.generateCertificate(new ByteArrayInputStream(der)));
            }
        } catch (GeneralSecurityException e) {
            throw new TlsException("the server's certificate cannot be parsed: " + e.getMessage(), e);
        }
        X509Certificate leaf = chain.getFirst();
        validate(chain, trust);
        purpose(leaf);
        name(leaf, trust.hostname());
    }

    private static void validate(List<X509Certificate> chain, ClientCredentials.X509 trust) {
        Set<TrustAnchor> anchors = trust.trusted().stream().map(c -> new TrustAnchor(c, null))
                .collect(Collectors.toSet());
        // A chain that includes its root: the root is the anchor, not a member of the path.
        List<X509Certificate> path = new ArrayList<>(chain);
        path.removeIf(c -> trust.trusted().contains(c));
        try {
            PKIXParameters params = new PKIXParameters(anchors);
            params.setRevocationEnabled(false);
            if (!path.isEmpty()) {
                CertPathValidator.getInstance("PKIX")
                        .validate(CertificateFactory.getInstance("X.509").generateCertPath(path), params);
            }
        } catch (CertPathValidatorException e) {
            X509Certificate bad = e.getIndex() >= 0 && e.getIndex() < path.size() ? path.get(e.getIndex()) : path.getFirst();
            String who = subject(bad.getSubjectX500Principal());
            if (e.getReason() == CertPathValidatorException.BasicReason.EXPIRED) {
                throw new TlsException("the server's certificate (" + who + ") expired on "
                        + bad.getNotAfter().toInstant().atOffset(ZoneOffset.UTC).toLocalDate());
            }
            if (e.getReason() == CertPathValidatorException.BasicReason.NOT_YET_VALID) {
                throw new TlsException("the server's certificate (" + who + ") is not valid before "
                        + bad.getNotBefore().toInstant().atOffset(ZoneOffset.UTC).toLocalDate()
                        + " (is this machine's clock right?)");
            }
            if (e.getReason() == java.security.cert.PKIXReason.NO_TRUST_ANCHOR) {
                throw new TlsException("the server's certificate (" + who + ", issued by "
                        + subject(chain.getLast().getIssuerX500Principal()) + ") is not signed by a CA in "
                        + trust.trustedFrom());
            }
            throw new TlsException("the server's certificate (" + who + ") is not valid: " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new TlsException("cannot check the server's certificate: " + e.getMessage(), e);
        }
    }

    private static void purpose(X509Certificate leaf) {
        try {
            List<String> eku = leaf.getExtendedKeyUsage();
            if (eku != null && !eku.contains(SERVER_AUTH) && !eku.contains("2.5.29.37.0")) {
                throw new TlsException("the server's certificate (" + subject(leaf.getSubjectX500Principal())
                        + ") is not meant for TLS servers (no serverAuth in its extended key usage)");
            }
        } catch (CertificateParsingException e) {
            throw new TlsException("the server's certificate has a broken extended key usage: " + e.getMessage(), e);
        }
    }

    private static void name(X509Certificate leaf, String hostname) {
        List<String> dns = new ArrayList<>();
        List<String> ips = new ArrayList<>();
        try {
            Collection<List<?>> alt = leaf.getSubjectAlternativeNames();
            if (alt != null) {
                for (List<?> entry : alt) {
                    int kind = (Integer) entry.get(0);
                    if (kind == 2) {
                        dns.add(((String) entry.get(1)).toLowerCase(Locale.ROOT));
                    } else if (kind == 7) {
                        ips.add((String) entry.get(1));
                    }
                }
            }
        } catch (CertificateParsingException e) {
            throw new TlsException("the server's certificate has broken alternative names: " + e.getMessage(), e);
        }
        if (isIpLiteral(hostname)) {
            for (String ip : ips) {
                if (sameAddress(ip, hostname)) {
                    return;
                }
            }
        } else {
            if (dns.isEmpty()) {
                String cn = commonName(leaf.getSubjectX500Principal());
                if (cn != null) {
                    dns.add(cn.toLowerCase(Locale.ROOT));
                }
            }
            String host = hostname.toLowerCase(Locale.ROOT);
            for (String pattern : dns) {
                if (matches(pattern, host)) {
                    return;
                }
            }
        }
        List<String> names = new ArrayList<>(dns);
        names.addAll(ips);
        throw new TlsException("the server's certificate is for " + (names.isEmpty() ? "no host name" : String.join(", ", names))
                + ", not " + hostname + " (connect by one of those names, or give tls-hostname)");
    }

    /** RFC 6125 6.4.3: a wildcard only as the whole left-most label, matching exactly one label. */
    static boolean matches(String pattern, String host) {
        if (pattern.startsWith("*.")) {
            int dot = host.indexOf('.');
            return dot > 0 && host.substring(dot + 1).equals(pattern.substring(2)) && pattern.indexOf('.', 2) > 0;
        }
        return pattern.equals(host);
    }

    private static boolean isIpLiteral(String host) {
        return host.indexOf(':') >= 0 || host.chars().allMatch(c -> c == '.' || Character.isDigit(c));
    }

    private static boolean sameAddress(String a, String b) {
        try {
            return InetAddress.getByName(a).equals(InetAddress.getByName(b)); // literals only: no lookup
        } catch (UnknownHostException e) {
            return false;
        }
    }

    private static String commonName(X500Principal p) {
        for (String part : p.getName(X500Principal.RFC2253).split(",")) {
            if (part.startsWith("CN=")) {
                return part.substring(3);
            }
        }
        return null;
    }

    private static String subject(X500Principal p) {
        String cn = commonName(p);
        return cn != null ? "CN=" + cn : p.getName();
    }

    /** The subject of the first certificate, for logs and status ("CN=..."), or null. */
    static String subjectOf(org.bouncycastle.tls.Certificate certificate) {
        try {
            List<byte[]> der = encoded(certificate);
            if (der.isEmpty()) {
                return null;
            }
            X509Certificate leaf = (X509Certificate) CertificateFactory.getInstance("X.509")
                    .generateCertificate(new ByteArrayInputStream(der.getFirst()));
            return subject(leaf.getSubjectX500Principal());
        } catch (IOException | GeneralSecurityException e) {
            return null;
        }
    }

    static List<byte[]> encoded(org.bouncycastle.tls.Certificate certificate) throws IOException {
        List<byte[]> der = new ArrayList<>();
        for (var c : certificate.getCertificateList()) {
            der.add(c.getEncoded());
        }
        return der;
    }
}
