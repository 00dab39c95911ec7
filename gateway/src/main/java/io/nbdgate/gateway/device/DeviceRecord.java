package io.nbdgate.gateway.device;

import io.vertx.core.json.JsonObject;
import java.time.Instant;

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

    JsonObject toJson() {
        return new JsonObject().put("name", name).put("device-id", devId).put("export", export)
                .put("owner-pid", owner.pid()).put("owner-start", owner.startTicks()).put("since", since.toString());
    }

    /** The record in {@code json}; IllegalArgumentException names what is missing or wrong. */
    static DeviceRecord fromJson(JsonObject json) {
        try {
            return new DeviceRecord(require(json.getString("name"), "name"), require(json.getInteger("device-id"), "device-id"),
                    require(json.getString("export"), "export"),
                    new ProcessIdentity(require(json.getLong("owner-pid"), "owner-pid"),
                            require(json.getLong("owner-start"), "owner-start")),
                    Instant.parse(require(json.getString("since"), "since")));
        } catch (ClassCastException | java.time.format.DateTimeParseException e) {
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
