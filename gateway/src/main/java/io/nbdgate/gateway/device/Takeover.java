package io.nbdgate.gateway.device;

import io.nbdgate.gateway.link.NbdConnectionException;
import io.nbdgate.protocol.ExportInfo;
import io.nbdgate.ublk.BufferMode;
import io.nbdgate.ublk.ControlDevice;
import io.nbdgate.ublk.DeviceInfo;
import io.nbdgate.ublk.DeviceParams;
import io.nbdgate.ublk.UblkAbi;
import io.nbdgate.uring.Errno;
import io.nbdgate.uring.UringException;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finding a device that a dead process left behind (an orphan) and deciding whether a new process may take it
 * over. The device was created recoverable, so the kernel holds its I/O and keeps /dev/ublkbN (and whatever is
 * mounted on it) until a server takes over or the device is deleted.
 */
final class Takeover {
    private static final Logger LOG = LoggerFactory.getLogger(Takeover.class);

    private Takeover() {
    }

    /** A device to take over: its record, and what the kernel says of it. */
    record Orphan(DeviceRecord record, DeviceInfo info, DeviceParams params) {
        BufferMode mode() {
            return BufferMode.of(info);
        }
    }

    /**
     * The orphan named {@code name}, if there is one to take over. A record whose device is gone, or a device
     * that cannot be recovered (never started, or not recoverable), is cleaned away and yields none. Refuses,
     * with one line, a device that a live process serves or that serves another export.
     */
    static Optional<Orphan> find(DeviceRecords records, ControlDevice control, String name, String export)
            throws NbdConnectionException {
        Optional<DeviceRecord> found = records.read(name);
        if (found.isEmpty()) {
            return Optional.empty();
        }
        DeviceRecord r = found.get();
        if (r.owner().alive()) {
            throw new NbdConnectionException("'" + name + "' (" + r.blockDevice() + ") is served by pid "
                    + r.owner().pid() + "; detach it there first");
        }
        DeviceInfo info;
        try {
            info = control.deviceInfo(r.devId());
        } catch (UringException e) {
            if (e.errno() != Errno.ENODEV && e.errno() != Errno.ENOENT) {
                throw new NbdConnectionException("'" + name + "': reading ublk device " + r.devId() + ": " + e.getMessage());
            }
            LOG.info("{}: {} of the state record is gone; attaching afresh", name, r.blockDevice());
            records.delete(name, r.devId());
            return Optional.empty();
        }
        if (!info.has(UblkAbi.F_USER_RECOVERY) || info.state() == UblkAbi.S_DEV_DEAD) {
            LOG.info("{}: {} left by pid {} cannot be taken over ({}{}); deleting it", name, r.blockDevice(),
                    r.owner().pid(), info.stateName(), info.has(UblkAbi.F_USER_RECOVERY) ? "" : ", not recoverable");
            delete(control, r.devId());
            records.delete(name, r.devId());
            return Optional.empty();
        }
        if (info.ublksrvPid() > 0 && info.ublksrvPid() != r.owner().pid()
                && ProcessIdentity.startTicks(info.ublksrvPid()) >= 0) {
            throw new NbdConnectionException("'" + name + "' (" + r.blockDevice() + ") is served by pid "
                    + info.ublksrvPid() + ", which is not nbdgate's recorded owner; leaving it alone");
        }
        if (!r.export().equals(export)) {
            throw new NbdConnectionException("'" + name + "' (" + r.blockDevice() + ", left by pid " + r.owner().pid()
                    + ") serves " + r.export() + ", not " + export + "; attach it with that export, or detach it first");
        }
        try {
            return Optional.of(new Orphan(r, info, control.params(r.devId())));
        } catch (UringException e) {
            throw new NbdConnectionException("'" + name + "': reading the parameters of " + r.blockDevice() + ": "
                    + e.getMessage());
        }
    }

    /**
     * Why {@code export}, as served now, cannot take the place of the orphan's old export; null if it can.
     * Everything the kernel already promised the device's users must still hold.
     */
    static String mismatch(Orphan o, ExportInfo export, DeviceParams now) {
        DeviceParams was = o.params();
        if (now.sizeBytes() < was.sizeBytes()) {
            return "the export has " + now.sizeBytes() + " bytes, the device " + was.sizeBytes();
        }
        if (now.logicalBlockSize() != was.logicalBlockSize()) {
            return "the export's block size is " + now.logicalBlockSize() + ", the device's " + was.logicalBlockSize();
        }
        if (now.readOnly() && !was.readOnly()) {
            return "the export is read-only now";
        }
        if (DeviceGeometry.maxIoBytes(export, o.mode()) < o.info().maxIoBufBytes()) {
            return "the server takes requests of at most " + export.maximumPayload() + " bytes, the device sends "
                    + o.info().maxIoBufBytes();
        }
        if (was.maxDiscardSectors() > 0 && now.maxDiscardSectors() == 0) {
            return "the export cannot trim any more";
        }
        if (was.maxWriteZeroesSectors() > 0 && now.maxWriteZeroesSectors() == 0) {
            return "the export cannot write zeroes any more";
        }
        return null;
    }

    /** STOP_DEV and DEL_DEV of a device nobody serves; a failure is logged, the caller goes on. */
    static void delete(ControlDevice control, int devId) {
        try {
            control.stopDevice(devId);
        } catch (UringException e) {
            LOG.debug("ublk device {}: STOP_DEV: {}", devId, e.getMessage());
        }
        try {
            control.deleteDeviceAsync(devId);
        } catch (UringException e) {
            LOG.warn("ublk device {}: DEL_DEV: {}", devId, e.getMessage());
        }
    }
}
