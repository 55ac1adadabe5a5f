// The Nexmark queries as sluice flows over the one stream of events (model.hpp). Each query is a
// struct with
//   flow()            the flow, over sluice::flow<nexmark::event>
//   header            the CSV header: the query's SELECT list as the suite's SQL names it
//   write(rows, out)  its rows as CSV lines, through out.row(fn) (fn appends one line's fields)
// `rows` is what run_batch returns for the flow, or one call of run_stream's sink: the same type,
// and all calls together hold what run_batch returns.
//
// The SQL is the Nexmark suite's (nexmark-flink/src/main/resources/queries/qN.sql); each query's
// comment says how the flow maps to it and where a choice had to be made.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cctype>
#include <climits>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <type_traits>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/core.h>

#include "json.hpp"
#include "model.hpp"
#include "sluice/io/csv_text.hpp"
#include "sluice/sluice.hpp"

namespace nexmark {

using namespace std::chrono_literals;

// ---- the CSV fields -----------------------------------------------------------------------------

namespace csv {
inline void field(std::string& out, std::int64_t v) { fmt::format_to(std::back_inserter(out), "{},", v); }
inline void field(std::string& out, std::string_view v) {
  sluice::append_csv_field(out, v);
  out += ',';
}
inline void time(std::string& out, sluice::millis t) {
  append_time(out, t);
  out += ',';
}
/// 0.908 * price, exact: DECIMAL(23, 3).
inline void euros(std::string& out, std::int64_t price_milli) {
  const char* sign = price_milli < 0 ? "-" : "";
  const std::uint64_t m = price_milli < 0 ? 0 - static_cast<std::uint64_t>(price_milli) : price_milli;
  fmt::format_to(std::back_inserter(out), "{}{}.{:03},", sign, m / 1000, m % 1000);
}
inline void end(std::string& out) { out.back() = '\n'; }  // the last field's ','

/// One line per row: fields(line, row) appends the row's fields.
template <class Rows, class Out, class Fields>
void each_row(const Rows& rows, Out& out, Fields fields) {
  for (const auto& r : rows) {
    out.row([&](std::string& s) { fields(s, r); });
  }
}
}  // namespace csv

/// DATE_FORMAT(t, 'yyyy-MM-dd') of a day window's start.
inline std::string day_of(sluice::millis window_start) { return format_time(window_start).substr(0, 10); }

inline std::int64_t to_euro_milli(std::int64_t price) { return price * 908; }  // 0.908 * price, in 1/1000

struct keep_all {
  template <class T>
  bool operator()(const T& /*x*/) const {
    return true;
  }
};

/// The events of types A and B that pass keep_a and keep_b, as std::variant<A, B>: the two sides
/// of a join (or of one aggregate over both).
template <class A, class B, class KeepA = keep_all, class KeepB = keep_all>
auto events_of_both(KeepA keep_a = {}, KeepB keep_b = {}) {
  using side = std::variant<A, B>;
  return sluice::flow<event>() | sluice::flat_map<side>([keep_a, keep_b](const event& e, auto&& emit) {
           if (const auto* a = std::get_if<A>(&e); a != nullptr && keep_a(*a)) {
             emit(side{*a});
           } else if (const auto* b = std::get_if<B>(&e); b != nullptr && keep_b(*b)) {
             emit(side{*b});
           }
         });
}

/// The events of one type, as that type: the suite's `bid`, `auction` and `person` views.
template <class T>
auto events_of() {
  return sluice::flow<event>() | sluice::only<T>();
}

/// An auction's fields after its id (itemName ... extra): q9's and q20's rows.
inline void auction_fields(std::string& s, const auction& a) {
  csv::field(s, a.item_name);
  csv::field(s, a.description);
  csv::field(s, a.initial_bid);
  csv::field(s, a.reserve);
  csv::time(s, a.date_time);
  csv::time(s, a.expires);
  csv::field(s, a.seller);
  csv::field(s, a.category);
  csv::field(s, a.extra);
}

/// auction, bidder, price, dateTime, extra: q0's row, and the start of q10's.
inline void bid_fields(std::string& s, const bid& b) {
  csv::field(s, b.auction);
  csv::field(s, b.bidder);
  csv::field(s, b.price);
  csv::time(s, b.date_time);
  csv::field(s, b.extra);
}

// ---- q0: pass-through ---------------------------------------------------------------------------
// SELECT auction, bidder, price, dateTime, extra FROM bid
struct q0 {
  static constexpr std::string_view header = "auction,bidder,price,dateTime,extra";
  static auto flow() { return events_of<bid>() | sluice::collect(); }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, bid_fields);
  }
};

/// Bid counts per bidder and window, as q11 and q12 write them.
struct bid_counts_per_window {
  static constexpr std::string_view header = "bidder,bid_count,starttime,endtime";
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& key, std::int64_t count) {
      out.row([&](std::string& s) {
        csv::field(s, key.key);
        csv::field(s, count);
        csv::time(s, key.window.start);
        csv::time(s, key.window.end);
      });
    });
  }
};

// ---- q10: log to the file system ----------------------------------------------------------------
// INSERT INTO fs_sink PARTITIONED BY (dt, hm) SELECT auction, bidder, price, dateTime, extra,
//   DATE_FORMAT(dateTime, 'yyyy-MM-dd'), DATE_FORMAT(dateTime, 'HH:mm') FROM bid
// The suite's sink writes a directory per (dt, hm); here the partition columns are the last two
// of one CSV (a host splits them as its file system wants): the query's work is the projection.
struct q10 {
  static constexpr std::string_view header = "auction,bidder,price,dateTime,extra,dt,hm";  // the sink's columns
  static auto flow() { return events_of<bid>() | sluice::collect(); }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const bid& b) {
      const std::size_t at = s.size() + fmt::formatted_size("{},{},{},", b.auction, b.bidder, b.price);
      bid_fields(s, b);              // ..., "yyyy-MM-dd HH:mm:ss.SSS,", extra
      std::array<char, 16> stamp{};  // "yyyy-MM-dd HH:mm", copied: s grows below
      s.copy(stamp.data(), stamp.size(), at);
      csv::field(s, std::string_view(stamp.data(), 10));
      csv::field(s, std::string_view(stamp.data() + 11, 5));
    });
  }
};

