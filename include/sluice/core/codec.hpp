// codec<T>: how a value of state is written into a checkpoint and read back. A customisation
// point in the manner of fmt::formatter: specialise sluice::codec<T> with
//   static void write(byte_writer& out, const T& v);
//   static void read(byte_reader& in, T& v);      // may throw codec_error through `in`
// or give a state struct a `fields()` member returning std::tie of its members (const and
// non-const), which the codec writes one after another. Provided: bool, integers and enums
// (LEB128 varints, zigzag for signed), floating point (its bits), durations and millis, std::string,
// std::monostate, pair, tuple, optional, vector, array, and the standard maps and sets.
//
// The reader never trusts a length: every count and size is checked against the bytes left
// before anything is allocated for it, and a value that does not fit its type is an error,
// so a corrupt checkpoint is refused with its byte position and never half-applied.
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/core/detail/bytes.hpp"
#include "sluice/core/time.hpp"

namespace sluice {

/// A checkpoint's bytes that do not decode: "byte 42: length 9000 exceeds the 12 bytes left".
class codec_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Appends encoded values to a string.
class byte_writer {
 public:
  explicit byte_writer(std::string& out) : out_(&out) {}
  void put_varint(std::uint64_t v) {
    char buf[10];
    out_->append(buf, static_cast<std::size_t>(detail::put_varint(buf, v) - buf));
  }
  void put_fixed64(std::uint64_t v) {
    char buf[8];
    detail::put_le(buf, v);
    out_->append(buf, sizeof buf);
  }
  void put_bytes(std::string_view bytes) { out_->append(bytes); }
  [[nodiscard]] std::size_t size() const { return out_->size(); }

 private:
  std::string* out_;
};

/// Reads encoded values from a byte range, checking every length against what is left.
class byte_reader {
 public:
  explicit byte_reader(std::string_view bytes) : bytes_(bytes) {}

  std::uint64_t get_varint() {
    std::uint64_t v = 0;
    const char* p = bytes_.data() + pos_;
    const char* end = detail::get_varint(p, bytes_.data() + bytes_.size(), v);
    if (end == nullptr) {
      fail("a varint runs past the end or exceeds 64 bits");
    }
    pos_ += static_cast<std::size_t>(end - p);
    return v;
  }
  std::uint64_t get_fixed64() { return detail::get_le<std::uint64_t>(get_bytes(8).data()); }
  /// The next `n` bytes, as a view of the input.
  std::string_view get_bytes(std::uint64_t n) {
    if (n > left()) {
      fail("length " + std::to_string(n) + " exceeds the " + std::to_string(left()) + " bytes left");
    }
    const std::string_view b = bytes_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return b;
  }
  /// A count of elements that take at least one byte each: at most the bytes left.
  std::size_t get_count() {
    const std::uint64_t n = get_varint();
    if (n > left()) {
      fail("count " + std::to_string(n) + " exceeds the " + std::to_string(left()) + " bytes left");
    }
    return static_cast<std::size_t>(n);
  }

