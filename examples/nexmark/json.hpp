// Nexmark events as JSON lines (model.hpp shows the shape): append_json writes one, parse_event
// reads one with simdjson's On Demand API, for sluice::lines_of (stream mode) and
// sluice::lines_file (batch mode). Keys may come in any order; unknown keys are skipped; the
// alternative that is not null must be the one event_type names.
#pragma once

#include <simdjson.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <variant>

#include <fmt/core.h>

#include "model.hpp"
#include "sluice/io/json_text.hpp"
#include "sluice/io/iso8601.hpp"

namespace nexmark {

/// "2015-07-15 00:00:00.000" (UTC), the suite's TIMESTAMP(3) text.
inline void append_time(std::string& out, sluice::millis t) {
  std::string iso = sluice::format_iso8601(t, true);  // 2015-07-15T00:00:00.000Z
  iso[10] = ' ';
  iso.pop_back();
  out += iso;
}

inline std::string format_time(sluice::millis t) {
  std::string s;
  append_time(s, t);
  return s;
}

/// Parses "YYYY-MM-DD HH:MM:SS[.fff]" (a 'T' for the space and a trailing 'Z' are accepted too).
inline const char* parse_time(std::string_view s, sluice::millis& out) {
  std::array<char, 32> buf{};
  if (s.empty() || s.size() + 1 > buf.size()) {
    return "not a timestamp (YYYY-MM-DD HH:MM:SS.fff)";
  }
  std::memcpy(buf.data(), s.data(), s.size());
  std::size_t n = s.size();
  if (s.back() != 'Z') {
    buf[n++] = 'Z';
  }
  return sluice::iso8601_utc::parse(std::string_view(buf.data(), n), out);
}

namespace detail {
inline void append_string(std::string& out, std::string_view key, std::string_view value) {
  out += '"';
  out += key;
  out += "\":";
  sluice::detail::append_json_string(out, value);
  out += ',';
}
inline void append_int(std::string& out, std::string_view key, std::int64_t value) {
  fmt::format_to(std::back_inserter(out), "\"{}\":{},", key, value);
}
inline void append_time_field(std::string& out, std::string_view key, sluice::millis value) {
  out += '"';
  out += key;
  out += "\":\"";
  append_time(out, value);
  out += "\",";
}
inline void close_object(std::string& out) { out.back() = '}'; }  // the last field's ','
}  // namespace detail

/// One event as a JSON line, newline included.
inline void append_json(std::string& out, const event& e) {
  using namespace detail;
  fmt::format_to(std::back_inserter(out), "{{\"event_type\":{},", e.index());
  out += "\"person\":";
  if (const auto* p = std::get_if<person>(&e)) {
    out += '{';
    append_int(out, "id", p->id);
    append_string(out, "name", p->name);
    append_string(out, "emailAddress", p->email_address);
    append_string(out, "creditCard", p->credit_card);
    append_string(out, "city", p->city);
    append_string(out, "state", p->state);
    append_time_field(out, "dateTime", p->date_time);
    append_string(out, "extra", p->extra);
    close_object(out);
  } else {
    out += "null";
  }
  out += ",\"auction\":";
  if (const auto* a = std::get_if<auction>(&e)) {
    out += '{';
    append_int(out, "id", a->id);
    append_string(out, "itemName", a->item_name);
    append_string(out, "description", a->description);
    append_int(out, "initialBid", a->initial_bid);
    append_int(out, "reserve", a->reserve);
    append_time_field(out, "dateTime", a->date_time);
    append_time_field(out, "expires", a->expires);
    append_int(out, "seller", a->seller);
    append_int(out, "category", a->category);
    append_string(out, "extra", a->extra);
    close_object(out);
  } else {
    out += "null";
  }
  out += ",\"bid\":";
  if (const auto* b = std::get_if<bid>(&e)) {
    out += '{';
    append_int(out, "auction", b->auction);
    append_int(out, "bidder", b->bidder);
    append_int(out, "price", b->price);
    append_string(out, "channel", b->channel);
    append_string(out, "url", b->url);
    append_time_field(out, "dateTime", b->date_time);
    append_string(out, "extra", b->extra);
    close_object(out);
  } else {
    out += "null";
  }
  out += "}\n";
}

namespace detail {
namespace od = simdjson::ondemand;

/// The fields a reader of one object sets: the name, and where it goes.
struct field_reader {
  const char* reason = nullptr;
  unsigned seen = 0;  // a bit per required field

  void fail(const char* why) {
    if (reason == nullptr) {
      reason = why;
    }
  }
  void integer(od::value v, std::int64_t& out, unsigned bit) {
    if (v.get_int64().get(out) != simdjson::SUCCESS) {
      fail("a Nexmark id, price or category is not an integer");
    }
    seen |= bit;
  }
  void text(od::value v, std::string& out, unsigned bit) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) {
      fail("a Nexmark text field is not a string");
    }
    out.assign(s);
    seen |= bit;
  }
  void time(od::value v, sluice::millis& out, unsigned bit) {
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS || parse_time(s, out) != nullptr) {
      fail("a Nexmark dateTime is not a timestamp (YYYY-MM-DD HH:MM:SS.fff)");
    }
    seen |= bit;
  }
};

