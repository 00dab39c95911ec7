package io.nbdgate.gateway.control;

import io.nbdgate.gateway.config.DeviceConfig;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * What the control socket asks of a daemon, and of nothing else (an attach process has no file to reload and
 * no successor to hand over to).
 *
 * @param reload            reads the file again; one line per outcome
 * @param handover          prepares to leave every device to the next daemon; one line per device, or an
 *                          exception whose message says why not (nothing changed then)
 * @param exitAfterHandover ends the process once the answer to the handover is out
 * @param attach            attaches one more device, not from the file (`nbdgate attach --daemon`); returns its
 *                          /dev/ublkbN, or throws with the one-line reason
 */
public record DaemonHooks(Supplier<List<String>> reload, Supplier<List<String>> handover, Runnable exitAfterHandover,
                          Function<DeviceConfig, String> attach) {
}
