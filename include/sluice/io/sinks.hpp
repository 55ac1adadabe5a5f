// Sinks for results: a CSV file, a JSON-lines file, or any callable. A sink is called as
// sink(key, value) for each row of a result store, in key order (sluice::emit), and flattens
// keys and values into cells: tuples into their parts, a windowed key into key, window start
// and window end, an optional into its value or an empty cell.
#pragma once

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core/key.hpp"
#include "sluice/core/time.hpp"
#include "sluice/core/window.hpp"
#include "sluice/io/csv_text.hpp"
#include "sluice/io/json_text.hpp"
#include "sluice/io/text_file.hpp"

namespace sluice {

/// Receives the cells of one row; a string cell is quoted where the format needs it.
class cell_writer {
 public:
  virtual ~cell_writer() = default;
  virtual void number(std::string_view text) = 0;
  virtual void text(std::string_view text) = 0;
  virtual void empty() = 0;
};

/// Customisation point: how a value becomes cells. Overload `write_cells(cell_writer&, const T&)`
/// in T's namespace for your own types.
template <class T>
requires std::is_arithmetic_v<T>
void write_cells(cell_writer& out, T v) {
  if constexpr (std::is_same_v<T, bool>) {
    out.number(v ? "true" : "false");
  } else {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.number(std::string_view(buf, static_cast<std::size_t>(end - buf)));
  }
}
inline void write_cells(cell_writer& out, std::string_view s) {
  out.text(s);
}
inline void write_cells(cell_writer& out, const std::string& s) {
  out.text(s);
}
inline void write_cells(cell_writer& out, const char* s) {
  out.text(s);
}
inline void write_cells(cell_writer& out, millis t) {
  write_cells(out, t.count());
}
inline void write_cells(cell_writer& out, const time_window& w) {
  write_cells(out, w.start);
  write_cells(out, w.end);
}
inline void write_cells(cell_writer& out, const count_window_index& w) {
  write_cells(out, w.index);
}
inline void write_cells(cell_writer& /*out*/, const unit_key& /*unit*/) {}

template <class T>
void write_cells(cell_writer& out, const std::optional<T>& v);
template <class... Ts>
void write_cells(cell_writer& out, const std::tuple<Ts...>& t);
template <class A, class B>
void write_cells(cell_writer& out, const std::pair<A, B>& p);
template <class K, class W>
void write_cells(cell_writer& out, const windowed_key<K, W>& k);

template <class T>
void write_cells(cell_writer& out, const std::optional<T>& v) {
  if (v) {
    write_cells(out, *v);
  } else {
    out.empty();
  }
}
template <class... Ts>
void write_cells(cell_writer& out, const std::tuple<Ts...>& t) {
  std::apply([&](const auto&... parts) { (write_cells(out, parts), ...); }, t);
}
template <class A, class B>
void write_cells(cell_writer& out, const std::pair<A, B>& p) {
  write_cells(out, p.first);
  write_cells(out, p.second);
}
template <class K, class W>
void write_cells(cell_writer& out, const windowed_key<K, W>& k) {
  write_cells(out, k.key);
  write_cells(out, k.window);
}

namespace detail {
class csv_cells final : public cell_writer {
 public:
  std::string line;
  void number(std::string_view t) override { sep() += t; }
  void text(std::string_view t) override { append_csv_field(sep(), t); }
  void empty() override { sep(); }
  void start() {
    line.clear();
    first_ = true;
  }

 private:
  std::string& sep() {
    if (!first_) {
      line += ',';
    }
    first_ = false;
    return line;
  }
  bool first_ = true;
};

class json_cells final : public cell_writer {
 public:
  explicit json_cells(std::vector<std::string> names) : names_(std::move(names)) {}
  std::string line;
  void number(std::string_view t) override { name() += t; }
  void text(std::string_view t) override { append_json_string(name(), t); }
  void empty() override { name() += "null"; }
  void start() {
    line = "{";
    index_ = 0;
  }
  void finish() { line += "}\n"; }
  [[nodiscard]] std::size_t cells() const { return index_; }

 private:
  std::string& name() {
    if (index_ > 0) {
      line += ',';
    }
    const std::string fallback = "c" + std::to_string(index_ + 1);
    append_json_string(line, index_ < names_.size() ? std::string_view(names_[index_]) : std::string_view(fallback));
    line += ':';
    ++index_;
    return line;
  }
  std::vector<std::string> names_;
  std::size_t index_ = 0;
};
}  // namespace detail

/// A CSV file with a header row; each call writes one row of key cells then value cells.
class csv_sink {
 public:
  csv_sink(const std::string& path, const std::vector<std::string>& header) : file_(path) {
    cells_.start();
    for (const auto& h : header) {
      cells_.text(h);
    }
    file_.write(cells_.line += '\n');
  }
  template <class K, class V>
  void operator()(const K& key, const V& value) {
    cells_.start();
    write_cells(cells_, key);
    write_cells(cells_, value);
    cells_.line += '\n';
    file_.write(cells_.line);
  }
  void close() { file_.close(); }

 private:
  text_file file_;
  detail::csv_cells cells_;
};

/// A JSON-lines file: one object per row, cells named in order by `names` (c1, c2, ... beyond).
class jsonl_sink {
 public:
  jsonl_sink(const std::string& path, std::vector<std::string> names) : file_(path), cells_(std::move(names)) {}
  template <class K, class V>
  void operator()(const K& key, const V& value) {
    cells_.start();
    write_cells(cells_, key);
    write_cells(cells_, value);
    cells_.finish();
    file_.write(cells_.line);
  }
  void close() { file_.close(); }

 private:
  text_file file_;
  detail::json_cells cells_;
};

/// Send every row of `store` to `sink(key, value)`, in key order.
template <class Store, class Sink>
void emit(const Store& store, Sink&& sink) {
  for (const auto& row : store.scan()) {
    sink(row.key, row.value);
  }
}

}  // namespace sluice
