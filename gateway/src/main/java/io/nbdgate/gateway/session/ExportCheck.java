package io.nbdgate.gateway.session;

import io.nbdgate.protocol.ExportInfo;

/**
 * Whether a reconnected export can carry on for the device made from the first one: the device's size,
 * block sizes, read-only flag and the commands its requests use were settled at attach time.
 */
final class ExportCheck {
    private ExportCheck() {
    }

    /** Null if {@code now} can serve what {@code was} did; else the reason in one line. */
    static String incompatibility(ExportInfo was, ExportInfo now) {
        if (now.size() < was.size()) {
            return "the export's size shrank from " + was.size() + " to " + now.size() + " bytes";
        }
        if (now.readOnly() != was.readOnly()) {
            return "the export is " + (now.readOnly() ? "read-only" : "writable") + " now";
        }
        if (now.minimumBlock() != was.minimumBlock() || now.preferredBlock() != was.preferredBlock()
                || now.maximumPayload() < was.maximumPayload()) {
            return "the export's block sizes changed from " + blocks(was) + " to " + blocks(now);
        }
        String lost = lostCommand(was.canFlush() && !now.canFlush(), "FLUSH")
                + lostCommand(was.canFua() && !now.canFua(), "FUA")
                + lostCommand(was.canTrim() && !now.canTrim(), "TRIM")
                + lostCommand(was.canWriteZeroes() && !now.canWriteZeroes(), "WRITE_ZEROES");
        return lost.isEmpty() ? null : "the server no longer supports" + lost;
    }

    private static String lostCommand(boolean lost, String name) {
        return lost ? " " + name : "";
    }

    private static String blocks(ExportInfo e) {
        return e.minimumBlock() + "/" + e.preferredBlock() + "/" + e.maximumPayload();
    }
}
