package io.nbdgate.gateway.config;

import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a reload changes: the devices of the file against the ones the daemon serves from it, by name. A device
 * in both with other settings is changed; those are reported, not applied, since every setting of a live device
 * is fixed at attach time.
 *
 * @param added   in the file, not served (also one that failed to attach before)
 * @param removed served, no longer in the file
 * @param changed in both with other settings: the device's name, then the YAML names of what differs
 */
public record ConfigChanges(List<DeviceConfig> added, List<String> removed, Map<String, List<String>> changed) {

    public static ConfigChanges between(Map<String, DeviceConfig> serving, DaemonConfig file) {
        List<DeviceConfig> added = new ArrayList<>();
        Map<String, List<String>> changed = new LinkedHashMap<>();
        List<String> inFile = new ArrayList<>();
        for (DeviceConfig d : file.devices()) {
            inFile.add(d.name());
            DeviceConfig now = serving.get(d.name());
            if (now == null) {
                added.add(d);
            } else if (!now.equals(d)) {
                changed.put(d.name(), differences(now, d));
            }
        }
        List<String> removed = serving.keySet().stream().filter(n -> !inFile.contains(n)).sorted().toList();
        return new ConfigChanges(List.copyOf(added), removed, changed);
    }

    public boolean isEmpty() {
        return added.isEmpty() && removed.isEmpty() && changed.isEmpty();
    }

    /** The settings that differ, as the config file spells them (reconnectTimeout: reconnect-timeout). */
    static List<String> differences(DeviceConfig a, DeviceConfig b) {
        List<String> out = new ArrayList<>();
        for (RecordComponent c : DeviceConfig.class.getRecordComponents()) {
            try {
                if (!java.util.Objects.equals(c.getAccessor().invoke(a), c.getAccessor().invoke(b))) {
                    out.add(c.getName().replaceAll("([A-Z])", "-$1").toLowerCase(java.util.Locale.ROOT));
                }
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return out;
    }
}
