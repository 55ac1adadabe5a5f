// The Nexmark model: an online auction's people, auctions and bids, as one stream of events, and
// their JSON lines form (the Nexmark suite's Kafka/JSON table):
//
//   {"event_type":0,"person":{"id":..,"name":"..",..,"dateTime":"2015-07-15 00:00:00.000","extra":".."},"auction":null,"bid":null}
//   {"event_type":1,"person":null,"auction":{"id":..,"itemName":"..",..},"bid":null}
//   {"event_type":2,"person":null,"auction":null,"bid":{"auction":..,"bidder":..,"price":..,..}}
//
// Timestamps are UTC "YYYY-MM-DD HH:MM:SS.mmm"; ids and prices are integers. An event's time is
// its dateTime.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "sluice/core/time.hpp"

namespace nexmark {

struct person {
  std::int64_t id = 0;
  std::string name;
  std::string email_address;
  std::string credit_card;
  std::string city;
  std::string state;
  sluice::millis date_time{0};
  std::string extra;
  friend bool operator==(const person&, const person&) = default;
};

struct auction {
  std::int64_t id = 0;
  std::string item_name;
  std::string description;
  std::int64_t initial_bid = 0;
  std::int64_t reserve = 0;
  sluice::millis date_time{0};
  sluice::millis expires{0};
  std::int64_t seller = 0;
  std::int64_t category = 0;
  std::string extra;
  friend bool operator==(const auction&, const auction&) = default;
};

struct bid {
  std::int64_t auction = 0;
  std::int64_t bidder = 0;
  std::int64_t price = 0;
  std::string channel;
  std::string url;
  sluice::millis date_time{0};
  std::string extra;
  friend bool operator==(const bid&, const bid&) = default;
};

/// One event of the stream: event_type 0, 1 or 2 is the variant's index.
using event = std::variant<person, auction, bid>;

inline sluice::millis event_time(const event& e) {
  return std::visit([](const auto& x) { return x.date_time; }, e);
}

}  // namespace nexmark