  [[nodiscard]] std::size_t left() const { return bytes_.size() - pos_; }
  [[nodiscard]] std::size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& why) const { fail_at(pos_, why); }
  /// For a value found wrong once read: the error names where it began.
  [[noreturn]] static void fail_at(std::size_t pos, const std::string& why) {
    throw codec_error("byte " + std::to_string(pos) + ": " + why);
  }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

/// The customisation point; see the top of this header.
template <class T, class Enable = void>
struct codec;

template <class T>
concept encodable = requires(byte_writer& w, byte_reader& r, const T& c, T& v) {
  codec<T>::write(w, c);
  codec<T>::read(r, v);
};

namespace detail {
/// Whether every type of a tuple (of references, as std::tie gives) has a codec.
template <class Tuple>
struct all_encodable : std::false_type {};
template <class... Ts>
struct all_encodable<std::tuple<Ts...>> : std::bool_constant<(encodable<std::remove_cvref_t<Ts>> && ...)> {};

/// Whether a container's elements have codecs (a map's key and value).
template <class C>
constexpr bool elements_encodable_v() {
  if constexpr (requires { typename C::mapped_type; }) {
    return encodable<typename C::key_type> && encodable<typename C::mapped_type>;
  } else {
    return encodable<typename C::value_type>;
  }
}
template <class C>
concept elements_encodable = elements_encodable_v<C>();
}  // namespace detail

template <class T>
void encode(byte_writer& out, const T& v) {
  static_assert(encodable<T>,
                "sluice: no codec for this type of state: specialise sluice::codec<T> or give it fields()");
  codec<T>::write(out, v);
}
template <class T>
void decode(byte_reader& in, T& v) {
  codec<T>::read(in, v);
}

template <>
struct codec<bool> {
  static void write(byte_writer& out, bool v) { out.put_varint(v ? 1 : 0); }
  static void read(byte_reader& in, bool& v) {
    const std::size_t at = in.pos();
    const std::uint64_t b = in.get_varint();
    if (b > 1) {
      byte_reader::fail_at(at, "a bool is " + std::to_string(b));
    }
    v = b == 1;
  }
};

template <class T>
struct codec<T, std::enable_if_t<(std::is_integral_v<T> || std::is_enum_v<T>) && !std::is_same_v<T, bool>>> {
  using under = typename std::conditional_t<std::is_enum_v<T>, std::underlying_type<T>, std::type_identity<T>>::type;
  static void write(byte_writer& out, T v) {
    const auto u = static_cast<under>(v);
    if constexpr (std::is_signed_v<under>) {
      out.put_varint(detail::zigzag(static_cast<std::uint64_t>(static_cast<std::int64_t>(u))));
    } else {
      out.put_varint(static_cast<std::uint64_t>(u));
    }
  }
  static void read(byte_reader& in, T& v) {
    const std::size_t at = in.pos();
    const std::uint64_t z = in.get_varint();
    if constexpr (std::is_signed_v<under>) {
      const auto x = static_cast<std::int64_t>(detail::unzigzag(z));
      if (x < std::numeric_limits<under>::min() || x > std::numeric_limits<under>::max()) {
        byte_reader::fail_at(at, std::to_string(x) + " does not fit a " + std::to_string(sizeof(under)) + "-byte integer");
      }
      v = static_cast<T>(static_cast<under>(x));
    } else {
      if (z > std::numeric_limits<under>::max()) {
        byte_reader::fail_at(at, std::to_string(z) + " does not fit a " + std::to_string(sizeof(under)) + "-byte integer");
      }
      v = static_cast<T>(static_cast<under>(z));
    }
  }
};

template <class T>
struct codec<T, std::enable_if_t<std::is_floating_point_v<T> && (sizeof(T) == 4 || sizeof(T) == 8)>> {
  using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static void write(byte_writer& out, T v) { out.put_fixed64(std::bit_cast<bits>(v)); }
  static void read(byte_reader& in, T& v) {
    const std::uint64_t b = in.get_fixed64();
    if (b > std::numeric_limits<bits>::max()) {
      in.fail("a 4-byte float has more bits");
    }
    v = std::bit_cast<T>(static_cast<bits>(b));
  }
};

template <class Rep, class Period>
struct codec<std::chrono::duration<Rep, Period>> {
  static void write(byte_writer& out, std::chrono::duration<Rep, Period> d) { encode(out, d.count()); }
  static void read(byte_reader& in, std::chrono::duration<Rep, Period>& d) {
    Rep r{};
    decode(in, r);
    d = std::chrono::duration<Rep, Period>(r);
  }
};

template <>
struct codec<millis> {
  static void write(byte_writer& out, millis t) { encode(out, t.count()); }
  static void read(byte_reader& in, millis& t) {
    std::int64_t ms = 0;
    decode(in, ms);
    t = millis{ms};
  }
};

template <>
struct codec<std::string> {
  static void write(byte_writer& out, const std::string& s) {
    out.put_varint(s.size());
    out.put_bytes(s);
  }
  static void read(byte_reader& in, std::string& s) { s = in.get_bytes(in.get_varint()); }
};

template <>
struct codec<std::monostate> {
  static void write(byte_writer& /*out*/, std::monostate /*v*/) {}
  static void read(byte_reader& /*in*/, std::monostate& /*v*/) {}
};

template <class A, class B>
requires encodable<A> && encodable<B>
struct codec<std::pair<A, B>> {
  static void write(byte_writer& out, const std::pair<A, B>& p) {
    encode(out, p.first);
    encode(out, p.second);
  }
  static void read(byte_reader& in, std::pair<A, B>& p) {
    decode(in, p.first);
    decode(in, p.second);
  }
};

template <class... Ts>
requires(encodable<Ts>&&...) struct codec<std::tuple<Ts...>> {
  static void write(byte_writer& out, const std::tuple<Ts...>& t) {
    std::apply([&](const auto&... e) { (encode(out, e), ...); }, t);
  }
  static void read(byte_reader& in, std::tuple<Ts...>& t) {
    std::apply([&](auto&... e) { (decode(in, e), ...); }, t);
  }
};

template <class T>
requires encodable<T>
struct codec<std::optional<T>> {
  static void write(byte_writer& out, const std::optional<T>& o) {
    encode(out, o.has_value());
    if (o) {
      encode(out, *o);
    }
  }
  static void read(byte_reader& in, std::optional<T>& o) {
    bool has = false;
    decode(in, has);
    o.reset();
    if (has) {
      decode(in, o.emplace());
    }
  }
};

template <class T, std::size_t N>
requires encodable<T>
struct codec<std::array<T, N>> {
  static void write(byte_writer& out, const std::array<T, N>& a) {
    for (const T& e : a) {
      encode(out, e);
    }
  }
  static void read(byte_reader& in, std::array<T, N>& a) {
    for (T& e : a) {
      decode(in, e);
    }
  }
};

/// Sequences and associative containers: a count, then the elements (read back by insert, so a
/// set or map rebuilds its own order and hashing; a map's element as its key, then its value).
template <class C>
requires requires(C c, const C& cc, typename C::value_type v) {
  cc.size();
  cc.begin();
  c.clear();
  c.insert(c.end(), std::move(v));
} && (!std::is_same_v<C, std::string>) && detail::elements_encodable<C>
struct codec<C> {
  static void write(byte_writer& out, const C& c) {
    out.put_varint(c.size());
    for (const auto& e : c) {
      if constexpr (requires { typename C::mapped_type; }) {
        encode(out, e.first);
        encode(out, e.second);
      } else {
        encode(out, e);
      }
    }
  }
  static void read(byte_reader& in, C& c) {
    const std::size_t n = in.get_count();  // every element takes a byte at least
    c.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if constexpr (requires { typename C::mapped_type; }) {
        std::pair<typename C::key_type, typename C::mapped_type> e{};
        decode(in, e.first);
        decode(in, e.second);
        c.insert(c.end(), std::move(e));
      } else {
        typename C::value_type e{};
        decode(in, e);
        c.insert(c.end(), std::move(e));
      }
    }
  }
};

/// A struct that lists its members: `auto fields() { return std::tie(a, b); }` and the const one.
template <class T>
requires requires(T& t, const T& c) {
  t.fields();
  c.fields();
} && detail::all_encodable<decltype(std::declval<const T&>().fields())>::value
struct codec<T> {
  static void write(byte_writer& out, const T& v) {
    std::apply([&](const auto&... e) { (encode(out, e), ...); }, v.fields());
  }
  static void read(byte_reader& in, T& v) {
    std::apply([&](auto&... e) { (decode(in, e), ...); }, v.fields());
  }
};
}  // namespace sluice
