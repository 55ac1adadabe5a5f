// The Nexmark generator: the n-th event of the stream, as a pure function of (config, n), so the
// batch runner makes disjoint ranges of events on every core (sluice::from_index) and a file
// written by gen_nexmark holds the same events as an in-process run with the same settings.
//
// The model is the Nexmark suite's (nexmark-flink's generator/ and its GeneratorConfig):
//   - events come in blocks of 50: one person, then 3 auctions, then 46 bids;
//   - person and auction ids count up from 1000 in event order (the k-th person is id 1000 + k);
//   - an auction's seller is, with probability 3/4, a hot seller (the first person of the latest
//     block of 100 people), else one of the 1000 most recent people (or up to 10 ids ahead);
//   - a bid's auction is, with probability 1/2, a hot auction (the first of the latest block of
//     100 auctions), else one of the 100 auctions in flight (or up to 10 ids ahead); its bidder
//     is, with probability 3/4, a hot bidder (the second person of the latest block of 100);
//   - categories 10..14; prices round(10^(6u) * 100) for u uniform in [0, 1); an auction's
//     reserve is its initial bid plus another price; it expires a random time within twice the
//     time its next 100 auctions take to arrive;
//   - bid channels: half of them one of Google, Facebook, Baidu, Apple with a fixed URL each, the
//     others one of 10 000 channels "channel-i" whose URL carries "&channel_id=..." 9 times in 10;
//   - `extra` pads each event to the suite's average sizes (person 200, auction 500, bid 100
//     bytes), its text cut from one fixed pool of letters, as the suite does;
//   - event time: base time + n / rate (the suite's firstEventRate, 10 M events/s in its V1
//     workload, is the default), minus a pseudo-random amount in [0, out_of_order] when asked.
// Where it differs: random numbers are splitmix64 seeded with (seed, n) instead of Java's
// SplittableRandom (so no two implementations agree bit for bit, but every run of this one
// does); a bid's bidder gets the first person id added once (the Java code adds it twice, so its
// bidders never match a person); the fixed URLs and the extra pool come from the seed 0.
#pragma once

#include <algorithm>
#include <array>
#include <iterator>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../common/splitmix64.hpp"
#include "model.hpp"