// ---- q12: processing-time windows ---------------------------------------------------------------
// SELECT bidder, count(*) as bid_count, window_start AS starttime, window_end AS endtime
// FROM TABLE(TUMBLE(TABLE (SELECT *, PROCTIME() as p_time FROM bid), DESCRIPTOR(p_time), 10 s))
// GROUP BY bidder, window_start, window_end
// PROCTIME() is the wall clock when the bid is read (a map stage takes it once per bid), then an
// ordinary tumbling window over it. Its answer depends on the machine's speed: each bidder's
// counts add up to its bids, and that is all a test can pin.
struct q12_bid {
  std::int64_t bidder;
  sluice::millis p_time;
};
struct q12 : bid_counts_per_window {
  static auto flow() {
    return events_of<bid>() |
           sluice::map([](const bid& b) { return q12_bid{b.bidder, sluice::system_processing_time()}; }) |
           sluice::event_time(&q12_bid::p_time) | sluice::key_by(&q12_bid::bidder) |
           sluice::window(sluice::tumbling(10s)) | sluice::aggregate(sluice::count{});
  }
};

// ---- q1: currency conversion --------------------------------------------------------------------
// SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid
struct q1_row {
  std::int64_t auction;
  std::int64_t bidder;
  std::int64_t price_milli;  // 0.908 * price, exactly, in thousandths
  sluice::millis date_time;
  std::string extra;
};
struct q1 {
  static constexpr std::string_view header = "auction,bidder,price,dateTime,extra";
  static auto flow() {
    return events_of<bid>() | sluice::map([](const bid& b) {
             return q1_row{b.auction, b.bidder, to_euro_milli(b.price), b.date_time, b.extra};
           }) |
           sluice::collect();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q1_row& r) {
      csv::field(s, r.auction);
      csv::field(s, r.bidder);
      csv::euros(s, r.price_milli);
      csv::time(s, r.date_time);
      csv::field(s, r.extra);
    });
  }
};

// ---- q2: selection ------------------------------------------------------------------------------
// SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
struct q2_row {
  std::int64_t auction;
  std::int64_t price;
};
struct q2 {
  static constexpr std::string_view header = "auction,price";
  static auto flow() {
    return events_of<bid>() | sluice::filter([](const bid& b) { return b.auction % 123 == 0; }) |
           sluice::map([](const bid& b) { return q2_row{b.auction, b.price}; }) | sluice::collect();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q2_row& r) {
      csv::field(s, r.auction);
      csv::field(s, r.price);
    });
  }
};

// ---- q3: local item suggestion (a regular join) ------------------------------------------------
// SELECT P.name, P.city, P.state, A.id FROM auction A INNER JOIN person P on A.seller = P.id
// WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')
// An unbounded inner join: both sides are kept (filtered first, so only category-10 auctions and
// people of those states), and a pair is emitted once, when its second side arrives.
struct q3_row {
  std::string name;
  std::string city;
  std::string state;
  std::int64_t id;
};
struct q3 {
  static constexpr std::string_view header = "name,city,state,id";
  static auto flow() {
    return events_of_both<person, auction>(
               [](const person& p) { return p.state == "OR" || p.state == "ID" || p.state == "CA"; },
               [](const auction& a) { return a.category == 10; }) |
           sluice::event_time(sluice::by_type(&person::date_time, &auction::date_time)) |
           sluice::key_by(sluice::by_type(&person::id, &auction::seller)) |
           sluice::inner_join<person, auction>(
               [](const person& p, const auction& a) { return q3_row{p.name, p.city, p.state, a.id}; });
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q3_row& r) {
      csv::field(s, r.name);
      csv::field(s, r.city);
      csv::field(s, r.state);
      csv::field(s, r.id);
    });
  }
};

// ---- q5: hot items --------------------------------------------------------------------------------
// Per HOP window (10 s, sliding by 2 s): the auctions whose bid count is the window's largest.
// The SQL joins each (auction, window) count with the window's maximum; here the per-auction
// counts (window rows) feed a second aggregate per window that keeps every row at the maximum.
struct q5 {
  static constexpr std::string_view header = "auction,num";
  static auto flow() {
    return events_of<bid>() | sluice::event_time(&bid::date_time) | sluice::key_by(&bid::auction) |
           sluice::window(sluice::sliding(10s, 2s)) | sluice::aggregate(sluice::count{}) |
           sluice::key_by([](const auto& row) { return row.window; }) |
           sluice::aggregate(sluice::all_max([](const auto& row) { return row.value; }));
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& /*window*/, const auto& hottest) {
      for (const auto& row : hottest) {
        out.row([&](std::string& s) {
          csv::field(s, row.key);
          csv::field(s, row.value);
        });
      }
    });
  }
};

