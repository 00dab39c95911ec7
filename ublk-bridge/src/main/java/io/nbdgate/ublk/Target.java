package io.nbdgate.ublk;

/**
 * A backend that serves block requests, one small class per kind (memory, file, NBD...). Every
 * call runs on the queue's event-loop thread; never block there. A request is finished with
 * {@link IoRequest#complete(int)} exactly once, now or from {@link #onIo}.
 */
public interface Target extends AutoCloseable {
    /** Start serving {@code req}: READ, WRITE, FLUSH, DISCARD or WRITE_ZEROES (see {@link IoRequest#op()}). */
    void serve(IoRequest req);

    /** An io_uring operation submitted through {@link IoRequest#submit} finished with {@code res}. */
    void onIo(IoRequest req, int res);

    /** Called once by the device after its queues drained; must tolerate being called again. */
    @Override
    default void close() {
    }
}
