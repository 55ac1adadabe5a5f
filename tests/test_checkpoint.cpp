// Checkpoints: the codec (every value round-trips; damaged bytes are a codec_error, never a
// crash or a half-applied state), the checkpoint file (refused when damaged, newer or another
// flow's; replaced atomically), and the property that makes restarts exact: a partial saved
// mid-stream and restored into a fresh one, then fed the rest, fires what one uninterrupted
// partial fires, for global, tumbling and sliding windows and every checkpointable monoid.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sluice/core/codec.hpp"
#include "sluice/sluice.hpp"
#include "sluice/run/partition_answer.hpp"
#include "sluice/store/checkpoint.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

template <class T>
std::string encoded(const T& v) {
  std::string bytes;
  sluice::byte_writer w(bytes);
  sluice::encode(w, v);
  return bytes;
}

template <class T>
T decoded(std::string_view bytes) {
  sluice::byte_reader r(bytes);
  T v{};
  sluice::decode(r, v);
  if (r.left() != 0) {
    r.fail("trailing bytes");
  }
  return v;
}

using composite = std::tuple<std::int64_t, std::uint8_t, std::int32_t, double, bool, std::string,
                             std::optional<std::string>, std::vector<std::pair<std::string, std::int64_t>>,
                             std::map<std::string, std::int64_t>, std::set<std::int64_t>, sluice::millis,
                             sluice::windowed_key<std::string>, std::array<std::uint16_t, 3>, std::monostate>;

composite random_composite(std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> any(std::numeric_limits<std::int64_t>::min(),
                                                  std::numeric_limits<std::int64_t>::max());
  std::uniform_int_distribution<int> small(0, 6);
  const auto text = [&] {
    std::string s(static_cast<std::size_t>(small(rng) * 3), 'x');
    for (char& c : s) {
      c = static_cast<char>(rng() & 0xFFU);  // any byte, NUL included
    }
    return s;
  };
  composite c;
  auto& [i64, u8, i32, d, b, s, os, pairs, m, set, t, wk, arr, unit] = c;
  i64 = small(rng) == 0 ? std::numeric_limits<std::int64_t>::min() : any(rng);
  u8 = static_cast<std::uint8_t>(rng());
  i32 = static_cast<std::int32_t>(rng());
  d = std::bit_cast<double>(rng() & 0x7FEFFFFFFFFFFFFFULL);  // finite, so == compares it
  b = (rng() & 1U) != 0;
  s = text();
  if (small(rng) > 2) {
    os = text();
  }
  for (int i = small(rng); i > 0; --i) {
    pairs.emplace_back(text(), any(rng));
    m[text()] = any(rng);
    set.insert(any(rng) >> 20);
  }
  t = sluice::millis{any(rng) / 2};
  wk = {text(), {sluice::millis{-60000}, sluice::millis{any(rng) >> 2}}};
  arr = {static_cast<std::uint16_t>(rng()), 0, 65535};
  return c;
}

}  // namespace

TEST_CASE("codec: random composite values round-trip exactly") {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    const composite c = random_composite(rng);
    CHECK(decoded<composite>(encoded(c)) == c);
  }
}

TEST_CASE("codec: every truncation and many corruptions are a codec_error, never a crash") {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 40; ++i) {
    const std::string bytes = encoded(random_composite(rng));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      CHECK_THROWS_AS(decoded<composite>(bytes.substr(0, n)), sluice::codec_error);
    }
    for (int flip = 0; flip < 50; ++flip) {  // decodes to some value or throws: ASan/UBSan watch the rest
      std::string bad = bytes;
      bad[rng() % bad.size()] = static_cast<char>(rng());
      try {
        (void)decoded<composite>(bad);
      } catch (const sluice::codec_error&) {
      }
    }
  }
}

TEST_CASE("codec: a value that does not fit its type is refused with its position") {
  CHECK_THROWS_WITH_AS(decoded<std::uint8_t>(encoded(std::int64_t{300})), doctest::Contains("does not fit"),
                       sluice::codec_error);
  CHECK_THROWS_WITH_AS(decoded<std::int8_t>(encoded(std::int64_t{-129})), doctest::Contains("byte 0"),
                       sluice::codec_error);
  CHECK_THROWS_WITH_AS(decoded<bool>(encoded(std::int64_t{1})), doctest::Contains("a bool is 2"), sluice::codec_error);
  // A length far past the end allocates nothing: it is refused first.
  std::string forged;
  sluice::byte_writer w(forged);
  w.put_varint(std::uint64_t{1} << 40U);
  CHECK_THROWS_WITH_AS(decoded<std::string>(forged), doctest::Contains("exceeds the 0 bytes left"),
                       sluice::codec_error);
  CHECK_THROWS_WITH_AS(decoded<std::vector<std::int64_t>>(forged), doctest::Contains("count"), sluice::codec_error);
}