// ---- q7: highest bid ----------------------------------------------------------------------------
// SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B JOIN (
//   SELECT MAX(price) AS maxprice, window_end as dateTime FROM TUMBLE(bid, 10 s) GROUP BY window
// ) B1 ON B.price = B1.maxprice WHERE B.dateTime BETWEEN B1.dateTime - 10 s AND B1.dateTime
// The BETWEEN is inclusive at both ends: a bid at exactly a window's end belongs to the next
// window, yet it is also a row of this one when its price is this window's maximum. So each such
// bid also goes to the window before, as a candidate that does not count toward its maximum.
// The columns follow the sink table's names (auction, bidder, price, ...); the SQL's SELECT lists
// price before bidder and so writes each into the other's column, which we do not copy.
struct q7_candidate {
  bid b;
  bool at_window_end = false;  // from the next window: matches the maximum, does not set it
};
struct highest_bids {  // a monoid over candidates
  struct state {
    std::int64_t max_price = -1;  // over the window's own bids
    std::vector<bid> at_max;      // its own bids at max_price
    std::vector<bid> at_end;      // bids at exactly the window's end (few: one millisecond's)
  };
  [[nodiscard]] static state identity() { return {}; }
  static void offer(state& s, const bid& b) {
    if (b.price > s.max_price) {
      s.max_price = b.price;
      s.at_max.assign(1, b);
    } else if (b.price == s.max_price) {
      s.at_max.push_back(b);
    }
  }
  static void add(state& s, const q7_candidate& c) {
    if (c.at_window_end) {
      s.at_end.push_back(c.b);
    } else {
      offer(s, c.b);
    }
  }
  static void merge(state& s, const state& o) {
    if (o.max_price > s.max_price) {
      s.max_price = o.max_price;
      s.at_max = o.at_max;
    } else if (o.max_price == s.max_price) {
      s.at_max.insert(s.at_max.end(), o.at_max.begin(), o.at_max.end());
    }
    s.at_end.insert(s.at_end.end(), o.at_end.begin(), o.at_end.end());
  }
  [[nodiscard]] static std::vector<bid> result(const state& s) {
    std::vector<bid> out = s.at_max;
    for (const bid& b : s.at_end) {
      if (b.price == s.max_price) {
        out.push_back(b);
      }
    }
    return out;
  }
};
struct q7 {
  static constexpr std::string_view header = "auction,bidder,price,dateTime,extra";
  static constexpr sluice::millis size{10'000};
  static auto flow() {
    return events_of<bid>() | sluice::flat_map<q7_candidate>([](const bid& b, auto&& emit) {
             emit(q7_candidate{b, false});
             if (b.date_time.count() % size.count() == 0) {
               emit(q7_candidate{b, true});  // also the window before's, at its end
             }
           }) |
           sluice::event_time([](const q7_candidate& c) {
             return c.at_window_end ? sluice::millis{c.b.date_time.count() - 1} : c.b.date_time;
           }) |
           sluice::key_by([](const q7_candidate&) { return 0; }) | sluice::window(sluice::tumbling(10s)) |
           sluice::aggregate(highest_bids{});
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& /*key*/, const std::vector<bid>& best) {
      q0::write(best, out);
    });
  }
};

// ---- q8: monitor new users ----------------------------------------------------------------------
// People who opened an account and created an auction in the same 10-second tumbling window:
// SELECT P.id, P.name, P.starttime FROM (people by id, name, window) P JOIN (auctions by seller,
// window) A ON P.id = A.seller AND the windows equal. Both sides group, so a pair of window
// groups gives one row: here one aggregate per (id, window) over both kinds of event keeps the
// distinct names of the people and whether an auction came.
struct new_user_window {  // a monoid over std::variant<person, auction>
  struct state {
    std::vector<std::string> names;  // distinct
    bool auctioned = false;
  };
  [[nodiscard]] static state identity() { return {}; }
  static void add_name(state& s, const std::string& name) {
    if (std::find(s.names.begin(), s.names.end(), name) == s.names.end()) {
      s.names.push_back(name);
    }
  }
  template <class V>
  static void add(state& s, const V& v) {
    if (const auto* p = std::get_if<person>(&v)) {
      add_name(s, p->name);
    } else {
      s.auctioned = true;
    }
  }
  static void merge(state& s, const state& o) {
    for (const std::string& n : o.names) {
      add_name(s, n);
    }
    s.auctioned = s.auctioned || o.auctioned;
  }
  [[nodiscard]] static std::vector<std::string> result(const state& s) {
    return s.auctioned ? s.names : std::vector<std::string>{};
  }
};
struct q8 {
  static constexpr std::string_view header = "id,name,stime";
  static auto flow() {
    return events_of_both<person, auction>() |
           sluice::event_time(sluice::by_type(&person::date_time, &auction::date_time)) |
           sluice::key_by(sluice::by_type(&person::id, &auction::seller)) | sluice::window(sluice::tumbling(10s)) |
           sluice::aggregate(new_user_window{});
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& key, const std::vector<std::string>& names) {
      for (const std::string& name : names) {
        out.row([&](std::string& s) {
          csv::field(s, key.key);
          csv::field(s, name);
          csv::time(s, key.window.start);
        });
      }
    });
  }
};

// ---- q11: user sessions -------------------------------------------------------------------------
// SELECT bidder, count(*) as bid_count, SESSION_START(dateTime, 10 s) as starttime,
//        SESSION_END(dateTime, 10 s) as endtime FROM bid GROUP BY bidder, SESSION(dateTime, 10 s)
// A session's end is its last bid's time plus the gap, as Flink's SESSION_END.
struct q11 : bid_counts_per_window {
  static auto flow() {
    return events_of<bid>() | sluice::event_time(&bid::date_time) | sluice::key_by(&bid::bidder) |
           sluice::window(sluice::session(10s)) | sluice::aggregate(sluice::count{});
  }
};

