package io.nbdgate.ublk;

/** How request data moves between the kernel and the server. */
public enum BufferMode {
    /** AUTO_BUF_REG: the request pages sit in the ring's fixed-buffer table at index = tag; Java never sees them. */
    ZERO_COPY("zero-copy", UblkAbi.F_SUPPORT_ZERO_COPY | UblkAbi.F_AUTO_BUF_REG),
    /** USER_COPY: the server reads/writes request data with pread/pwrite on /dev/ublkcN. */
    USER_COPY("user-copy", UblkAbi.F_USER_COPY),
    /** The kernel copies into/out of a per-tag server buffer whose address travels in the I/O command. */
    COPY("copy", 0);

    private final String label;
    private final long deviceFlags;

    BufferMode(String label, long deviceFlags) {
        this.label = label;
        this.deviceFlags = deviceFlags;
    }

    public String label() {
        return label;
    }

    /** UBLK_F_* flags ADD_DEV needs for this mode. */
    public long deviceFlags() {
        return deviceFlags;
    }

    public static BufferMode of(String label) {
        for (BufferMode m : values()) {
            if (m.label.equals(label)) {
                return m;
            }
        }
        throw new IllegalArgumentException("unknown buffer mode " + label + " (zero-copy, user-copy, copy)");
    }

    /** The buffer mode a device was created with, from its flags. */
    public static BufferMode of(DeviceInfo info) {
        return info.has(UblkAbi.F_AUTO_BUF_REG) ? ZERO_COPY : info.has(UblkAbi.F_USER_COPY) ? USER_COPY : COPY;
    }
}
