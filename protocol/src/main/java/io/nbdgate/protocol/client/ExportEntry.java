package io.nbdgate.protocol.client;

/** One NBD_REP_SERVER reply to NBD_OPT_LIST: an export name and the optional human-readable details. */
public record ExportEntry(String name, String description) {}