// ---- q14: calculation (a scalar function) --------------------------------------------------------
// SELECT auction, bidder, 0.908 * price as price, CASE hour ... END AS bidTimeType, dateTime,
// extra, count_char(extra, 'c') AS c_counts FROM bid
// WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000
// HOUR() is the hour of the UTC timestamp.
struct q14_row {
  std::int64_t auction;
  std::int64_t bidder;
  std::int64_t price_milli;
  std::string_view bid_time_type;  // a literal
  sluice::millis date_time;
  std::string extra;
  std::int64_t c_counts;
};
inline std::string_view bid_time_type(sluice::millis t) {
  const std::int64_t hour = ((t.count() / 3'600'000) % 24 + 24) % 24;
  if (hour >= 8 && hour <= 18) {
    return "dayTime";
  }
  return hour <= 6 || hour >= 20 ? "nightTime" : "otherTime";
}
struct q14 {
  static constexpr std::string_view header = "auction,bidder,price,bidTimeType,dateTime,extra,c_counts";
  static auto flow() {
    return events_of<bid>() | sluice::filter([](const bid& b) {
             const std::int64_t euro_milli = to_euro_milli(b.price);
             return euro_milli > 1'000'000'000 && euro_milli < 50'000'000'000;
           }) |
           sluice::map([](const bid& b) {
             return q14_row{b.auction,      b.bidder,  to_euro_milli(b.price), bid_time_type(b.date_time),
                            b.date_time,    b.extra,   std::count(b.extra.begin(), b.extra.end(), 'c')};
           }) |
           sluice::collect();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q14_row& r) {
      csv::field(s, r.auction);
      csv::field(s, r.bidder);
      csv::euros(s, r.price_milli);
      csv::field(s, r.bid_time_type);
      csv::time(s, r.date_time);
      csv::field(s, r.extra);
      csv::field(s, r.c_counts);
    });
  }
};

// ---- q21: add a channel id ------------------------------------------------------------------------
// SELECT auction, bidder, price, channel, CASE lower(channel) WHEN 'apple' THEN '0' ... ELSE
// REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) END AS channel_id FROM bid
// WHERE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) is not null or lower(channel) in (...)
// The pattern is matched by hand: the first "channel_id=" at the start of the url or after an
// '&', up to the next '&' (an empty value is a match, as in the regex).
inline std::optional<std::string_view> url_channel_id(std::string_view url) {
  constexpr std::string_view name = "channel_id=";
  for (std::size_t at = 0; (at = url.find(name, at)) != std::string_view::npos; ++at) {
    if (at == 0 || url[at - 1] == '&') {
      const std::string_view rest = url.substr(at + name.size());
      return rest.substr(0, rest.find('&'));
    }
  }
  return std::nullopt;
}
/// '0'..'3' for Apple, Google, Facebook, Baidu in any case (the SQL's lower(channel) = ...),
/// compared in place: no lowered copy per bid.
inline std::optional<std::string> known_channel_id(std::string_view channel) {
  static constexpr std::string_view known[] = {"apple", "google", "facebook", "baidu"};
  for (std::size_t i = 0; i < std::size(known); ++i) {
    if (std::equal(channel.begin(), channel.end(), known[i].begin(), known[i].end(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      return std::to_string(i);
    }
  }
  return std::nullopt;
}
struct q21_row {
  std::int64_t auction;
  std::int64_t bidder;
  std::int64_t price;
  std::string channel;
  std::string channel_id;
};
struct q21 {
  static constexpr std::string_view header = "auction,bidder,price,channel,channel_id";
  static auto flow() {
    return events_of<bid>() | sluice::flat_map<q21_row>([](const bid& b, auto&& emit) {
             std::optional<std::string> id = known_channel_id(b.channel);
             if (!id) {
               if (const auto from_url = url_channel_id(b.url)) {
                 id = std::string(*from_url);
               }
             }
             if (id) {
               emit(q21_row{b.auction, b.bidder, b.price, b.channel, std::move(*id)});
             }
           }) |
           sluice::collect();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q21_row& r) {
      csv::field(s, r.auction);
      csv::field(s, r.bidder);
      csv::field(s, r.price);
      csv::field(s, r.channel);
      csv::field(s, r.channel_id);
    });
  }
};

// ---- q22: get URL directories ---------------------------------------------------------------------
// SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) as dir1, SPLIT_INDEX(url, '/', 4)
// as dir2, SPLIT_INDEX(url, '/', 5) as dir3 FROM bid
// SPLIT_INDEX is 0-based and NULL past the last piece; NULL is an empty CSV field.
struct q22_row {
  std::int64_t auction;
  std::int64_t bidder;
  std::int64_t price;
  std::string channel;
  std::optional<std::string> dir[3];
};
struct q22 {
  static constexpr std::string_view header = "auction,bidder,price,channel,dir1,dir2,dir3";
  static auto flow() {
    return events_of<bid>() | sluice::map([](const bid& b) {
             q22_row r{b.auction, b.bidder, b.price, b.channel, {}};
             // One pass over the url: pieces 3, 4 and 5 of its split at '/'.
             std::string_view rest = b.url;
             for (std::size_t piece = 0; piece < 6; ++piece) {
               const std::size_t at = rest.find('/');
               if (piece >= 3) {
                 r.dir[piece - 3].emplace(rest.substr(0, at));
               }
               if (at == std::string_view::npos) {
                 break;
               }
               rest.remove_prefix(at + 1);
             }
             return r;
           }) |
           sluice::collect();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q22_row& r) {
      csv::field(s, r.auction);
      csv::field(s, r.bidder);
      csv::field(s, r.price);
      csv::field(s, r.channel);
      for (const auto& d : r.dir) {
        csv::field(s, d ? std::string_view(*d) : std::string_view());
      }
    });
  }
};

