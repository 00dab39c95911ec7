package io.nbdgate.gateway.session;

import io.nbdgate.gateway.link.Request;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A queue's requests while it has no link, kept in the order they were first submitted: requests a lost link
 * left unanswered go out again before newer ones, so a FLUSH still follows the writes it covers. Loop thread only.
 */
final class WaitingRequests {
    private final List<Request> list = new ArrayList<>();

    void add(Request r) {
        r.phase(Request.Phase.WAITING);
        list.add(r);
    }

    /** Requests a link gave back unanswered (in their phase WAITING), merged by submission order. */
    void addUnanswered(List<Request> unanswered) {
        list.addAll(unanswered);
        list.sort(Comparator.comparingLong(Request::seq));
    }

    int size() {
        return list.size();
    }

    /** All of them, oldest first; none wait any more. */
    List<Request> takeAll() {
        List<Request> all = new ArrayList<>(list);
        list.clear();
        return all;
    }
}
