// batch_view and view_snapshot: the Lambda batch layer's versioned view and the reads over it.
// Properties on random data: a chain of merged versions equals recomputing from all deltas (and
// every older version still equals its own prefix: versions are immutable); a publish shares
// every shard its delta does not touch (the O(change) promise, checked structurally); retention
// equals the recompute without the dropped windows; a snapshot over batch + speed answers like
// one store holding both, for get, scan, top_k and per-window top_k.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/core/monoid.hpp"
#include "sluice/core/window.hpp"
#include "sluice/lambda/batch_view.hpp"
#include "sluice/lambda/view_snapshot.hpp"
#include "sluice/store/result_store.hpp"
#include "sluice/store/window_top_k.hpp"

namespace {

using sluice::millis;
using wkey = sluice::windowed_key<std::int64_t>;
using windowed_state = sluice::keyed_state<wkey, sluice::count>;
using plain_state = sluice::keyed_state<std::int64_t, sluice::count>;
using windowed_view = sluice::batch_view<wkey, sluice::count>;
using plain_view = sluice::batch_view<std::int64_t, sluice::count>;

sluice::time_window minute(std::int64_t i) { return {millis{i * 60'000}, millis{(i + 5) * 60'000}}; }

/// A delta of `n` random (product, window) counts with windows in [first, first + span).
windowed_state random_windowed(std::mt19937_64& rng, int n, std::int64_t first, std::int64_t span, int products) {
  windowed_state d;
  for (int i = 0; i < n; ++i) {
    const auto product = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(products));
    const auto w = first + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(span));
    d.slot(wkey{product, minute(w)}) += 1 + static_cast<std::int64_t>(rng() % 3);
  }
  return d;
}

template <class Key>
using flat = std::map<Key, std::int64_t>;

template <class State>
auto flatten(const State& s) {
  flat<typename State::key_type> out;
  for (const auto& e : s) {
    out[e.key] += e.value;
  }
  return out;
}

template <class View>
auto flatten_view(const View& v) {
  flat<typename View::state_type::key_type> out;
  std::size_t entries = 0;
  std::size_t misplaced = 0;  // one CHECK per view, not per entry: the sanitizer builds run this too
  for (const auto& shard : v.shards()) {
    for (const auto& e : *shard.entries) {
      misplaced += v.shard_of(e.key) == shard.id ? 0 : 1;  // every entry sits in its own shard
      out[e.key] += e.value;
      ++entries;
    }
  }
  CHECK(misplaced == 0);
  CHECK(entries == v.size());
  CHECK(out.size() == entries);  // no key in two shards
  return out;
}

template <class Key>
void add_into(flat<Key>& into, const flat<Key>& from) {
  for (const auto& [k, v] : from) {
    into[k] += v;
  }
}

}  // namespace

TEST_CASE("batch_view: merged versions equal the recompute; older versions stay as they were") {
  std::mt19937_64 rng(7);
  std::vector<std::shared_ptr<const windowed_view>> versions{std::make_shared<const windowed_view>()};
  std::vector<flat<wkey>> expected{{}};
  for (int step = 0; step < 30; ++step) {
    // Mostly the windows around "now", sometimes a late one far back.
    const std::int64_t now = step * 2;
    const auto delta = step % 7 == 3 ? random_windowed(rng, 50, 0, 3, 40) : random_windowed(rng, 400, now, 6, 300);
    versions.push_back(std::make_shared<const windowed_view>(versions.back()->merged(delta)));
    expected.push_back(expected.back());
    add_into(expected.back(), flatten(delta));
  }
  for (std::size_t i = 0; i < versions.size(); ++i) {
    CAPTURE(i);
    CHECK(flatten_view(*versions[i]) == expected[i]);
  }
}

TEST_CASE("batch_view: a publish shares every shard its delta does not touch") {
  std::mt19937_64 rng(11);
  const windowed_view v0 = windowed_view().merged(random_windowed(rng, 5000, 0, 40, 500));
  REQUIRE(v0.shards().size() == 40);
  windowed_state delta;
  delta.slot(wkey{3, minute(17)}) += 1;   // an existing window
  delta.slot(wkey{3, minute(100)}) += 1;  // a new one
  const windowed_view v1 = v0.merged(delta);
  CHECK(v1.shards().size() == 41);
  std::size_t shared = 0;
  for (const auto& s : v1.shards()) {
    const auto* before = v0.find_shard(s.id);
    if (s.id == minute(17) || s.id == minute(100)) {
      CHECK(s.entries.get() != before);  // rebuilt (or new)
    } else {
      CHECK(s.entries.get() == before);  // the same object: nothing copied
      ++shared;
    }
  }
  CHECK(shared == 39);
  CHECK(v0.find(wkey{3, minute(100)}) == nullptr);  // the old version did not change
  CHECK(*v1.find(wkey{3, minute(100)}) == 1);
}