// ---- q17: auction statistics per day -------------------------------------------------------------
// SELECT auction, DATE_FORMAT(dateTime, 'yyyy-MM-dd') as day, count(*) AS total_bids, count(*)
// filter (where price < 10000) AS rank1_bids, ... rank2 (10000 <= price < 1000000), rank3
// (price >= 1000000), min(price), max(price), avg(price), sum(price) FROM bid GROUP BY auction, day
// An updating query: its final rows are each (auction, day)'s, which a tumbling window of one
// day gives exactly. AVG of BIGINT is truncated toward zero.
struct q17 {
  static constexpr std::string_view header =
      "auction,day,total_bids,rank1_bids,rank2_bids,rank3_bids,min_price,max_price,avg_price,sum_price";
  static auto flow() {
    auto price = [](const bid& b) { return b.price; };
    return events_of<bid>() | sluice::event_time(&bid::date_time) | sluice::key_by(&bid::auction) |
           sluice::window(sluice::tumbling(24h)) |
           sluice::aggregate(sluice::count{}, sluice::filtered([](const bid& b) { return b.price < 10'000; }, sluice::count{}),
                             sluice::filtered([](const bid& b) { return b.price >= 10'000 && b.price < 1'000'000; },
                                              sluice::count{}),
                             sluice::filtered([](const bid& b) { return b.price >= 1'000'000; }, sluice::count{}),
                             sluice::min(price), sluice::max(price), sluice::sum(price));
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& key, const auto& v) {
      out.row([&](std::string& s) {
        // (clang 14 cannot capture structured bindings: the parts by index)
        const std::int64_t total = std::get<0>(v);
        const std::int64_t sum = std::get<6>(v);
        csv::field(s, key.key);
        csv::field(s, day_of(key.window.start));
        csv::field(s, total);
        csv::field(s, std::get<1>(v));  // rank1..3
        csv::field(s, std::get<2>(v));
        csv::field(s, std::get<3>(v));
        csv::field(s, std::get<4>(v).value_or(0));  // min, max
        csv::field(s, std::get<5>(v).value_or(0));
        csv::field(s, sum / total);  // C++ division truncates toward zero, as BIGINT AVG
        csv::field(s, sum);
      });
    });
  }
};

// ---- q18: find the last bid of each (bidder, auction) ---------------------------------------------
// SELECT ... FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime
// DESC) AS rank_number FROM bid) WHERE rank_number <= 1
// Ties on dateTime go to the highest price, then the greatest (channel, url, extra): a monoid
// that keeps the greatest bid by that order, final at the end of input.
inline auto last_bid_order(const bid& b) { return std::tie(b.date_time, b.price, b.channel, b.url, b.extra); }
struct latest_bid {  // a monoid over bids
  using state = std::optional<bid>;
  [[nodiscard]] static state identity() { return std::nullopt; }
  static void add(state& s, const bid& b) {
    if (!s || last_bid_order(*s) < last_bid_order(b)) {
      s = b;
    }
  }
  static void merge(state& s, const state& o) {
    if (o) {
      add(s, *o);
    }
  }
  [[nodiscard]] static state result(const state& s) { return s; }
};
struct q18 {
  static constexpr std::string_view header = "auction,bidder,price,channel,url,dateTime,extra";
  static auto flow() {
    return events_of<bid>() | sluice::event_time(&bid::date_time) |
           sluice::key_by([](const bid& b) { return std::pair{b.bidder, b.auction}; }) | sluice::aggregate(latest_bid{});
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& /*key*/, const std::optional<bid>& b) {
      out.row([&](std::string& s) { full_bid(s, *b); });
    });
  }
  static void full_bid(std::string& s, const bid& b) {
    csv::field(s, b.auction);
    csv::field(s, b.bidder);
    csv::field(s, b.price);
    csv::field(s, b.channel);
    csv::field(s, b.url);
    csv::time(s, b.date_time);
    csv::field(s, b.extra);
  }
};

// ---- q19: auction top-10 price -------------------------------------------------------------------
// SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS
// rank_number FROM bid) WHERE rank_number <= 10
// Ties by dateTime ascending, then bidder ascending, then (channel, url, extra) ascending: each
// auction's 10 best bids by that order, final at the end of input.
inline bool ranks_before(const bid& a, const bid& b) {
  if (a.price != b.price) {
    return a.price > b.price;
  }
  return std::tie(a.date_time, a.bidder, a.channel, a.url, a.extra) <
         std::tie(b.date_time, b.bidder, b.channel, b.url, b.extra);
}
struct top_ten_bids {  // a monoid over bids
  static constexpr std::size_t k = 10;
  using state = std::vector<bid>;  // sorted by ranks_before, at most k
  [[nodiscard]] static state identity() { return {}; }
  static void add(state& s, const bid& b) {
    if (s.size() == k && !ranks_before(b, s.back())) {
      return;
    }
    s.insert(std::upper_bound(s.begin(), s.end(), b, ranks_before), b);
    if (s.size() > k) {
      s.pop_back();
    }
  }
  static void merge(state& s, const state& o) {
    for (const bid& b : o) {
      add(s, b);
    }
  }
  [[nodiscard]] static const state& result(const state& s) { return s; }
};
struct q19 {
  static constexpr std::string_view header = "auction,bidder,price,channel,url,dateTime,extra,rank_number";
  static auto flow() {
    return events_of<bid>() | sluice::event_time(&bid::date_time) | sluice::key_by(&bid::auction) |
           sluice::aggregate(top_ten_bids{});
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& /*auction*/, const std::vector<bid>& best) {
      for (std::size_t i = 0; i < best.size(); ++i) {
        out.row([&](std::string& s) {
          q18::full_bid(s, best[i]);
          csv::field(s, static_cast<std::int64_t>(i + 1));
        });
      }
    });
  }
};

