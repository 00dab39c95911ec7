/**
 * The NBD wire protocol (doc/proto.md of NetworkBlockDevice/nbd, with the EXTENDED_HEADERS extension):
 * constants, handshake state machines and the transmission codec. Pure: no sockets, no threads.
 */
package io.nbdgate.protocol;
