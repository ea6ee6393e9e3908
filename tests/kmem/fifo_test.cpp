// The FIFO allocator: exact capacity accounting with 2-byte cookies, wrap-around, errors.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

#include "kmalloc.h"

namespace {

std::vector<unsigned char> bytes(size_t n, unsigned seed) {
  std::vector<unsigned char> v(n);
  for (size_t i = 0; i < n; i++) v[i] = static_cast<unsigned char>(seed * 131 + i * 7);
  return v;
}

TEST(Fifo, PushShiftInOrder) {
  kmfifo* q = kmfifoi(1024, 0);
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(kmfifopush(q, "1000", 4), 0);
  ASSERT_EQ(kmfifopush(q, "hello world", 11), 0);
  char buf[64];
  size_t n = 0;
  ASSERT_EQ(kmfifoshift(q, buf, &n, sizeof buf), 0);
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(std::memcmp(buf, "1000", 4), 0);
  ASSERT_EQ(kmfifoshift(q, buf, &n, sizeof buf), 0);
  EXPECT_EQ(n, 11u);
  EXPECT_EQ(std::memcmp(buf, "hello world", 11), 0);
  EXPECT_EQ(kmfifoshift(q, buf, &n, sizeof buf), ENOENT);
  kmfifox(q);
}

TEST(Fifo, ExactCapacity) {
  // 1024 bytes hold 1022 bytes of one chunk, or chunks whose lengths + 2 add up to 1024.
  kmfifo* q = kmfifoi(1024, 0);
  auto big = bytes(1022, 1);
  EXPECT_EQ(kmfifopush(q, big.data(), 1023), EMSGSIZE);  // can never fit
  ASSERT_EQ(kmfifopush(q, big.data(), 1022), 0);
  EXPECT_EQ(kmfifopush(q, big.data(), 1), ENOBUFS);
  std::vector<unsigned char> out(2000);
  size_t n;
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  ASSERT_EQ(n, 1022u);
  EXPECT_EQ(std::memcmp(out.data(), big.data(), n), 0);
  for (int i = 0; i < 128; i++) ASSERT_EQ(kmfifopush(q, big.data(), 6), 0) << i;  // 128 * 8 = 1024
  EXPECT_EQ(kmfifopush(q, big.data(), 1), ENOBUFS);
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  EXPECT_EQ(kmfifopush(q, big.data(), 7), ENOBUFS);  // costs 9, only 8 free
  EXPECT_EQ(kmfifopush(q, big.data(), 6), 0);          // wraps to the start
  kmfifox(q);
}

TEST(Fifo, WrapAroundAtCapacityMatchesModel) {
  // Random lengths, always filling the ring to capacity, against a deque model: every chunk comes
  // out intact and in order, across thousands of wraps, including chunks that straddle the end.
  const size_t cap = 256;
  kmfifo* q = kmfifoi(cap, 0);
  std::deque<std::vector<unsigned char>> model;
  size_t used = 0;
  std::mt19937 rng(7);
  std::vector<unsigned char> out(cap);
  for (unsigned round = 0; round < 20000; round++) {
    size_t len = 1 + rng() % 60;
    auto data = bytes(len, round);
    int rc = kmfifopush(q, data.data(), len);
    if (used + len + 2 <= cap) {
      ASSERT_EQ(rc, 0) << round;
      model.push_back(data);
      used += len + 2;
    } else {
      ASSERT_EQ(rc, ENOBUFS) << round;
      // Drain until it fits, checking each chunk.
      while (used + len + 2 > cap) {
        size_t n = 0;
        ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
        ASSERT_EQ(n, model.front().size());
        ASSERT_EQ(std::memcmp(out.data(), model.front().data(), n), 0) << round;
        used -= n + 2;
        model.pop_front();
      }
      unsigned char* p = static_cast<unsigned char*>(kmfifoa(q, len));  // in place this time
      ASSERT_NE(p, nullptr);
      std::memcpy(p, data.data(), len);
      model.push_back(data);
      used += len + 2;
    }
  }
  while (!model.empty()) {
    size_t n = 0;
    ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
    ASSERT_EQ(n, model.front().size());
    ASSERT_EQ(std::memcmp(out.data(), model.front().data(), n), 0);
    model.pop_front();
  }
  size_t n;
  EXPECT_EQ(kmfifoshift(q, out.data(), &n, out.size()), ENOENT);
  kmfifox(q);
}

TEST(Fifo, InPlaceChunkStraddlingTheEndIsContiguous) {
  kmfifo* q = kmfifoi(64, 0);
  // Chunks at 0..22 (20 + 2) and 22..42 (18 + 2); shifting the first leaves the head at 22; the
  // next chunk starts at 42 and its 30 + 2 bytes run past 64: still one contiguous writable range.
  auto a = bytes(20, 1), b = bytes(18, 2), c = bytes(30, 3);
  ASSERT_EQ(kmfifopush(q, a.data(), 20), 0);
  ASSERT_EQ(kmfifopush(q, b.data(), 18), 0);
  std::vector<unsigned char> out(64);
  size_t n;
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  unsigned char* p = static_cast<unsigned char*>(kmfifoa(q, 30));  // 20 + 32 = 52 <= 64
  ASSERT_NE(p, nullptr);
  std::memcpy(p, c.data(), 30);
  errno = 0;
  EXPECT_EQ(kmfifoa(q, 11), nullptr);  // 13 more would exceed 64 by one
  EXPECT_EQ(errno, ENOBUFS);
  unsigned char* d = static_cast<unsigned char*>(kmfifoa(q, 10));  // exactly full: 64
  ASSERT_NE(d, nullptr);
  std::memset(d, 0xDD, 10);
  // kmfifof frees only the oldest chunk.
  EXPECT_EQ(kmfifof(q, p), EINVAL);
  EXPECT_EQ(kmfifof(q, d), EINVAL);
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  ASSERT_EQ(n, 18u);
  EXPECT_EQ(std::memcmp(out.data(), b.data(), 18), 0);
  EXPECT_EQ(std::memcmp(p, c.data(), 30), 0);  // the straddling chunk was not overwritten by d
  EXPECT_EQ(kmfifof(q, p), 0);
  EXPECT_EQ(kmfifof(q, p), EINVAL);  // no longer the oldest
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  ASSERT_EQ(n, 10u);
  for (int i = 0; i < 10; i++) ASSERT_EQ(out[i], 0xDD);
  EXPECT_EQ(kmfifof(q, d), ENOENT);  // empty
  kmfifox(q);
}

TEST(Fifo, TooSmallBufferKeepsTheChunk) {
  kmfifo* q = kmfifoi(128, 0);
  auto a = bytes(50, 9);
  ASSERT_EQ(kmfifopush(q, a.data(), 50), 0);
  unsigned char out[64];
  size_t n = 0;
  EXPECT_EQ(kmfifoshift(q, out, &n, 49), EMSGSIZE);
  EXPECT_EQ(n, 50u);  // the length it needs
  EXPECT_EQ(kmfifoshift(q, nullptr, &n, 0), EMSGSIZE);
  ASSERT_EQ(kmfifoshift(q, out, &n, 50), 0);
  EXPECT_EQ(std::memcmp(out, a.data(), 50), 0);
  kmfifox(q);
}

TEST(Fifo, LargestChunk) {
  kmfifo* q = kmfifoi(1 << 17, 0);
  ASSERT_NE(q, nullptr);
  auto big = bytes(65535, 5);
  EXPECT_EQ(kmfifopush(q, big.data(), 65535), EMSGSIZE);
  errno = 0;
  EXPECT_EQ(kmfifoa(q, 65535), nullptr);
  EXPECT_EQ(errno, EMSGSIZE);
  // Two maximal chunks fill 2 * 65536 bytes exactly; push, shift one, push again (wrapping).
  ASSERT_EQ(kmfifopush(q, big.data(), 65534), 0);
  ASSERT_EQ(kmfifopush(q, big.data() + 1, 65534), 0);
  EXPECT_EQ(kmfifopush(q, big.data(), 1), ENOBUFS);
  std::vector<unsigned char> out(65534);
  size_t n;
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  ASSERT_EQ(kmfifopush(q, big.data() + 100, 100), 0);
  ASSERT_EQ(kmfifopush(q, big.data(), 65434 - 2), 0);  // 65536 + 102 + 65434: exactly full
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  EXPECT_EQ(std::memcmp(out.data(), big.data() + 1, 65534), 0);
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  EXPECT_EQ(std::memcmp(out.data(), big.data() + 100, 100), 0);
  ASSERT_EQ(kmfifoshift(q, out.data(), &n, out.size()), 0);
  ASSERT_EQ(n, 65432u);
  EXPECT_EQ(std::memcmp(out.data(), big.data(), 65432), 0);
  kmfifox(q);
}

TEST(Fifo, PowerOfTwo) {
  EXPECT_EQ(kmfifop2(0), 1u);
  EXPECT_EQ(kmfifop2(1), 1u);
  EXPECT_EQ(kmfifop2(2), 2u);
  EXPECT_EQ(kmfifop2(3), 4u);
  EXPECT_EQ(kmfifop2(1000), 1024u);
  EXPECT_EQ(kmfifop2(1024), 1024u);
  EXPECT_EQ(kmfifop2(1025), 2048u);
  EXPECT_EQ(kmfifop2(SIZE_MAX / 2 + 1), SIZE_MAX / 2 + 1);
  errno = 0;
  EXPECT_EQ(kmfifop2(SIZE_MAX / 2 + 2), 0u);
  EXPECT_EQ(errno, ERANGE);
  kmfifo* q = kmfifoi(kmfifop2(1000), 0);
  ASSERT_NE(q, nullptr);
  kmfifox(q);
}

TEST(Fifo, BadInput) {
  for (size_t cap : {size_t{0}, size_t{3}, size_t{1000}, size_t{1025}}) {
    errno = 0;
    EXPECT_EQ(kmfifoi(cap, 0), nullptr) << cap;
    EXPECT_EQ(errno, EINVAL);
  }
  errno = 0;
  EXPECT_EQ(kmfifoi(1024, 1), nullptr);  // flags are reserved
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmfifoi(SIZE_MAX / 2 + 1, 0), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  char buf[8];
  size_t n;
  EXPECT_EQ(kmfifopush(nullptr, buf, 1), EINVAL);
  EXPECT_EQ(kmfifoshift(nullptr, buf, &n, 8), EINVAL);
  EXPECT_EQ(kmfifof(nullptr, buf), EINVAL);
  errno = 0;
  EXPECT_EQ(kmfifoa(nullptr, 1), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmfifox(nullptr);
  EXPECT_EQ(errno, EINVAL);
  kmfifo* q = kmfifoi(64, 0);
  EXPECT_EQ(kmfifopush(q, buf, 0), EINVAL);
  EXPECT_EQ(kmfifopush(q, nullptr, 4), EINVAL);
  EXPECT_EQ(kmfifopush(q, buf, SIZE_MAX), EMSGSIZE);
  EXPECT_EQ(kmfifoshift(q, buf, nullptr, 8), EINVAL);
  EXPECT_EQ(kmfifoshift(q, buf, &n, 8), ENOENT);
  EXPECT_EQ(kmfifof(q, buf), ENOENT);
  errno = 0;
  EXPECT_EQ(kmfifoa(q, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  ASSERT_EQ(kmfifopush(q, "abc", 3), 0);
  EXPECT_EQ(kmfifof(q, buf), EINVAL);
  EXPECT_EQ(kmfifof(q, nullptr), EINVAL);
  kmfifox(q);
  // A tiny ring is valid but holds nothing.
  kmfifo* tiny = kmfifoi(2, 0);
  ASSERT_NE(tiny, nullptr);
  EXPECT_EQ(kmfifopush(tiny, "a", 1), EMSGSIZE);
  kmfifox(tiny);
}

}  // namespace