// ---- q20: expand bids with their auction (a regular join) ----------------------------------------
// SELECT auction, bidder, price, channel, url, B.dateTime, B.extra, itemName, description,
// initialBid, reserve, A.dateTime, expires, seller, category, A.extra
// FROM bid AS B INNER JOIN auction AS A on B.auction = A.id WHERE A.category = 10
struct q20_row {
  bid b;
  auction a;
};
struct q20 {
  static constexpr std::string_view header =
      "auction,bidder,price,channel,url,dateTime,extra,itemName,description,initialBid,reserve,dateTime,expires,"
      "seller,category,extra";
  static auto flow() {
    return events_of_both<auction, bid>([](const auction& a) { return a.category == 10; }) |
           sluice::event_time(sluice::by_type(&auction::date_time, &bid::date_time)) |
           sluice::key_by(sluice::by_type(&auction::id, &bid::auction)) |
           sluice::inner_join<auction, bid>([](const auction& a, const bid& b) { return q20_row{b, a}; });
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q20_row& r) {
      q18::full_bid(s, r.b);
      auction_fields(s, r.a);
    });
  }
};

// ---- q15, q16: bidding statistics per day (and per channel) ---------------------------------------
// SELECT DATE_FORMAT(dateTime, 'yyyy-MM-dd') as day, count(*) AS total_bids, count(*) filter
// (where price < 10000) AS rank1_bids, ..., count(distinct bidder) AS total_bidders, count(distinct
// bidder) filter (...) AS rank1_bidders, ..., count(distinct auction) ... FROM bid GROUP BY day
// q16 groups by channel too and adds max(DATE_FORMAT(dateTime, 'HH:mm')) as minute. A day is a
// tumbling window of 24 hours (UTC); the distinct counts are exact (a set per group).
struct price_rank {
  std::int64_t lo;  // price in [lo, hi)
  std::int64_t hi;
  bool operator()(const bid& b) const { return b.price >= lo && b.price < hi; }
};
inline constexpr price_rank rank1{INT64_MIN, 10'000}, rank2{10'000, 1'000'000}, rank3{1'000'000, INT64_MAX};

inline auto day_statistics() {
  auto bidder = [](const bid& b) { return b.bidder; };
  auto auction_of = [](const bid& b) { return b.auction; };
  using sluice::count;
  using sluice::exact_distinct_count;
  using sluice::filtered;
  return sluice::aggregate(
      count{}, filtered(rank1, count{}), filtered(rank2, count{}), filtered(rank3, count{}),
      exact_distinct_count(bidder), filtered(rank1, exact_distinct_count(bidder)),
      filtered(rank2, exact_distinct_count(bidder)), filtered(rank3, exact_distinct_count(bidder)),
      exact_distinct_count(auction_of), filtered(rank1, exact_distinct_count(auction_of)),
      filtered(rank2, exact_distinct_count(auction_of)), filtered(rank3, exact_distinct_count(auction_of)),
      sluice::max(&bid::date_time));
}
inline constexpr std::string_view day_statistics_header =
    "total_bids,rank1_bids,rank2_bids,rank3_bids,total_bidders,rank1_bidders,rank2_bidders,rank3_bidders,"
    "total_auctions,rank1_auctions,rank2_auctions,rank3_auctions";
/// The twelve counts of day_statistics() (not its latest time).
template <class Stats>
void day_statistics_fields(std::string& s, const Stats& v) {
  std::apply(
      [&](const auto&... x) {
        auto count_field = [&](const auto& c) {
          if constexpr (std::is_integral_v<std::remove_cvref_t<decltype(c)>>) {
            csv::field(s, static_cast<std::int64_t>(c));
          }
        };
        (count_field(x), ...);
      },
      v);
}

struct q15 {
  static constexpr std::string_view header =
      "day,total_bids,rank1_bids,rank2_bids,rank3_bids,total_bidders,rank1_bidders,rank2_bidders,rank3_bidders,"
      "total_auctions,rank1_auctions,rank2_auctions,rank3_auctions";
  static auto flow() {
    return events_of<bid>() | sluice::event_time(&bid::date_time) | sluice::window(sluice::tumbling(24h)) |
           day_statistics();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& key, const auto& v) {
      out.row([&](std::string& s) {
        csv::field(s, day_of(key.window.start));
        day_statistics_fields(s, v);
      });
    });
  }
};

struct q16 {
  static constexpr std::string_view header =
      "channel,day,minute,total_bids,rank1_bids,rank2_bids,rank3_bids,total_bidders,rank1_bidders,rank2_bidders,"
      "rank3_bidders,total_auctions,rank1_auctions,rank2_auctions,rank3_auctions";
  static auto flow() {
    return events_of<bid>() | sluice::event_time(&bid::date_time) | sluice::key_by(&bid::channel) |
           sluice::window(sluice::tumbling(24h)) | day_statistics();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](const auto& key, const auto& v) {
      out.row([&](std::string& s) {
        csv::field(s, key.key);
        csv::field(s, day_of(key.window.start));
        csv::field(s, format_time(*std::get<12>(v)).substr(11, 5));  // HH:mm of the latest bid
        day_statistics_fields(s, v);
      });
    });
  }
};

