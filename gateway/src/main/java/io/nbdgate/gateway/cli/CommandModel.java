package io.nbdgate.gateway.cli;

import java.util.function.Consumer;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.IGetter;
import picocli.CommandLine.Model.ISetter;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

/**
 * Builds the commands' picocli models in code. picocli can read them from annotations, but the JDK makes each
 * annotation type it reads a proxy class generated at run time, which no AOT cache holds: that was most of a
 * client command's time. Each command builds its model in its constructor; an option's value (its default
 * included) goes into the command's field through the setter given here.
 */
final class CommandModel {

    private CommandModel() {
    }

    /** A command run by {@code command.call()} or {@code run()}. */
    static CommandSpec command(Object command, String name, String... description) {
        CommandSpec spec = CommandSpec.wrapWithoutInspection(command);
        spec.name(name);
        spec.usageMessage().description(description);
        spec.versionProvider(VERSION);
        return spec;
    }

    /** A command as nbdgate --help lists it: its name and description, nothing to run. */
    static CommandSpec summary(String name, String... description) {
        CommandSpec spec = CommandSpec.create().name(name);
        spec.usageMessage().description(description);
        return spec;
    }

    /** Adds -h/--help and -V/--version, as every nbdgate command has them: after its own options, for --help. */
    static CommandSpec withStandardHelp(CommandSpec spec) {
        if (!spec.helpCommand()) {
            spec.addOption(OptionSpec.builder("-h", "--help").usageHelp(true)
                    .description("Show this help message and exit.").build());
            spec.addOption(OptionSpec.builder("-V", "--version").versionHelp(true)
                    .description("Print version information and exit.").build());
        }
        return spec;
    }

    /** An option taking a value of this type; its value, or its default, goes to {@code field}. */
    static <T> OptionSpec.Builder option(String name, Class<T> type, Consumer<? super T> field) {
        Binding b = new Binding(field);
        return OptionSpec.builder(name).type(type).getter(b).setter(b);
    }

    /** An option without a value: true when given. */
    static OptionSpec.Builder flag(String name, Consumer<Boolean> field) {
        return option(name, boolean.class, field).arity("0");
    }

    /** A positional parameter, required: an optional one says .arity("0..1").required(false). */
    static <T> PositionalParamSpec.Builder parameter(String index, Class<T> type, Consumer<? super T> field) {
        Binding b = new Binding(field);
        return PositionalParamSpec.builder().index(index).arity("1").required(true).type(type).getter(b).setter(b);
    }

    /**
     * Keeps the value for picocli (a repeated option adds to the list it set before) and hands it to the field.
     * picocli sets each argument's initial value, null when nobody gave one, before parsing: the field then
     * keeps its own.
     */
    private static final class Binding implements IGetter, ISetter {
        private final Consumer<Object> field;
        private Object value;

        @SuppressWarnings("unchecked")
        Binding(Consumer<?> field) {
            this.field = (Consumer<Object>) field;
        }

        @Override
        @SuppressWarnings("unchecked")
        public <T> T get() {
            return (T) value;
        }

        @Override
        public <T> T set(T value) {
            this.value = value;
            if (value != null) {
                field.accept(value);
            }
            return null;
        }
    }

    static final CommandLine.IVersionProvider VERSION = () -> {
        String v = CommandModel.class.getPackage().getImplementationVersion();
        return new String[] {"nbdgate " + (v == null ? "dev" : v)};
    };
}