namespace nexmark {

struct generator_config {
  std::uint64_t seed = 0;
  double events_per_second = 10'000'000;             // the suite's V1 workload (100M events at 10M/s)
  sluice::millis out_of_order{0};                    // events up to this far behind the latest
  sluice::millis base_time{1'436'918'400'000};       // 2015-07-15 00:00:00 UTC
};

namespace detail {

constexpr std::int64_t first_person_id = 1000;
constexpr std::int64_t first_auction_id = 1000;
constexpr std::int64_t first_category_id = 10;
constexpr std::int64_t num_categories = 5;
constexpr std::uint64_t person_proportion = 1;
constexpr std::uint64_t auction_proportion = 3;
constexpr std::uint64_t total_proportion = 50;
constexpr std::int64_t num_active_people = 1000;
constexpr std::int64_t num_in_flight_auctions = 100;
constexpr std::int64_t id_lead = 10;  // ids up to this far ahead of the latest (not yet made)
constexpr std::uint64_t hot_auction_ratio = 2, hot_sellers_ratio = 4, hot_bidders_ratio = 4;
constexpr std::int64_t hot_block = 100;
constexpr std::size_t avg_person_bytes = 200, avg_auction_bytes = 500, avg_bid_bytes = 100;
constexpr std::size_t num_channels = 10'000;

/// The random numbers of one event.
struct event_random {
  cli::splitmix64 rng;
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng.below(n); }
  double unit() { return rng.unit(); }
};

/// Letters to cut `extra` and the fixed URLs from: made once, the same on every run.
inline const std::string& letter_pool() {
  static const std::string pool = [] {
    cli::splitmix64 r{0x6e65786d61726bULL};  // "nexmark"
    std::string s(std::size_t{1} << 20U, 'a');
    for (char& c : s) {
      c = static_cast<char>('a' + r.below(26));
    }
    return s;
  }();
  return pool;
}

/// A string of 3..max_length-1 letters with `special` now and then (trimmed of spaces), as the
/// suite's nextString.
inline std::string next_string(event_random& r, std::uint64_t max_length, char special = ' ') {
  std::uint64_t len = 3 + r.below(max_length - 3);
  std::string s;
  s.reserve(len);
  while (len-- > 0) {
    s += r.below(13) == 0 ? special : static_cast<char>('a' + r.below(26));
  }
  const auto first = s.find_first_not_of(' ');
  const auto last = s.find_last_not_of(' ');
  return first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
}

/// Padding so that the event's size averages `average` bytes: +-20% around what is missing.
inline std::string next_extra(event_random& r, std::size_t current, std::size_t average) {
  if (current > average) {
    return {};
  }
  const std::size_t missing = average - current;
  const auto delta = static_cast<std::size_t>(std::llround(static_cast<double>(missing) * 0.2));
  const std::size_t size = missing - delta + (delta == 0 ? 0 : r.below(2 * delta));
  const std::string& pool = letter_pool();
  return pool.substr(r.below(pool.size() - size), size);
}

inline std::int64_t next_price(event_random& r) {
  return std::llround(std::pow(10.0, r.unit() * 6.0) * 100.0);
}

/// The id (from 0) of the latest person at or before event n.
inline std::int64_t last_person(std::uint64_t n) {
  const std::uint64_t epoch = n / total_proportion;
  const std::uint64_t offset = std::min(n % total_proportion, person_proportion - 1);
  return static_cast<std::int64_t>(epoch * person_proportion + offset);
}
/// The id (from 0) of the latest auction at or before event n (-1 before the first).
inline std::int64_t last_auction(std::uint64_t n) {
  auto epoch = static_cast<std::int64_t>(n / total_proportion);
  std::uint64_t offset = n % total_proportion;
  if (offset < person_proportion) {
    --epoch;
    offset = auction_proportion - 1;
  } else if (offset >= person_proportion + auction_proportion) {
    offset = auction_proportion - 1;
  } else {
    offset -= person_proportion;
  }
  return epoch * static_cast<std::int64_t>(auction_proportion) + static_cast<std::int64_t>(offset);
}
/// One of the most recent people (or a few ids ahead).
inline std::int64_t some_person(event_random& r, std::uint64_t n) {
  const std::int64_t people = last_person(n) + 1;
  const std::int64_t active = std::min(people, num_active_people);
  return people - active + static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(active + id_lead)));
}
/// One of the auctions in flight (or a few ids ahead).
inline std::int64_t some_auction(event_random& r, std::uint64_t n) {
  const std::int64_t latest = std::max<std::int64_t>(last_auction(n), 0);
  const std::int64_t lowest = std::max<std::int64_t>(latest - num_in_flight_auctions, 0);
  return lowest + static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(latest - lowest + 1 + id_lead)));
}

inline sluice::millis time_of(const generator_config& c, std::uint64_t n) {
  return sluice::millis{c.base_time.count() + static_cast<std::int64_t>(static_cast<double>(n) * 1000.0 /
                                                                        c.events_per_second)};
}

inline std::uint32_t reverse_bits(std::uint32_t x) {
  std::uint32_t out = 0;
  for (int i = 0; i < 32; ++i, x >>= 1U) {
    out = (out << 1U) | (x & 1U);
  }
  return out;
}

struct channel {
  std::string name;
  std::string url;
};
inline std::string base_url(cli::splitmix64& r) {
  event_random er{r};
  std::string url = "https://www.nexmark.com/" + next_string(er, 5, '_') + '/' + next_string(er, 5, '_') + '/' +
                    next_string(er, 5, '_') + "/item.htm?query=1";
  r = er.rng;
  return url;
}
/// The four hot channels with their URLs, then the 10 000 others.
inline const std::array<channel, 4>& hot_channels() {
  static const std::array<channel, 4> hot = [] {
    cli::splitmix64 r{0x686f74ULL};
    return std::array<channel, 4>{channel{"Google", base_url(r)}, channel{"Facebook", base_url(r)},
                                  channel{"Baidu", base_url(r)}, channel{"Apple", base_url(r)}};
  }();
  return hot;
}
inline const std::vector<channel>& other_channels() {
  static const std::vector<channel> all = [] {
    cli::splitmix64 r{0x6368616e6e656cULL};
    std::vector<channel> out;
    out.reserve(num_channels);
    for (std::size_t i = 0; i < num_channels; ++i) {
      std::string url = base_url(r);
      if (r.below(10) > 0) {  // the suite's Math.abs(Integer.reverse(i))
        const auto reversed = static_cast<std::int32_t>(reverse_bits(static_cast<std::uint32_t>(i)));
        url += "&channel_id=" + std::to_string(reversed < 0 ? -static_cast<std::int64_t>(reversed) : reversed);
      }
      out.push_back(channel{"channel-" + std::to_string(i), std::move(url)});
    }
    return out;
  }();
  return all;
}

}  // namespace detail