// ---- q9: winning bids ----------------------------------------------------------------------------
// SELECT id, itemName, ..., extra, auction, bidder, price, bid_dateTime, bid_extra FROM (
//   SELECT A.*, B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime, B.extra AS bid_extra,
//     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum
//   FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
// ) WHERE rownum <= 1
// A process function per auction id (auction_closing, shared with q4 and q6): it keeps the
// auction and its best bid so far (ties as ranks_before: dateTime, then bidder, then the other
// fields ascending), and closes the auction when the watermark passes its expiry, when no later
// bid can count. An auction without a bid in its time has no row (an inner join).
template <class A, class B>
struct auction_state {
  std::optional<A> a;
  std::optional<B> best;
  std::vector<B> early;  // bids handled before their auction (same time, arrived first)
  bool closed = false;   // emitted: later bids are past its expiry
};

/// What q4 and q6 keep of an auction and a bid: the winning price and its time, none of the
/// strings (a batch run holds every event until the end: 64 bytes each instead of ~500).
struct auction_times {
  std::int64_t id = 0;
  sluice::millis date_time{0};
  sluice::millis expires{0};
  std::int64_t seller = 0;
  std::int64_t category = 0;
  auction_times() = default;
  explicit auction_times(const auction& a)
      : id(a.id), date_time(a.date_time), expires(a.expires), seller(a.seller), category(a.category) {}
};
struct bid_price {
  std::int64_t auction = 0;
  std::int64_t price = 0;
  sluice::millis date_time{0};
  bid_price() = default;
  explicit bid_price(const bid& b) : auction(b.auction), price(b.price), date_time(b.date_time) {}
};
/// ranks_before's first two keys: the same winner's price and dateTime as with the whole bid.
inline bool ranks_before(const bid_price& a, const bid_price& b) {
  return a.price != b.price ? a.price > b.price : a.date_time < b.date_time;
}

/// The auctions and their bids (as A and B: the events themselves, or what a query keeps of
/// them), each auction closed once the watermark passes its expiry: on_open(ctx, a) when the
/// auction is handled (at its dateTime), on_close(ctx, a, best bid or nullopt) at expires + 1 ms,
/// after every bid at `expires`. Rows of type Row.
template <class Row, class A = auction, class B = bid, class OnOpen, class OnClose>
auto auction_closing(OnOpen on_open, OnClose on_close) {
  using side = std::variant<A, B>;
  using state = auction_state<A, B>;
  const auto offer = [](state& s, const B& b) {
    if (b.date_time >= s.a->date_time && b.date_time <= s.a->expires && (!s.best || ranks_before(b, *s.best))) {
      s.best = b;
    }
  };
  auto on_event = [on_open, offer](auto& ctx, const side& v) {
    state& s = ctx.state();
    if (s.closed) {
      return;
    }
    if (const auto* a = std::get_if<A>(&v)) {
      s.a = *a;
      for (const B& b : std::exchange(s.early, {})) {
        offer(s, b);
      }
      on_open(ctx, *a);
      ctx.timer_at(sluice::millis{a->expires.count() + 1});  // after every bid at `expires`
    } else if (s.a) {
      offer(s, std::get<B>(v));
    } else {
      s.early.push_back(std::get<B>(v));
    }
  };
  auto on_timer = [on_close](auto& ctx) {
    state& s = ctx.state();
    on_close(ctx, *s.a, s.best);
    s = state{};
    s.closed = true;
  };
  return sluice::flow<event>() | sluice::flat_map<side>([](const event& e, auto&& emit) {
           if (const auto* a = std::get_if<auction>(&e)) {
             emit(side{A(*a)});
           } else if (const auto* b = std::get_if<bid>(&e)) {
             emit(side{B(*b)});
           }
         }) |
         sluice::event_time(sluice::by_type(&A::date_time, &B::date_time)) |
         sluice::key_by(sluice::by_type(&A::id, &B::auction)) | sluice::process<Row, state>(on_event, on_timer);
}

struct q9_row {
  auction a;
  bid b;
};
struct q9 {
  static constexpr std::string_view header =
      "id,itemName,description,initialBid,reserve,dateTime,expires,seller,category,extra,auction,bidder,price,"
      "bid_dateTime,bid_extra";
  static auto flow() {
    return auction_closing<q9_row>([](auto& /*ctx*/, const auction& /*a*/) {},
                                   [](auto& ctx, const auction& a, const std::optional<bid>& best) {
                                     if (best) {
                                       ctx.emit(q9_row{a, *best});
                                     }
                                   });
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q9_row& r) {
      csv::field(s, r.a.id);
      auction_fields(s, r.a);
      csv::field(s, r.b.auction);
      csv::field(s, r.b.bidder);
      csv::field(s, r.b.price);
      csv::time(s, r.b.date_time);
      csv::field(s, r.b.extra);
    });
  }
};

// ---- q4: average price for a category -----------------------------------------------------------
// SELECT Q.category, AVG(Q.final) FROM (
//   SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
//   WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires GROUP BY A.id, A.category
// ) Q GROUP BY Q.category
// The inner query is q9's closing (the winning bid's price is the MAX), its rows go on into an
// aggregate per category: the process function's rows chained into another stage. AVG of a
// BIGINT is a BIGINT, truncated toward zero. An updating query: its final rows at end of input.
struct closing_price {
  std::int64_t category;
  std::int64_t price;
};
struct q4 {
  static constexpr std::string_view header = "id,final";  // the suite's sink columns
  static auto flow() {
    return auction_closing<closing_price, auction_times, bid_price>(
               [](auto& /*ctx*/, const auction_times& /*a*/) {},
               [](auto& ctx, const auction_times& a, const std::optional<bid_price>& best) {
                                            if (best) {
                                              ctx.emit(closing_price{a.category, best->price});
                                            }
                                          }) |
           sluice::key_by(&closing_price::category) |
           sluice::aggregate(sluice::sum(&closing_price::price), sluice::count{});
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    rows.for_each([&](std::int64_t category, const auto& sum_count) {
      out.row([&](std::string& s) {
        csv::field(s, category);
        csv::field(s, std::get<0>(sum_count) / std::get<1>(sum_count));
      });
    });
  }
};

