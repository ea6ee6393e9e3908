// tiny-objects — building and tearing down many tiny linked objects.
//
// Stresses: the smallest size classes at high rate, and locality of what comes back.
//   --mode tree  binary trees (the benchmarks-game "binary-trees"): C++ new/delete of 16-byte nodes;
//                trees of depth 4, 6, ... `depth` are built and torn down many times while one long-lived
//                tree of full depth stays allocated. Node counts are the self-check.
//   --mode list  linked lists with malloc'd nodes of 24-80 bytes: `lists` lists are grown round-robin
//                (so their nodes interleave in memory), summed by walking them, and freed list by list
//                (so the frees come in a different order from the mallocs). Payload sums are the check.
// --threads N runs N independent copies (weak scaling).
#include <thread>

#include "common.hpp"

namespace {

// ---- trees ----
struct Node {
  Node* left;
  Node* right;
};

Node* build(int depth) {
  Node* n = new Node{nullptr, nullptr};
  if (depth > 0) {
    n->left = build(depth - 1);
    n->right = build(depth - 1);
  }
  return n;
}
long count(const Node* n) { return n ? 1 + count(n->left) + count(n->right) : 0; }
void destroy(Node* n) {
  if (!n) return;
  destroy(n->left);
  destroy(n->right);
  delete n;
}

// Returns the number of nodes allocated (and freed); *ok is cleared when a count is wrong.
double run_trees(int max_depth, long rounds, bool* ok) {
  double nodes = 0;
  Node* longlived = build(max_depth);
  nodes += static_cast<double>((1l << (max_depth + 1)) - 1);
  for (long r = 0; r < rounds; ++r) {
    for (int d = 4; d <= max_depth; d += 2) {
      const long iters = 1l << (max_depth - d + 2);
      const long expect = (1l << (d + 1)) - 1;
      for (long i = 0; i < iters; ++i) {
        Node* t = build(d);
        *ok &= count(t) == expect;
        destroy(t);
      }
      nodes += static_cast<double>(iters) * static_cast<double>(expect);
    }
  }
  *ok &= count(longlived) == (1l << (max_depth + 1)) - 1;
  destroy(longlived);
  return nodes;
}

// ---- lists ----
struct Item {
  Item* next;
  uint64_t value;
  // followed by 8..64 bytes of padding, whose ends are written so the node is really used
  unsigned char* pad() { return reinterpret_cast<unsigned char*>(this + 1); }
};

double run_lists(int id, long rounds, long lists, long per_list, bool* ok) {
  kmb::Rng rng(0x715Bull + static_cast<uint64_t>(id));
  std::vector<Item*> heads(static_cast<size_t>(lists), nullptr);
  std::vector<uint64_t> sums(static_cast<size_t>(lists), 0);
  double nodes = 0;
  for (long r = 0; r < rounds; ++r) {
    for (long k = 0; k < per_list; ++k)
      for (long l = 0; l < lists; ++l) {
        const size_t pad = rng.range(8, 64);
        auto* it = static_cast<Item*>(std::malloc(sizeof(Item) + pad));
        if (!it) std::abort();
        it->value = rng.next() >> 8;
        it->pad()[0] = it->pad()[pad - 1] = static_cast<unsigned char>(it->value);
        it->next = heads[static_cast<size_t>(l)];
        heads[static_cast<size_t>(l)] = it;
        sums[static_cast<size_t>(l)] += it->value;
      }
    for (long l = 0; l < lists; ++l) {
      uint64_t s = 0;
      for (Item* it = heads[static_cast<size_t>(l)]; it;) {
        Item* next = it->next;
        s += it->value;
        *ok &= it->pad()[0] == static_cast<unsigned char>(it->value);
        std::free(it);
        it = next;
      }
      *ok &= s == sums[static_cast<size_t>(l)];
      heads[static_cast<size_t>(l)] = nullptr;
      sums[static_cast<size_t>(l)] = 0;
    }
    nodes += static_cast<double>(lists * per_list);
  }
  return nodes;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"mode", "threads", "depth", "rounds", "lists", "nodes"});
  const std::string mode = args.str("mode", "tree");
  const int threads = static_cast<int>(args.num("threads", 1, 1));
  const int depth = static_cast<int>(args.num("depth", 18, 10));
  const long rounds = args.num("rounds", mode == "tree" ? 1 : 15, 1, true);
  const long lists = args.num("lists", 16, 4);
  const long per_list = args.num("nodes", 16384, 1000);
  if (threads < 1 || depth < 4 || depth > 26 || (mode != "tree" && mode != "list")) return 64;

  std::vector<double> nodes(static_cast<size_t>(threads), 0);
  bool all;
  const double secs = kmb::run_timed(
      threads,
      [&](int t, kmb::StartLine& start) {
        bool good = true;
        start.arrive_and_wait();
        nodes[static_cast<size_t>(t)] =
            mode == "tree" ? run_trees(depth, rounds, &good) : run_lists(t, rounds, lists, per_list, &good);
        return good;
      },
      &all);
  double total = 0;
  for (double n : nodes) total += n;
  return kmb::report(mode == "tree" ? "tree" : "list", threads, 2.0 * total, secs, all);
}