/// The n-th event (n = 0, 1, ...): the same for the same config and n, on any thread.
inline event make_event(const generator_config& c, std::uint64_t n) {
  using namespace detail;
  event_random r{cli::splitmix64{c.seed * 0x9e3779b97f4a7c15ULL ^ (n + 0x632be59bd9b4e019ULL)}};
  sluice::millis t = time_of(c, n);
  if (c.out_of_order.count() > 0) {
    t = sluice::millis{t.count() - static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(c.out_of_order.count()) + 1))};
  }
  const std::uint64_t offset = n % total_proportion;
  if (offset < person_proportion) {
    static constexpr std::string_view states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
    static constexpr std::string_view cities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                                  "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
    static constexpr std::string_view first[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                                 "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
    static constexpr std::string_view last[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                                "Walton", "Smith",  "Jones",   "Noris"};
    person p;
    p.id = last_person(n) + first_person_id;
    p.name = std::string(first[r.below(std::size(first))]) + ' ' + std::string(last[r.below(std::size(last))]);
    p.email_address = next_string(r, 7) + '@' + next_string(r, 5) + ".com";
    for (int i = 0; i < 4; ++i) {
      const std::string four = std::to_string(10'000 + r.below(10'000)).substr(1);  // 0000..9999
      p.credit_card += i == 0 ? four : ' ' + four;
    }
    p.city = cities[r.below(std::size(cities))];
    p.state = states[r.below(std::size(states))];
    p.date_time = t;
    p.extra = next_extra(r,
                         8 + p.name.size() + p.email_address.size() + p.credit_card.size() + p.city.size() +
                             p.state.size(),
                         avg_person_bytes);
    return p;
  }
  if (offset < person_proportion + auction_proportion) {
    auction a;
    a.id = last_auction(n) + first_auction_id;
    a.seller = (r.below(hot_sellers_ratio) > 0 ? last_person(n) / hot_block * hot_block : some_person(r, n)) +
               first_person_id;
    a.category = first_category_id + static_cast<std::int64_t>(r.below(num_categories));
    a.initial_bid = next_price(r);
    // Within twice the time the next 100 auctions take to come (100 * 50 / 3 events).
    const std::uint64_t ahead = static_cast<std::uint64_t>(num_in_flight_auctions) * total_proportion / auction_proportion;
    const std::int64_t horizon = time_of(c, n + ahead).count() - time_of(c, n).count();
    a.date_time = t;
    a.expires = sluice::millis{t.count() + 1 +
                               static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(std::max<std::int64_t>(horizon * 2, 1))))};
    a.item_name = next_string(r, 20);
    a.description = next_string(r, 100);
    a.reserve = a.initial_bid + next_price(r);
    a.extra = next_extra(r, 8 + a.item_name.size() + a.description.size() + 40, avg_auction_bytes);
    return a;
  }
  bid b;
  b.auction = (r.below(hot_auction_ratio) > 0 ? std::max<std::int64_t>(last_auction(n), 0) / hot_block * hot_block
                                               : some_auction(r, n)) +
              first_auction_id;
  b.bidder = (r.below(hot_bidders_ratio) > 0 ? last_person(n) / hot_block * hot_block + 1 : some_person(r, n)) +
             first_person_id;
  b.price = next_price(r);
  if (r.below(2) > 0) {
    const detail::channel& ch = hot_channels()[r.below(4)];
    b.channel = ch.name;
    b.url = ch.url;
  } else {
    const detail::channel& ch = other_channels()[r.below(num_channels)];
    b.channel = ch.name;
    b.url = ch.url;
  }
  b.date_time = t;
  b.extra = next_extra(r, 32, avg_bid_bytes);
  return b;
}

}  // namespace nexmark
