package io.nbdgate.gateway.link;

import io.nbdgate.protocol.Command;
import io.nbdgate.protocol.wire.SentRequest;

/**
 * One block request of a queue: what it asks (command, range, flags), where its data lives, and where it is
 * on its way. One instance per tag, owned by the queue's session and reused; it outlives any one link, so a
 * request that a lost link never answered is sent again as it is. Loop thread only.
 *
 * <p>A request is done when the reply is in and the kernel has let go of its pages: its header and payload
 * sends completed, and every SEND_ZC notification arrived ({@link #pendingOps}).
 */
public final class Request implements SentRequest {
    /** Where the request is: with the session or on a link. */
    public enum Phase { FREE, WAITING, ON_LINK }

    private final int tag;
    private final RequestBuffer buffer = new RequestBuffer();
    private Command command;
    private int flags;
    private long offset;
    private long length;
    Phase phase = Phase.FREE;
    /** Submission order across links: resends go out in it. */
    long seq;
    long startNanos;
    int result;

    // Per link: reset each time the request is handed to one.
    long cookie;
    int headerPos;
    int headerLen;
    /** Sends of its header or payload, and SEND_ZC notifications, still to come back. */
    int pendingOps;
    boolean replied;
    /** A READ whose data must be received straight into its buffer (too large to stage, or not copyable). */
    boolean directRead;

    public Request(int tag) {
        this.tag = tag;
    }

    /** Fills in a new request; {@link #buffer()} is set by the caller. */
    public Request load(Command command, int flags, long offset, long length) {
        this.command = command;
        this.flags = flags;
        this.offset = offset;
        this.length = length;
        return this;
    }

    public int tag() {
        return tag;
    }

    public RequestBuffer buffer() {
        return buffer;
    }

    @Override
    public Command command() {
        return command;
    }

    @Override
    public int flags() {
        return flags;
    }

    @Override
    public long offset() {
        return offset;
    }

    @Override
    public long length() {
        return length;
    }

    public Phase phase() {
        return phase;
    }

    public void phase(Phase p) {
        phase = p;
    }

    public long seq() {
        return seq;
    }

    public void seq(long s) {
        seq = s;
    }

    /** Bytes a successful reply reports, or minus an errno. */
    public int result() {
        return result;
    }

    public void result(int r) {
        result = r;
    }

    /** Payload bytes that go out after the header. */
    long payloadLength() {
        return command == Command.WRITE ? length : 0;
    }

    /** Bytes a successful READ or WRITE reports; 0 for commands without data. */
    int successResult() {
        return command == Command.WRITE || command == Command.READ ? (int) Math.min(Integer.MAX_VALUE, length) : 0;
    }

    /** Clears the per-link state before the request goes out on a link. */
    void resetForLink() {
        cookie = 0;
        headerPos = 0;
        headerLen = 0;
        pendingOps = 0;
        replied = false;
        directRead = false;
    }

    @Override
    public String toString() {
        return command + " tag " + tag + " @" + offset + "+" + length;
    }
}
