package io.nbdgate.gateway.cli;

import io.nbdgate.gateway.nbd.client.InvalidNbdUriException;
import io.nbdgate.gateway.nbd.client.NbdUri;
import picocli.CommandLine;

/** picocli converter: a bad NBD URI becomes a usage error (one line, exit 2). */
final class NbdUriConverter implements CommandLine.ITypeConverter<NbdUri> {
    @Override
    public NbdUri convert(String value) {
        try {
            return NbdUri.parse(value);
        } catch (InvalidNbdUriException e) {
            throw new CommandLine.TypeConversionException(e.getMessage());
        }
    }
}
