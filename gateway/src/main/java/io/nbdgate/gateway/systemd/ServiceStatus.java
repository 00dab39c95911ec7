package io.nbdgate.gateway.systemd;

import java.util.List;

/** The STATUS= line `systemctl status` shows: how many devices are live, then each one's state. */
public final class ServiceStatus {
    /** One device as the status line names it; {@code device} is null when it never attached. */
    public record Device(String name, String device, String state) {
    }

    private ServiceStatus() {
    }

    public static String line(List<Device> devices) {
        long live = devices.stream().filter(d -> d.state().equals("live")).count();
        StringBuilder b = new StringBuilder().append(live).append(" of ").append(devices.size())
                .append(devices.size() == 1 ? " device live" : " devices live");
        String sep = ": ";
        for (Device d : devices) {
            b.append(sep).append(d.name()).append(' ');
            if (d.device() != null) {
                b.append(d.device()).append(' ');
            }
            b.append(d.state());
            sep = ", ";
        }
        return b.toString();
    }
}
