// Metrics in the Prometheus text exposition format, version 0.0.4 (what GET /metrics answers):
//
//   # HELP sluice_events_total Records that entered the flow.
//   # TYPE sluice_events_total counter
//   sluice_events_total{query="by_region"} 1000
//
// prometheus_text writes counters, gauges and histograms with labels: one HELP/TYPE pair per
// family (the first time a name is written), `_total` appended to counter names, a histogram as
// cumulative `_bucket{le="..."}` lines ending with le="+Inf", then `_sum` and `_count`. Label
// values are escaped as the format asks (backslash, double quote, newline). Standard library
// only: the Beast server just sends the string.
//
// Performance notes: one string append per sample; nothing here is on an event's path.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

/// The content type of the text format a scraper expects.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

struct prometheus_label {
  std::string_view name;
  std::string_view value;
};
using prometheus_labels = std::span<const prometheus_label>;

/// A histogram's state: `bounds` are the buckets' upper bounds (ascending, +Inf implied) and
/// `counts[i]` the observations in (bounds[i-1], bounds[i]], NOT cumulative (the writer sums
/// them); `counts` has one more element than `bounds`: those above the last bound.
struct histogram_snapshot {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  double sum = 0;
};

class prometheus_text {
 public:
  /// A counter `name` + "_total" (name without the suffix).
  void counter(std::string_view name, std::string_view help, prometheus_labels labels, double value) {
    std::string full(name);
    full += "_total";
    family(full, help, "counter");
    sample(full, labels, {}, value);
  }

  void gauge(std::string_view name, std::string_view help, prometheus_labels labels, double value) {
    family(name, help, "gauge");
    sample(name, labels, {}, value);
  }

  void histogram(std::string_view name, std::string_view help, prometheus_labels labels, const histogram_snapshot& h) {
    family(name, help, "histogram");
    const std::string bucket = std::string(name) + "_bucket";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
      cumulative += i < h.counts.size() ? h.counts[i] : 0;
      const double le = i < h.bounds.size() ? h.bounds[i] : std::numeric_limits<double>::infinity();
      sample(bucket, labels, number(le), static_cast<double>(cumulative));
    }
    sample(std::string(name) + "_sum", labels, {}, h.sum);
    sample(std::string(name) + "_count", labels, {}, static_cast<double>(cumulative));
  }

  [[nodiscard]] const std::string& str() const& { return out_; }
  [[nodiscard]] std::string str() && { return std::move(out_); }

  /// A sample value as the format writes it: integers without a fraction, +Inf/-Inf/NaN spelled out.
  static std::string number(double v) {
    if (std::isnan(v)) {
      return "NaN";
    }
    if (std::isinf(v)) {
      return v > 0 ? "+Inf" : "-Inf";
    }
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return {buf, end};
  }

  /// A label value escaped for the text format: \ -> \\, " -> \", newline -> \n.
  static std::string escape_label_value(std::string_view v) { return escape(v, true); }

 private:
  // Backslash and newline; double quotes too in label values (HELP text keeps them).
  static std::string escape(std::string_view v, bool quotes) {
    std::string out;
    out.reserve(v.size());
    for (const char c : v) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"' && quotes) {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    return out;
  }

  void family(std::string_view name, std::string_view help, std::string_view type) {
    if (!families_.emplace(name).second) {
      return;  // one HELP/TYPE per family, however many label sets
    }
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape(help, false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, prometheus_labels labels, std::string_view le, double value) {
    out_ += name;
    if (!labels.empty() || !le.empty()) {
      out_ += '{';
      bool first = true;
      const auto add = [&](std::string_view n, std::string_view v) {
        if (!first) {
          out_ += ',';
        }
        first = false;
        out_ += n;
        out_ += "=\"";
        out_ += escape_label_value(v);
        out_ += '"';
      };
      for (const auto& l : labels) {
        add(l.name, l.value);
      }
      if (!le.empty()) {
        add("le", le);
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }

  std::string out_;
  std::set<std::string, std::less<>> families_;
};

}  // namespace sluice