// ---- partials: save mid-stream, restore, go on == never stopped ------------------------------

namespace {

struct sale {
  sluice::millis ts;
  std::string_view region;
  std::string_view product;
  std::int64_t qty = 0;
};

const std::vector<std::string>& regions() {
  static const std::vector<std::string> r{"north", "south", "east", "west", "centre", "", "a,b", "ünï"};
  return r;
}

std::vector<sale> random_sales(std::uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  static const std::vector<std::string> products{"p1", "p2", "p3", "p4", "p5"};
  std::vector<sale> out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto jitter = static_cast<std::int64_t>(rng() % 900) - 450;  // out of order by up to 0.9 s
    out.push_back({sluice::millis{static_cast<std::int64_t>(i) * 25 + jitter}, regions()[rng() % regions().size()],
                   products[rng() % products.size()], static_cast<std::int64_t>(rng() % 50) - 10});
  }
  return out;
}

/// Drives a flow's partial as a stream worker does: events through the fused chain, and a
/// watermark 100 ms behind the latest event time every 16 events (so many events are late).
template <class Flow>
class driven {
 public:
  explicit driven(const Flow& f) : partial_(f.make_partial()), chain_(f.bind(partial_)) {}
  driven(const driven&) = delete;
  driven& operator=(const driven&) = delete;

  template <class Fired>
  void feed(const std::vector<sale>& events, std::size_t from, std::size_t to, Fired& fired) {
    for (std::size_t i = from; i < to; ++i) {
      chain_(sluice::millis{0}, events[i]);
      if (i % 16 == 15) {
        collect(partial_.advance(sluice::millis{static_cast<std::int64_t>(i) * 25 - 100}), fired);
      }
    }
  }
  template <class Fired>
  void finish(Fired& fired) {
    collect(partial_.advance(sluice::millis::max()), fired);
  }
  auto& partial() { return partial_; }

 private:
  template <class State, class Fired>
  static void collect(const State& state, Fired& fired) {
    for (const auto& e : state) {
      const bool fresh = fired.emplace(e.key, state.monoid().result(e.value)).second;
      CHECK(fresh);  // each (key, window) fires once: lateness 0
    }
  }

  decltype(std::declval<const Flow&>().make_partial()) partial_;
  decltype(std::declval<const Flow&>().bind(std::declval<decltype(partial_)&>())) chain_;
};

template <class Flow>
void check_restart_is_exact(const Flow& flow, std::uint64_t seed) {
  using partial_type = decltype(flow.make_partial());
  using fired_type = decltype(std::declval<partial_type&>().advance(sluice::millis{}));
  using row = std::pair<typename fired_type::key_type, typename fired_type::result_type>;
  using fired_map = std::map<typename row::first_type, typename row::second_type>;
  const std::vector<sale> events = random_sales(seed, 1500);

  fired_map whole;
  driven<Flow> once(flow);
  once.feed(events, 0, events.size(), whole);
  once.finish(whole);
  REQUIRE(!whole.empty());

  std::mt19937_64 rng(seed * 31);
  for (int cut_no = 0; cut_no < 4; ++cut_no) {
    const std::size_t cut = rng() % events.size();
    fired_map parts;
    std::string bytes;
    std::uint64_t late_before = 0;
    {
      driven<Flow> first(flow);
      first.feed(events, 0, cut, parts);
      sluice::byte_writer w(bytes);
      first.partial().save(w);
      late_before = first.partial().late_events();
    }  // the first process is gone; only the bytes remain
    driven<Flow> second(flow);
    sluice::byte_reader r(bytes);
    second.partial().load(r);
    CHECK(r.left() == 0);
    CHECK(second.partial().late_events() == late_before);
    second.feed(events, cut, events.size(), parts);
    second.finish(parts);
    CHECK_MESSAGE(parts == whole, "seed " << seed << ", cut after " << cut << " events");
    CHECK(second.partial().late_events() == once.partial().late_events());
  }
}

auto all_monoids() {
  return sluice::aggregate(sluice::count{}, sluice::sum(&sale::qty), sluice::min(&sale::qty),
                           sluice::max(&sale::product), sluice::mean(&sale::qty),
                           sluice::distinct_count(&sale::product), sluice::top_k(3, &sale::qty));
}

}  // namespace