TEST_CASE("batch_view: hash shards split as the view grows, equal the recompute and share untouched shards") {
  std::mt19937_64 rng(3);
  plain_view v;
  flat<std::int64_t> expected;
  for (int step = 0; step < 6; ++step) {
    plain_state delta;
    for (int i = 0; i < 30'000; ++i) {
      delta.slot(static_cast<std::int64_t>(rng() % 1'000'000)) += 1;
    }
    v = v.merged(delta);
    add_into(expected, flatten(delta));
  }
  CHECK(v.shards().size() > 1);  // 160k+ keys: split past max_shard_entries
  CHECK(flatten_view(v) == expected);
  for (const auto& s : v.shards()) {
    CHECK(s.entries->size() <= plain_view::max_shard_entries);
  }
  plain_state one;
  one.slot(std::int64_t{42}) += 5;
  const plain_view w = v.merged(one);
  std::size_t rebuilt = 0;
  for (const auto& s : w.shards()) {
    rebuilt += s.entries.get() != v.find_shard(s.id) ? 1 : 0;
  }
  CHECK(rebuilt == 1);
  CHECK(*w.find(std::int64_t{42}) == expected[42] + 5);
}

TEST_CASE("batch_view: retention drops exactly the windows that ended at or before the horizon") {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 20; ++trial) {
    const auto a = random_windowed(rng, 300, 0, 30, 50);
    const auto b = random_windowed(rng, 300, 10, 30, 50);
    const millis horizon{static_cast<std::int64_t>(rng() % 40) * 60'000};
    const windowed_view v = windowed_view().merged(a).merged(b, horizon);
    flat<wkey> expected;
    for (const auto& [k, n] : flatten(a)) {
      if (k.window.end > horizon) {
        expected[k] += n;
      }
    }
    for (const auto& [k, n] : flatten(b)) {
      if (k.window.end > horizon) {
        expected[k] += n;
      }
    }
    CAPTURE(horizon.count());
    CHECK(flatten_view(v) == expected);
    CHECK(flatten_view(v.retained(horizon + std::chrono::minutes(1))).size() <= expected.size());
  }
}

TEST_CASE("view_snapshot: batch + speed read key by key equals one store holding both") {
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 10; ++trial) {
    const auto batch = random_windowed(rng, 2000, 0, 20, 60);
    const auto speed = random_windowed(rng, 500, 15, 10, 60);  // overlaps the batch's newest windows
    const millis horizon = trial % 2 == 0 ? millis::min() : millis{8 * 60'000};
    const auto view = std::make_shared<const windowed_view>(windowed_view().merged(batch, horizon));
    const sluice::view_snapshot<wkey, sluice::count> snap(view, speed, horizon);

    windowed_state both;
    both.merge(batch);
    both.merge(speed);
    both.retain_if([&](const wkey& k, auto&) { return k.window.end > horizon; });
    const sluice::result_store<wkey, sluice::count> store(both);

    auto as_pairs = [](const auto& rows) {
      std::vector<std::pair<wkey, std::int64_t>> out;
      for (const auto& r : rows) {
        out.emplace_back(r.key, r.value);
      }
      return out;
    };
    CAPTURE(trial);
    CHECK(as_pairs(snap.scan()) == as_pairs(store.scan()));
    CHECK(snap.size() == store.size());
    const auto by_count = [](std::int64_t n) { return n; };
    CHECK(as_pairs(snap.top_k(25, by_count)) == as_pairs(store.top_k(25, by_count)));
    CHECK(as_pairs(sluice::top_k_by_window(snap, 3, by_count)) == as_pairs(sluice::top_k_by_window(store, 3, by_count)));
    const millis start = minute(16).start;
    CHECK(as_pairs(sluice::top_k_by_window(snap, 4, by_count, start)) ==
          as_pairs(sluice::top_k_by_window(store, 4, by_count, start)));
    for (int probe = 0; probe < 200; ++probe) {
      const wkey k{static_cast<std::int64_t>(rng() % 70), minute(static_cast<std::int64_t>(rng() % 30))};
      const std::int64_t* expected = both.find(k);
      const auto got = snap.get(k);
      REQUIRE(got.has_value() == (expected != nullptr));
      if (got) {
        CHECK(*got == *expected);
      }
    }
  }
}

TEST_CASE("top_k_by_window: per window, the largest first, ties to the smaller key, only the window asked for") {
  windowed_state s;
  for (std::int64_t p = 1; p <= 6; ++p) {
    s.slot(wkey{p, minute(0)}) += p % 3;  // 1, 2, 0, 1, 2, 0
    s.slot(wkey{p, minute(1)}) += 7;      // all tied
  }
  const sluice::result_store<wkey, sluice::count> store(s);
  const auto rows = sluice::top_k_by_window(store, 3, [](std::int64_t n) { return n; });
  std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> got;
  for (const auto& r : rows) {
    got.emplace_back(r.key.window.start.count() / 60'000, r.key.key, r.value);
  }
  const std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> expected = {
      {0, 2, 2}, {0, 5, 2}, {0, 1, 1}, {1, 1, 7}, {1, 2, 7}, {1, 3, 7}};
  CHECK(got == expected);
  CHECK(sluice::top_k_by_window(store, 3, [](std::int64_t n) { return n; }, minute(1).start).size() == 3);
  CHECK(sluice::top_k_by_window(store, 3, [](std::int64_t n) { return n; }, millis{12345}).empty());
}