// ---- q6: average selling price by seller ---------------------------------------------------------
// SELECT Q.seller, AVG(Q.price) OVER (PARTITION BY Q.seller ORDER BY Q.dateTime
//                                     ROWS BETWEEN 10 PRECEDING AND CURRENT ROW)
// FROM (each auction's winning bid: A.id, A.seller, B.price, B.dateTime, as in q9)
// One row per auction with a winning bid: the average of its price and the prices of up to 10
// of the same seller's auctions before it, ordered by the winning bid's dateTime (ties: the
// smaller auction id first, a choice the SQL leaves open). AVG truncated toward zero.
//
// Two process functions in a row. The first closes the auctions (q9's) and tells the second,
// keyed by seller, both when an auction opens and when it closes. A winning bid is ordered by its
// dateTime, which is before its auction closes, so the second holds each closed auction until no
// auction of the seller can still win with an earlier bid: until every auction of the seller
// that is still open started after it (an open auction's winner will be at or after its start;
// one not yet opened starts after the current time, and so after every held bid). Exact in both
// modes, with state bounded by the seller's open auctions and 10 prices.
struct seller_auction {
  std::int64_t seller;
  std::int64_t auction;
  sluice::millis opened;                    // the auction's dateTime
  std::optional<sluice::millis> bid_time;   // closed with a winner: its dateTime ...
  std::int64_t price = 0;                   // ... and price
  bool closed = false;
};
struct q6_row {
  std::int64_t seller;
  std::int64_t avg_price;
};
struct seller_state {
  using order = std::pair<sluice::millis, std::int64_t>;  // (time, auction id)
  std::set<order> open;                       // (dateTime, id) of the seller's open auctions
  std::map<order, std::int64_t> held;         // (bid dateTime, id) -> price, closed, not yet emitted
  std::deque<std::int64_t> last_prices;       // the last 11 emitted, oldest first
  std::int64_t last_sum = 0;
};
struct q6 {
  static constexpr std::string_view header = "seller,avg_price";  // the suite's sink columns
  static constexpr std::size_t rows_in_frame = 11;                 // 10 preceding and the current
  static auto flow() {
    return auction_closing<seller_auction, auction_times, bid_price>(
               [](auto& ctx, const auction_times& a) {
                 ctx.emit(seller_auction{a.seller, a.id, a.date_time, std::nullopt, 0, false});
               },
               [](auto& ctx, const auction_times& a, const std::optional<bid_price>& best) {
                 ctx.emit(best ? seller_auction{a.seller, a.id, a.date_time, best->date_time, best->price, true}
                               : seller_auction{a.seller, a.id, a.date_time, std::nullopt, 0, true});
               }) |
           sluice::key_by(&seller_auction::seller) |
           sluice::process<q6_row, seller_state>([](auto& ctx, const seller_auction& e) {
             seller_state& s = ctx.state();
             const seller_state::order opened{e.opened, e.auction};
             if (!e.closed) {
               s.open.insert(opened);
               return;
             }
             s.open.erase(opened);
             if (e.bid_time) {
               s.held.emplace(seller_state::order{*e.bid_time, e.auction}, e.price);
             }
             // Emit, in order, what no open auction can precede.
             while (!s.held.empty() && (s.open.empty() || s.held.begin()->first < *s.open.begin())) {
               const std::int64_t price = s.held.begin()->second;
               s.held.erase(s.held.begin());
               s.last_prices.push_back(price);
               s.last_sum += price;
               if (s.last_prices.size() > rows_in_frame) {
                 s.last_sum -= s.last_prices.front();
                 s.last_prices.pop_front();
               }
               ctx.emit(q6_row{ctx.key(), s.last_sum / static_cast<std::int64_t>(s.last_prices.size())});
             }
           });
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q6_row& r) {
      csv::field(s, r.seller);
      csv::field(s, r.avg_price);
    });
  }
};

// ---- q13: bounded side input join ---------------------------------------------------------------
// SELECT B.auction, B.bidder, B.price, B.dateTime, S.value FROM (SELECT *, PROCTIME() as p_time
// FROM bid) B JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S ON mod(B.auction, 10000) = S.key
// The side input is a table the host loads (a CSV file of key,value lines, no header): a lookup
// join, inner (a bid whose key is missing has no row). The table stands still during a run, so
// the answer does not depend on processing time.
using side_table = sluice::lookup_table<std::int64_t, std::string>;
struct q13_row {
  std::int64_t auction;
  std::int64_t bidder;
  std::int64_t price;
  sluice::millis date_time;
  std::string value;
};
struct q13 {
  static constexpr std::string_view header = "auction,bidder,price,dateTime,value";
  static auto flow(const side_table& side) {
    return events_of<bid>() |
           sluice::lookup_join(side, [](const bid& b) { return b.auction % 10'000; },
                               [](const bid& b, const std::string& value) {
                                 return q13_row{b.auction, b.bidder, b.price, b.date_time, value};
                               }) |
           sluice::collect();
  }
  template <class Rows, class Out>
  static void write(const Rows& rows, Out& out) {
    csv::each_row(rows, out, [](std::string& s, const q13_row& r) {
      csv::field(s, r.auction);
      csv::field(s, r.bidder);
      csv::field(s, r.price);
      csv::time(s, r.date_time);
      csv::field(s, r.value);
    });
  }
};

}  // namespace nexmark