TEST_CASE("a partial saved mid-stream and restored fires what an uninterrupted one fires") {
  const auto keyed = sluice::flow<sale>() | sluice::event_time(&sale::ts) | sluice::key_by(&sale::region);
  SUBCASE("no window") {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      check_restart_is_exact(keyed | all_monoids(), seed);
    }
  }
  SUBCASE("tumbling") {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      check_restart_is_exact(keyed | sluice::window(sluice::tumbling(1s)) | all_monoids(), seed);
    }
  }
  SUBCASE("sliding") {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      check_restart_is_exact(keyed | sluice::window(sluice::sliding(2s, 500ms)) | all_monoids(), seed);
    }
  }
  SUBCASE("a composite key") {
    const auto by_both = sluice::flow<sale>() | sluice::event_time(&sale::ts) |
                         sluice::key_by([](const sale& s) { return std::make_tuple(s.region, s.product); }) |
                         sluice::window(sluice::tumbling(1s)) | sluice::aggregate(sluice::count{});
    check_restart_is_exact(by_both, 5);
  }
}

TEST_CASE("a partial refuses damaged or foreign state whole, and keeps what it held") {
  const auto flow = sluice::flow<sale>() | sluice::event_time(&sale::ts) | sluice::key_by(&sale::region) |
                    sluice::window(sluice::tumbling(1s)) | all_monoids();
  const std::vector<sale> events = random_sales(9, 400);
  auto p = flow.make_partial();
  auto chain = flow.bind(p);
  for (const sale& s : events) {
    chain(sluice::millis{0}, s);
  }
  std::string bytes;
  sluice::byte_writer w(bytes);
  p.save(w);

  auto victim = flow.make_partial();
  auto victim_chain = flow.bind(victim);
  victim_chain(sluice::millis{0}, events.front());
  const auto count_before = victim.held().size();
  for (std::size_t n = 0; n < bytes.size(); n += bytes.size() / 23 + 1) {  // cut anywhere: refused, victim untouched
    sluice::byte_reader r(std::string_view(bytes).substr(0, n));
    CHECK_THROWS_AS(victim.load(r), sluice::codec_error);
    CHECK(victim.held().size() == count_before);
  }
  // A distinct_count state whose registers are not the sketch's size is refused (an add would
  // index past them).
  const auto distinct_products = [](int precision) {
    return sluice::flow<sale>() | sluice::key_by(&sale::region) |
           sluice::aggregate(sluice::distinct_count(&sale::product, precision));
  };
  const auto wide_flow = distinct_products(8);
  auto wide = wide_flow.make_partial();
  auto wide_chain = wide_flow.bind(wide);
  wide_chain(sluice::millis{0}, events.front());
  std::string wide_bytes;
  sluice::byte_writer ww(wide_bytes);
  wide.save(ww);
  auto narrow = distinct_products(6).make_partial();
  sluice::byte_reader wr(wide_bytes);
  CHECK_THROWS_WITH_AS(narrow.load(wr), doctest::Contains("cannot hold"), sluice::codec_error);
}

// ---- the checkpoint file ---------------------------------------------------------------------

