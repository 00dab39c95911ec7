package io.nbdgate.gateway.device;

import java.time.Instant;
import java.util.Properties;

/**
 * What the state directory keeps of a device while a process serves it: enough for the next process to find it
 * in the kernel by name, tell whether its owner is gone, and check that it is asked to serve the same export.
 *
 * @param name     the device's name
 * @param devId    ublk device number (/dev/ublkbN)
 * @param export   the export it serves, as {@link NbdDevice#describe} says it
 * @param owner    the process serving it
 * @param since    when that process took it
 */
public record DeviceRecord(String name, int devId, String export, ProcessIdentity owner, Instant since) {

    public String blockDevice() {
        return "/dev/ublkb" + devId;
    }

    /** /dev/ublkcN: present while the kernel has the device, served or held for a take-over. */
    public String charDevice() {
        return "/dev/ublkc" + devId;
    }

    Properties toProperties() {
        Properties p = new Properties();
        p.setProperty("name", name);
        p.setProperty("device-id", Integer.toString(devId));
        p.setProperty("export", export);
        p.setProperty("owner-pid", Long.toString(owner.pid()));
        p.setProperty("owner-start", Long.toString(owner.startTicks()));
        p.setProperty("since", since.toString());
        return p;
    }

    /** The record in {@code p}; IllegalArgumentException names what is missing or wrong. */
    static DeviceRecord fromProperties(Properties p) {
        try {
            return new DeviceRecord(require(p.getProperty("name"), "name"),
                    Integer.parseInt(require(p.getProperty("device-id"), "device-id")),
                    require(p.getProperty("export"), "export"),
                    new ProcessIdentity(Long.parseLong(require(p.getProperty("owner-pid"), "owner-pid")),
                            Long.parseLong(require(p.getProperty("owner-start"), "owner-start"))),
                    Instant.parse(require(p.getProperty("since"), "since")));
        } catch (NumberFormatException | java.time.format.DateTimeParseException e) {
            throw new IllegalArgumentException(e.getMessage());
        }
    }

    private static <T> T require(T value, String key) {
        if (value == null) {
            throw new IllegalArgumentException("'" + key + "' is missing");
        }
        return value;
    }
}
