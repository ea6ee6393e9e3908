// server.cpp — built-in workload 1 of scripts/ab: a server with long-lived sessions among short-lived
// message buffers.
//
// Fragmentation it provokes: while connections are accepted, each session object (and its name) is
// allocated between message buffers of similar sizes that die soon after, so the sessions end up
// scattered over many pages of the same size classes. Then 90% of the connections close: every page
// keeps a few live sessions and cannot be given back. Finally new traffic arrives in other sizes
// (1.5-6 KiB records and 24-40 byte tokens) that cannot reuse the holes of the session size classes, so
// an allocator that does not return or reuse those sparse pages holds both the old and the new memory.
#include <vector>

#include "common.h"

namespace {

struct Session {
  void* object;  // the session state, 256-768 bytes
  void* name;    // its peer name, 32-96 bytes
  size_t object_size;
};

}  // namespace

int main(int argc, char** argv) {
  const double s = ab::scale(argc, argv);
  const size_t connections = size_t(300000 * s);
  const size_t window = 20000;  // message buffers in flight
  ab::Rng rng(1);

  // Accept phase: sessions interleaved with messages that live for `window` allocations.
  std::vector<Session> sessions;
  sessions.reserve(connections);
  std::vector<void*> inflight(window, nullptr);
  size_t slot = 0;
  auto message = [&](size_t lo, size_t hi) {
    std::free(inflight[slot]);
    inflight[slot] = ab::take(rng.range(lo, hi), 0x4d);
    slot = (slot + 1) % window;
  };
  for (size_t i = 0; i < connections; ++i) {
    size_t n = rng.range(256, 768);
    sessions.push_back({ab::take(n, 0x53), ab::take(rng.range(32, 96), 0x4e), n});
    for (int m = 0, k = int(rng.range(2, 6)); m < k; ++m) message(64, 1024);
  }
  // Steady traffic on the open sessions.
  for (size_t r = 0; r < connections * 4; ++r) {
    Session& ses = sessions[rng.next() % sessions.size()];
    static_cast<unsigned char*>(ses.object)[rng.next() % ses.object_size] ^= 1;
    message(64, 1024);
  }
  // Most connections close: 90% of the sessions die, leaving survivors on almost every page.
  size_t open = 0;
  for (Session& ses : sessions) {
    if (rng.chance(90)) {
      std::free(ses.object);
      std::free(ses.name);
      ses = {nullptr, nullptr, 0};
    } else {
      sessions[open++] = ses;
    }
  }
  sessions.resize(open);
  for (void*& p : inflight) {
    std::free(p);
    p = nullptr;
  }
  // New traffic of other sizes: large records with small tokens, a rolling window of each.
  std::vector<void*> records(30000, nullptr), tokens(200000, nullptr);
  for (size_t r = 0; r < connections * 2; ++r) {
    void*& rec = records[rng.next() % records.size()];
    std::free(rec);
    rec = ab::take(rng.range(1536, 6144), 0x52);
    void*& tok = tokens[rng.next() % tokens.size()];
    std::free(tok);
    tok = ab::take(rng.range(24, 40), 0x54);
  }
  std::printf("server: %zu sessions open, %zu records, %zu tokens\n", sessions.size(), records.size(),
              tokens.size());
  ab::quiet();
  return 0;
}