inline const char* read_person(od::object o, person& p) {
  field_reader r;
  for (auto field : o) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return "invalid JSON in person";
    }
    const od::value v = field.value();
    if (key == "id") r.integer(v, p.id, 1U);
    else if (key == "name") r.text(v, p.name, 2U);
    else if (key == "emailAddress") r.text(v, p.email_address, 4U);
    else if (key == "creditCard") r.text(v, p.credit_card, 8U);
    else if (key == "city") r.text(v, p.city, 16U);
    else if (key == "state") r.text(v, p.state, 32U);
    else if (key == "dateTime") r.time(v, p.date_time, 64U);
    else if (key == "extra") r.text(v, p.extra, 128U);
  }
  return r.reason != nullptr ? r.reason : r.seen == 255U ? nullptr : "a person lacks a field";
}

inline const char* read_auction(od::object o, auction& a) {
  field_reader r;
  for (auto field : o) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return "invalid JSON in auction";
    }
    const od::value v = field.value();
    if (key == "id") r.integer(v, a.id, 1U);
    else if (key == "itemName") r.text(v, a.item_name, 2U);
    else if (key == "description") r.text(v, a.description, 4U);
    else if (key == "initialBid") r.integer(v, a.initial_bid, 8U);
    else if (key == "reserve") r.integer(v, a.reserve, 16U);
    else if (key == "dateTime") r.time(v, a.date_time, 32U);
    else if (key == "expires") r.time(v, a.expires, 64U);
    else if (key == "seller") r.integer(v, a.seller, 128U);
    else if (key == "category") r.integer(v, a.category, 256U);
    else if (key == "extra") r.text(v, a.extra, 512U);
  }
  return r.reason != nullptr ? r.reason : r.seen == 1023U ? nullptr : "an auction lacks a field";
}

inline const char* read_bid(od::object o, bid& b) {
  field_reader r;
  for (auto field : o) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return "invalid JSON in bid";
    }
    const od::value v = field.value();
    if (key == "auction") r.integer(v, b.auction, 1U);
    else if (key == "bidder") r.integer(v, b.bidder, 2U);
    else if (key == "price") r.integer(v, b.price, 4U);
    else if (key == "channel") r.text(v, b.channel, 8U);
    else if (key == "url") r.text(v, b.url, 16U);
    else if (key == "dateTime") r.time(v, b.date_time, 32U);
    else if (key == "extra") r.text(v, b.extra, 64U);
  }
  return r.reason != nullptr ? r.reason : r.seen == 127U ? nullptr : "a bid lacks a field";
}

/// Reads `line` into `out`, or says why it is not a Nexmark event.
inline const char* read_event(od::document& doc, event& out) {
  od::object top;
  if (doc.get_object().get(top) != simdjson::SUCCESS) {
    return "expected a JSON object";
  }
  std::int64_t type = -1;
  int present = -1;  // the alternative that was not null
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return "invalid JSON";
    }
    od::value v = field.value();
    int which = key == "person" ? 0 : key == "auction" ? 1 : key == "bid" ? 2 : -1;
    if (key == "event_type") {
      if (v.get_int64().get(type) != simdjson::SUCCESS || type < 0 || type > 2) {
        return "event_type is not 0, 1 or 2";
      }
      continue;
    }
    if (which < 0 || v.is_null()) {
      continue;
    }
    if (present >= 0) {
      return "more than one of person, auction and bid is set";
    }
    present = which;
    od::object o;
    if (v.get_object().get(o) != simdjson::SUCCESS) {
      return "person, auction or bid is not an object";
    }
    const char* why = nullptr;
    if (which == 0) {
      why = read_person(o, out.emplace<person>());
    } else if (which == 1) {
      why = read_auction(o, out.emplace<auction>());
    } else {
      why = read_bid(o, out.emplace<bid>());
    }
    if (why != nullptr) {
      return why;
    }
  }
  if (type < 0) {
    return "no event_type";
  }
  if (present != type) {
    return "event_type does not match the alternative that is set";
  }
  return nullptr;
}
}  // namespace detail

/// Parses one JSON line (without its newline) into `out`; nullptr, or the reason it is bad. For
/// sluice::lines_of and sluice::lines_file: each thread keeps its own simdjson parser and padded
/// copy of the line.
inline const char* parse_event(std::string_view line, event& out) {
  thread_local simdjson::ondemand::parser parser;
  thread_local std::string padded;
  padded.assign(line);
  padded.resize(line.size() + simdjson::SIMDJSON_PADDING);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded.data(), line.size(), padded.size()).get(doc) != simdjson::SUCCESS) {
    return "invalid JSON";
  }
  const char* why = nullptr;
  try {  // On Demand reports some structural errors only by exception when iterating
    why = detail::read_event(doc, out);
  } catch (const simdjson::simdjson_error&) {
    why = "invalid JSON";
  }
  return why;
}

}  // namespace nexmark
