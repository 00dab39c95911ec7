package io.nbdgate.gateway.control;

import io.netty.channel.Channel;
import io.netty.channel.socket.nio.NioChannelOption;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;
import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.Optional;
import java.util.Set;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;

/**
 * Who may use the control socket: root and the daemon's own user, by construction rather than by umask. The
 * directory must not let anyone else replace the socket, the socket is chmod 0600 right after bind, and every
 * connection's peer credentials (SO_PEERCRED) are checked, which also covers the moment between bind and chmod.
 */
final class ControlSocketAccess {
    static final Set<PosixFilePermission> SOCKET_MODE = PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> DIR_MODE = PosixFilePermissions.fromString("rwxr-xr-x");

    private final UserPrincipal self;
    private final UserPrincipal root;

    private ControlSocketAccess(UserPrincipal self, UserPrincipal root) {
        this.self = self;
        this.root = root;
    }

    /**
     * Creates the run directory (mode 0755, set explicitly) or checks the one that is there: a real directory,
     * owned by root or by us, writable by nobody else. Returns the access rule for sockets made in it.
     */
    static ControlSocketAccess prepare(Path dir) throws IOException {
        var users = FileSystems.getDefault().getUserPrincipalLookupService();
        UserPrincipal root = users.lookupPrincipalByName("0");
        createDirectories(dir);
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(dir + " is not a directory (a symbolic link is not accepted either)");
        }
        // Our own user is whoever owns what we create; a probe file tells without a native call.
        Path probe = Files.createTempFile(dir, ".owner", ".tmp");
        UserPrincipal self;
        try {
            self = Files.getOwner(probe);
        } finally {
            Files.delete(probe);
        }
        UserPrincipal owner = Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS);
        if (!owner.equals(root) && !owner.equals(self)) {
            throw new IOException(dir + " belongs to " + owner.getName() + ", neither root nor " + self.getName());
        }
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        if (mode.contains(PosixFilePermission.GROUP_WRITE) || mode.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new IOException(dir + " is writable by group or others (mode " + PosixFilePermissions.toString(mode)
                    + "); anyone could replace the socket");
        }
        return new ControlSocketAccess(self, root);
    }

    /** Creates {@code dir} and any missing parent with mode 0755, set explicitly rather than left to the umask. */
    static void createDirectories(Path dir) throws IOException {
        Path absolute = dir.toAbsolutePath();
        if (Files.exists(absolute, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        createDirectories(absolute.getParent());
        try {
            Files.createDirectory(absolute);
        } catch (java.nio.file.FileAlreadyExistsException e) {
            return; // made by someone else meanwhile: prepare() checks what it is
        }
        Files.setPosixFilePermissions(absolute, DIR_MODE);
    }

    /** Sets the socket's mode to 0600 whatever the umask was at bind time. */
    static void restrict(Path socket) throws IOException {
        Files.setPosixFilePermissions(socket, SOCKET_MODE);
    }

    /** Null if the peer may talk to us, else why not (one line, for the log and the client). */
    String refusal(HttpConnection connection) {
        Optional<UnixDomainPrincipal> peer = peer(connection);
        if (peer.isEmpty()) {
            return "cannot read the peer's credentials (SO_PEERCRED); refusing";
        }
        UserPrincipal user = peer.get().user();
        if (user.equals(root) || user.equals(self)) {
            return null;
        }
        return "user " + user.getName() + " may not use the control socket (only root"
                + (self.equals(root) ? "" : " and " + self.getName()) + ")";
    }

    // Vert.x's NIO transport serves unix sockets with Netty's NioDomainSocketChannel, whose config hands
    // NioChannelOption through to the JDK channel: SO_PEERCRED of the accepted java.nio SocketChannel.
    private static Optional<UnixDomainPrincipal> peer(HttpConnection connection) {
        if (!(connection instanceof ConnectionBase base)) {
            return Optional.empty();
        }
        Channel channel = base.channel();
        try {
            return Optional.ofNullable(channel.config().getOption(NioChannelOption.of(ExtendedSocketOptions.SO_PEERCRED)));
        } catch (RuntimeException e) {
            return Optional.empty();
        }
    }
}
