/**
 * ublk over FFM: UAPI layouts ({@link io.nbdgate.ublk.UblkAbi}), the control device
 * ({@link io.nbdgate.ublk.ControlDevice}: GET_FEATURES, ADD/SET_PARAMS/START/STOP/DEL,
 * GET_DEV_INFO2, GET_PARAMS, START/END_USER_RECOVERY, UPDATE_SIZE, QUIESCE) and the queues.
 *
 * <p>Typical use, off the event loops:
 * <pre>{@code
 * ControlDevice ctl = ControlDevice.open();
 * UblkDevice dev = UblkDevice.create(ctl, DeviceSpec.of(queues, depth), DeviceParams.disk(size, 512 * 1024));
 * dev.start(ioEventLoops, q -> target);      // queue q runs on ioEventLoops.get(q % n)
 * ...                                        // dev.blockDevice() is /dev/ublkbN
 * dev.close();                               // STOP_DEV, queues drain, targets closed, DEL_DEV
 * }</pre>
 * A device created {@link io.nbdgate.ublk.DeviceSpec#withRecovery recoverable} can change queues
 * without losing I/O: {@link io.nbdgate.ublk.UblkDevice#quiesce} holds its I/O in the kernel and
 * {@link io.nbdgate.ublk.UblkDevice#resume} takes it over with fresh queues.
 * A {@link io.nbdgate.ublk.Target} serves {@link io.nbdgate.ublk.IoRequest}s on the queue's
 * loop thread. The buffer mode is negotiated at create time and logged
 * ({@link io.nbdgate.ublk.BufferMode}); in zero-copy mode the request's pages are the fixed
 * buffer {@link io.nbdgate.ublk.IoRequest#bufferIndex()} on the loop's own ring.
 */
package io.nbdgate.ublk;