namespace {
sluice::checkpoint sample_checkpoint(std::uint64_t flow) {
  sluice::checkpoint c;
  c.flow = flow;
  c.add("position", "topic/3@1234");
  c.add("state", std::string("\0\1\2binary\xff", 10));
  c.add("empty", "");
  return c;
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
}  // namespace

TEST_CASE("checkpoint_dir: save replaces, load returns the parts, a missing one is nullopt") {
  const test_support::temp_dir dir(false);
  const sluice::checkpoint_dir store(dir / "a/b");  // created with its parents
  CHECK(!store.load("p0").has_value());
  store.save("p0", sample_checkpoint(42));
  const auto got = store.load("p0", 42);
  REQUIRE(got.has_value());
  CHECK(got->flow == 42);
  CHECK(got->parts == sample_checkpoint(42).parts);
  sluice::checkpoint newer = sample_checkpoint(42);
  newer.parts[0].second = "topic/3@9999";
  store.save("p0", newer);
  CHECK(*store.load("p0")->find("position") == "topic/3@9999");
  CHECK(store.load("p0")->find("nothing") == nullptr);
  for (const auto& e : std::filesystem::directory_iterator(dir / "a/b")) {
    CHECK(e.path().filename() == "p0.ckpt");  // no temporary file left behind
  }
  // A crash between writing the temp file and the rename leaves the old checkpoint in force.
  write_file(store.path_of("p0") + ".tmp", "half a checkp");
  CHECK(*store.load("p0")->find("position") == "topic/3@9999");
  // Any name is a file in the directory: an input's name ("sales/3"), or one meant to escape it.
  CHECK(store.path_of("sales/3") == store.dir() + "/sales_3.ckpt");
  CHECK(store.path_of("../escape") == store.dir() + "/_.._escape.ckpt");
}

TEST_CASE("checkpoint files that are damaged, newer or another flow's are refused with the reason") {
  const test_support::temp_dir dir;
  const sluice::checkpoint_dir store(dir.str());
  store.save("p1", sample_checkpoint(7));
  const std::string path = store.path_of("p1");
  std::string good;
  {
    std::ifstream in(path, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  CHECK_THROWS_WITH_AS((void)store.load("p1", 8), doctest::Contains("written by another flow"),
                       sluice::checkpoint_error);

  std::string newer = good;  // version 2, with a header CRC that matches: a newer build wrote it
  newer[10] = 2;
  const std::uint32_t crc = sluice::crc32c(newer.data(), 36);
  for (unsigned i = 0; i < 4; ++i) {
    newer[36 + i] = static_cast<char>((crc >> (8U * i)) & 0xFFU);
  }
  write_file(path, newer);
  CHECK_THROWS_WITH_AS((void)store.load("p1"), doctest::Contains("format version 2 is newer"),
                       sluice::checkpoint_error);

  for (std::size_t at = 0; at < good.size(); ++at) {  // any byte flipped: refused, never applied
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    write_file(path, bad);
    CHECK_THROWS_AS((void)store.load("p1"), sluice::checkpoint_error);
  }
  for (std::size_t n = 0; n < good.size(); ++n) {
    write_file(path, good.substr(0, n));
    CHECK_THROWS_WITH_AS((void)store.load("p1"), doctest::Contains(path.c_str()), sluice::checkpoint_error);
  }
  write_file(path, "PK\3\4 a zip file, not a checkpoint at all.............");
  CHECK_THROWS_WITH_AS((void)store.load("p1"), doctest::Contains("not a sluice checkpoint"), sluice::checkpoint_error);
}

TEST_CASE("flow_fingerprint tells flows of different state types and names apart") {
  const auto a = sluice::flow<sale>() | sluice::key_by(&sale::region) | sluice::aggregate(sluice::count{});
  const auto b = sluice::flow<sale>() | sluice::key_by(&sale::product) | sluice::aggregate(sluice::sum(&sale::qty));
  using pa = decltype(a.make_partial());
  using pb = decltype(b.make_partial());
  CHECK(sluice::flow_fingerprint<pa>() == sluice::flow_fingerprint<pa>());
  CHECK(sluice::flow_fingerprint<pa>() != sluice::flow_fingerprint<pb>());
  CHECK(sluice::flow_fingerprint<pa>("by-region") != sluice::flow_fingerprint<pa>("by-product"));
}

namespace {

/// Each partition's whole answer (open windows + what fired) merged across owners == the answer
/// of one partial fed every event: what GET /QUERY on any instance of a consumer group gives.
template <class Flow>
void check_partition_answer(const Flow& flow, std::uint64_t seed, std::chrono::milliseconds retain = 0ms) {
  using partial_type = decltype(flow.make_partial());
  using fired_type = decltype(std::declval<partial_type&>().advance(sluice::millis{}));
  const std::vector<sale> events = random_sales(seed, 500);  // 12.5 s of events: many windows fire and are forgotten
  std::mt19937_64 rng(seed * 7);
  constexpr std::size_t partitions = 4;
  std::vector<std::vector<sale>> parts(partitions);
  for (const sale& s : events) {
    parts[rng() % partitions].push_back(s);
  }

  // A partition's checkpoint after its first `n` events, its watermark 1 s behind (nothing late:
  // the events are out of order by less), what fired kept beside the open windows.
  auto checkpoint_of = [&](const std::vector<sale>& part, std::size_t n) {
    auto partial = flow.make_partial();
    auto chain = flow.bind(partial);
    fired_type kept(partial.advance(sluice::millis::min()));
    for (std::size_t i = 0; i < n; ++i) {
      chain(sluice::millis{0}, part[i]);
      if (i % 16 == 15) {
        kept.merge(partial.advance(part[i].ts - 1s));
        if (retain > 0ms) {  // as the stream worker forgets, by the partition's own watermark
          sluice::detail::drop_windows_ended_by(kept, partial.watermark() - retain);
        }
      }
    }
    CHECK(partial.late_events() == 0);
    sluice::stream_checkpoints::saved_input s{static_cast<std::int64_t>(n), {}, {}};
    sluice::byte_writer w(s.state);
    partial.save(w);
    sluice::byte_writer f(s.fired);
    kept.save(f);
    return s;
  };
  std::vector<sluice::stream_checkpoints::published_input> a;
  std::vector<sluice::stream_checkpoints::published_input> b;
  std::vector<sluice::stream_checkpoints::published_input> stale;
  for (std::size_t p = 0; p < partitions; ++p) {
    const std::string name = "sales/" + std::to_string(p);
    (p % 2 == 0 ? a : b).push_back({name, checkpoint_of(parts[p], parts[p].size()), 0});
    stale.push_back({name, checkpoint_of(parts[p], parts[p].size() / 2), 0});  // its old owner's
  }
  sluice::partition_answer<Flow> answer(flow);
  answer.offer(sluice::decode_published(sluice::encode_published("old:1", stale)));
  answer.offer(sluice::decode_published(sluice::encode_published("a:1", a)));
  answer.offer(sluice::decode_published(sluice::encode_published("b:1", b)));
  answer.offer(sluice::decode_published(sluice::encode_published("old:1", stale)));  // in either order
  REQUIRE(answer.inputs().size() == partitions);
  for (const auto& [name, h] : answer.inputs()) {
    CHECK(h.owner != "old:1");
  }

  auto whole = flow.make_partial();
  auto chain = flow.bind(whole);
  for (const sale& s : events) {
    chain(sluice::millis{0}, s);
  }
  // With retention, the windows every partition still holds: those ending after the most
  // advanced partition's horizon (the others keep more). Worked out here from the window ends,
  // not by the code under test.
  sluice::millis horizon = sluice::millis::min();
  if (retain > 0ms) {
    for (const auto& [name, h] : answer.inputs()) {
      auto p = flow.make_partial();
      sluice::byte_reader r(h.checkpoint.saved.state);
      p.load(r);
      horizon = std::max(horizon, p.watermark() - retain);
    }
  }
  const auto expected = sluice::make_result_store(whole.advance(sluice::millis::max()));
  const auto got = answer.store(retain);
  using row_map = std::map<typename fired_type::key_type, typename fired_type::result_type>;
  row_map want;
  row_map have;
  std::size_t forgotten = 0;
  for (const auto& row : expected.scan()) {
    if constexpr (requires { row.key.window.end; }) {
      if (row.key.window.end <= horizon) {
        ++forgotten;
        continue;
      }
    }
    want.emplace(row.key, row.value);
  }
  if constexpr (requires(const typename fired_type::key_type& k) { k.window.end; }) {
    CHECK((forgotten > 0) == (retain > 0ms));  // retention forgot windows, and only with it
  }
  for (const auto& row : got.scan()) {
    have.emplace(row.key, row.value);
  }
  REQUIRE(!want.empty());
  CHECK_MESSAGE(have == want, "seed " << seed);
}

}  // namespace

TEST_CASE("partition_answer: partitions' checkpoints held by several owners merge into the whole answer") {
  const auto keyed = sluice::flow<sale>() | sluice::event_time(&sale::ts) | sluice::key_by(&sale::region);
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    check_partition_answer(keyed | all_monoids(), seed);
    check_partition_answer(keyed | sluice::window(sluice::tumbling(1s)) | all_monoids(), seed);
    check_partition_answer(keyed | sluice::window(sluice::sliding(2s, 500ms)) | all_monoids(), seed);
  }
}

TEST_CASE("partition_answer with retention: the windows every partition still holds, each whole") {
  const auto keyed = sluice::flow<sale>() | sluice::event_time(&sale::ts) | sluice::key_by(&sale::region);
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    check_partition_answer(keyed | sluice::window(sluice::tumbling(1s)) | all_monoids(), seed, 3s);
    check_partition_answer(keyed | sluice::window(sluice::sliding(2s, 500ms)) | all_monoids(), seed, 2s);
    check_partition_answer(keyed | all_monoids(), seed, 2s);  // no windows: nothing to forget
  }
}

TEST_CASE("partition_answer: published checkpoints that do not decode are refused, never half-read") {
  std::vector<sluice::stream_checkpoints::published_input> one{{"t/0", {42, "state", "fired"}, 7}};
  const std::string bytes = sluice::encode_published("host:1", one);
  const auto back = sluice::decode_published(bytes);
  REQUIRE(back.size() == 1);
  CHECK(back[0].owner == "host:1");
  CHECK(back[0].checkpoint.saved.position == 42);
  CHECK(back[0].checkpoint.saved.fired == "fired");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_THROWS_AS(sluice::decode_published(bytes.substr(0, n)), sluice::codec_error);
  }
  std::string newer = bytes;
  newer[0] = 2;
  CHECK_THROWS_WITH_AS(sluice::decode_published(newer), doctest::Contains("version 2"), sluice::codec_error);
}
