package io.nbdgate.gateway.testsupport;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A strict reader of the Prometheus text exposition format 0.0.4: every line is a HELP, a TYPE or a sample
 * {@code name{label="value",...} value}; each family's HELP and TYPE come once, before its samples, which are
 * contiguous and named after it (with _bucket/_count/_sum for histograms); a histogram's buckets are cumulative
 * and end at +Inf, which equals its _count. Anything else throws, naming the line.
 */
public final class PrometheusText {
    private static final Pattern NAME = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");
    private static final Pattern HELP = Pattern.compile("# HELP (" + NAME + ") (.*)");
    private static final Pattern TYPE = Pattern.compile("# TYPE (" + NAME + ") (counter|gauge|histogram|summary|untyped)");
    private static final Pattern SAMPLE = Pattern.compile("(" + NAME + ")(?:\\{(.*)})? (\\S+)(?: -?\\d+)?");
    private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\\\n]|\\\\[\\\\\"n])*)\",?");

    public record Sample(String name, Map<String, String> labels, double value) {
    }

    public final Map<String, String> types = new LinkedHashMap<>();
    public final Map<String, String> help = new LinkedHashMap<>();
    public final List<Sample> samples = new ArrayList<>();

    private PrometheusText() {
    }

    public static PrometheusText parse(String text) {
        PrometheusText p = new PrometheusText();
        Set<String> finished = new HashSet<>();
        String current = null;
        int n = 0;
        for (String line : text.split("\n", -1)) {
            n++;
            if (line.isEmpty()) {
                if (n != text.split("\n", -1).length) {
                    throw new IllegalArgumentException("line " + n + ": empty line inside the text");
                }
                continue;
            }
            Matcher m;
            String family;
            if ((m = HELP.matcher(line)).matches()) {
                family = m.group(1);
                if (p.help.put(family, m.group(2)) != null) {
                    throw new IllegalArgumentException("line " + n + ": second HELP for " + family);
                }
            } else if ((m = TYPE.matcher(line)).matches()) {
                family = m.group(1);
                if (p.types.put(family, m.group(2)) != null) {
                    throw new IllegalArgumentException("line " + n + ": second TYPE for " + family);
                }
            } else if (line.startsWith("#")) {
                continue; // a comment
            } else if ((m = SAMPLE.matcher(line)).matches()) {
                family = p.familyOf(m.group(1), n);
                p.samples.add(new Sample(m.group(1), labels(m.group(2), n), value(m.group(3), n)));
            } else {
                throw new IllegalArgumentException("line " + n + ": not HELP, TYPE or a sample: " + line);
            }
            if (!family.equals(current)) {
                if (!finished.add(family)) {
                    throw new IllegalArgumentException("line " + n + ": samples of " + family + " are not together");
                }
                current = family;
            }
        }
        p.checkHistograms();
        return p;
    }

    private String familyOf(String sample, int line) {
        if (types.containsKey(sample)) {
            return sample;
        }
        for (String suffix : List.of("_bucket", "_count", "_sum")) {
            String base = sample.endsWith(suffix) ? sample.substring(0, sample.length() - suffix.length()) : null;
            if (base != null && List.of("histogram", "summary").contains(types.get(base))) {
                return base;
            }
        }
        throw new IllegalArgumentException("line " + line + ": sample " + sample + " has no TYPE before it");
    }

    private static Map<String, String> labels(String text, int line) {
        Map<String, String> labels = new LinkedHashMap<>();
        if (text == null) {
            return labels;
        }
        Matcher m = LABEL.matcher(text);
        int at = 0;
        while (at < text.length()) {
            if (!m.find(at) || m.start() != at) {
                throw new IllegalArgumentException("line " + line + ": bad labels {" + text + "}");
            }
            if (labels.put(m.group(1), m.group(2)) != null) {
                throw new IllegalArgumentException("line " + line + ": label " + m.group(1) + " twice");
            }
            at = m.end();
        }
        return labels;
    }

    private static double value(String v, int line) {
        return switch (v) {
            case "+Inf" -> Double.POSITIVE_INFINITY;
            case "-Inf" -> Double.NEGATIVE_INFINITY;
            case "NaN" -> Double.NaN;
            default -> {
                try {
                    yield Double.parseDouble(v);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("line " + line + ": value " + v + " is no number");
                }
            }
        };
    }

    private void checkHistograms() {
        types.forEach((family, type) -> {
            if (!type.equals("histogram")) {
                return;
            }
            Map<Map<String, String>, List<Sample>> buckets = new LinkedHashMap<>();
            for (Sample s : samples) {
                if (s.name().equals(family + "_bucket")) {
                    Map<String, String> series = new LinkedHashMap<>(s.labels());
                    series.remove("le");
                    buckets.computeIfAbsent(series, k -> new ArrayList<>()).add(s);
                }
            }
            buckets.forEach((series, bs) -> {
                double last = -1;
                double lastCount = 0;
                for (Sample b : bs) {
                    double le = value(b.labels().get("le"), 0);
                    if (le <= last || b.value() < lastCount) {
                        throw new IllegalArgumentException(family + series + ": buckets not cumulative at le=" + le);
                    }
                    last = le;
                    lastCount = b.value();
                }
                if (last != Double.POSITIVE_INFINITY) {
                    throw new IllegalArgumentException(family + series + ": no +Inf bucket");
                }
                if (lastCount != value(family + "_count", series)) {
                    throw new IllegalArgumentException(family + series + ": +Inf bucket is not _count");
                }
            });
        });
    }

    /** The value of the one sample named {@code name} with exactly these labels; throws if there is none. */
    public double value(String name, Map<String, String> labels) {
        return samples.stream().filter(s -> s.name().equals(name) && s.labels().equals(labels)).findFirst()
                .orElseThrow(() -> new AssertionError("no sample " + name + labels)).value();
    }

    /** The value of the sample named {@code name} with labels given as key, value, key, value... */
    public double value(String name, String... labels) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < labels.length; i += 2) {
            m.put(labels[i], labels[i + 1]);
        }
        return value(name, m);
    }

    /** Whether some sample's name starts with {@code prefix}. */
    public boolean has(String prefix) {
        return samples.stream().anyMatch(s -> s.name().startsWith(prefix));
    }
}
